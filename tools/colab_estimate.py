"""Estimate how long each chapter runs under a profile on a T4, from measured multiply-adds.

    python tools/colab_estimate.py [--profile colab] [--tmacs 4]

Counts the multiply-adds of one ViT-B/32 image and one caption forward with
clipadapt.core.flops (random weights, no download), multiplies them by the work the profile's
recipes ask for (steps x batch x frames; a backward pass through an encoder counted as two
forwards), and divides by an assumed sustained rate (default 4 T multiply-adds/s: a T4 in
mixed precision at about a quarter of its 65 TFLOP/s peak). An ESTIMATE: data loading,
video decoding and Python overhead are not in it.
"""

from __future__ import annotations

import argparse
import copy

import torch

from clipadapt import experiments, profiles
from clipadapt.experiments import settings
from clipadapt.core import flops, models
from clipadapt.training import budgets, recipes


def measure(model_name: str) -> tuple[float, float]:
    clip, _, tok = models.load_clip(model_name, None)
    size = clip.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    image = flops.count_macs(clip.encode_image, torch.zeros(1, 3, size, size)).total
    text = flops.count_macs(clip.encode_text, tok(["a person is cooking food in a kitchen."])).total
    return image, text


def measure_videos(model_name: str, frames: int) -> dict[str, float]:
    """Multiply-adds of encoding one video of ``frames`` frames: every frame alone (mean
    pooling), VoP, TempMe with the model's schedule (random weights)."""
    from clipadapt.methods import tempme, vop

    clip = models.create(model_name).eval()
    size = clip.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    x = torch.zeros(1, frames, 3, size, size)
    encoders = {"mean pooling": lambda v: clip.encode_image(v.flatten(0, 1)),
                "VoP": vop.VoP(copy.deepcopy(clip), "vop", frames=frames).eval().encode_video,
                "TempMe": tempme.TempMe(copy.deepcopy(clip), tempme.schedule_for(model_name),
                                        frames=frames).eval().encode_video}
    with torch.no_grad():
        return {k: flops.count_macs(f, x).total for k, f in encoders.items()}


def chapters(p: profiles.Profile, image: float, text: float, tiny: tuple[float, float],
             videos: dict[str, float] | None = None) -> dict[str, float]:
    """Multiply-adds per chapter (training and evaluation), by the chapter's runs."""
    classes = 10
    st = settings.of(p)
    ch1, pre = st.chapter1, st.chapter1.pretrain
    work = {"01_clip_from_scratch": ch1.live_steps * pre.batch_size * sum(tiny) * 3
            + (ch1.eval_images + 2 * ch1.retrieval_pairs) * sum(tiny) + image}
    total = 0.0
    test_images = classes * (st.fewshot.test_per_class or 2700)
    for k in st.fewshot.shots:
        n = k * classes
        for method, backward in (("linear probe", 0), ("CoOp", 0), ("VPT-deep", 2), ("LoRA", 2), ("full fine-tune", 2)):
            r = recipes.get(method, p)
            steps = r.total_steps(n)
            per_step = n if r.full_batch else min(r.batch_size, n)
            total += steps * per_step * image * (1 + backward)
            if method == "CoOp":
                total += steps * classes * text * 3
            total += test_images * image
        total += test_images * image  # zero-shot
    work["02_adapting_clip"] = total
    frames = p.video_frames
    evaluation = st.videos.test_pairs * (frames * image + text)
    total = evaluation  # zero-shot mean pooling
    for variant, backward in (("full", 2), ("partial", 2 * 2 / 12), ("lora", 2)):
        r = recipes.get("mean pooling", p, variant)
        backward += 1 if r.options.get("checkpointing") else 0  # the forward pass again, block by block
        total += r.steps * r.batch_size * (frames * image + text) * (1 + backward) + evaluation
    work["03_video_retrieval"] = total
    r = recipes.get("VoP", p)
    work["04_vop"] = 6 * (r.steps * r.batch_size * (frames * image + text) * 3 + evaluation)
    if videos:
        work["05_tempme"] = tempme_chapter(p, image, text, videos)
    work["06_scpnet"] = scpnet_chapter(p, image, text)
    work["07_softcpt"] = softcpt_chapter(p, image, text)
    return work


def scpnet_chapter(p: profiles.Profile, image: float, text: float) -> float:
    """Chapter 6 on two scene worlds (30 classes each): the frozen encoder's features once per
    world (4 weak and 4 strong views of every training image, and the test images), then per
    run every class prompt through the text encoder at every step, forward and backward (3
    arms x seeds on the first world, 4 arms x seeds on the second, 4 losses and a masked-BCE
    SCPNet). A prompt is counted at the measured caption's full context; the chapter encodes
    only up to the end of text, so this part is an upper bound."""
    classes = 30
    seeds = experiments.get("ch06/scpnet", p).seeds
    runs = (3 + 4) * len(seeds) + 5
    steps = recipes.get("SCPNet", p).steps
    train, test = budgets.of(p)["multilabel_train"], settings.of(p).scenes.test
    return 2 * (8 * train + test) * image + runs * (steps * 3 + 1) * classes * text


def tempme_chapter(p: profiles.Profile, image: float, text: float, videos: dict[str, float]) -> float:
    """Chapter 5: LoRA with mean pooling, VoP, TempMe + LoRA with and without clip positions,
    each trained and evaluated; the cost table (4 encoders, 4 passes over 16 videos)."""
    total = 4 * 4 * 16 * sum(videos.values())
    for method, video, factor in (("mean pooling", "mean pooling", 1), ("VoP", "VoP", 1), ("TempMe", "TempMe", 2)):
        r = recipes.get(method, p, "lora" if method != "VoP" else None)
        total += factor * (r.steps * r.batch_size * (videos[video] + text) * 3
                           + settings.of(p).videos.test_pairs * (videos[video] + text))
    return total


def softcpt_chapter(p: profiles.Profile, image: float, text: float) -> float:
    """Chapter 7 on the profile's General-10 datasets: frozen image features once per seed and
    shot count (test images: at most fewshot_test_per_class a class, counted as that many),
    then per run every class prompt and task name through the text encoder at every step
    (CoOp-CA, CoOp-MT, SoftCPT and its shuffled-names control) and once to evaluate."""
    from clipadapt.data import multitask

    st = settings.of(p)
    entries = [e for e in multitask.GENERAL10 if not st.suites.datasets or e.folder in st.suites.datasets]
    classes = sum(min(e.n_classes, st.suites.classes or e.n_classes) for e in entries)
    total = 0.0
    for _ in experiments.get("ch07/original-softcpt", p).seeds:
        total += classes * (st.fewshot.test_per_class or 100) * image + classes * text  # test features, ZS-CLIP
        for k in st.fewshot.shots:
            total += k * classes * image + 2 * classes * text  # train features; LP-CLIP's init and test
            steps = recipes.get("SoftCPT", p).total_steps(k * classes)
            total += 4 * (steps * (classes + len(entries)) * text * 3 + classes * text)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="colab")
    parser.add_argument("--tmacs", type=float, default=4.0, help="assumed sustained T multiply-adds per second")
    args = parser.parse_args()
    p = profiles.get(args.profile)
    image, text = measure(p.clip_model)
    tiny = measure("tiny-clip")
    videos = measure_videos(p.clip_model, p.video_frames)
    print(f"{p.clip_model}: {image / 1e9:.2f} G multiply-adds per image, {text / 1e9:.2f} G per caption (measured)")
    print(f"  a {p.video_frames}-frame video: " + ", ".join(f"{k} {v / 1e9:.1f} G" for k, v in videos.items()))
    print(f"ESTIMATE at {args.tmacs:g} T multiply-adds/s (compute only; no loading, decoding or overhead):")
    for name, macs in chapters(p, image, text, tiny, videos).items():
        print(f"  {name:24s} {macs / 1e15:8.2f} P multiply-adds  ~{macs / (args.tmacs * 1e12) / 60:7.1f} min")


if __name__ == "__main__":
    main()
