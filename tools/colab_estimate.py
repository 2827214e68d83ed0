"""Estimate how long each chapter runs under a profile on a T4, from measured multiply-adds.

    python tools/colab_estimate.py [--profile colab] [--tmacs 4]

Counts the multiply-adds of one ViT-B/32 image and one caption forward with
clipadapt.flops (random weights, no download), multiplies them by the work the profile's
recipes ask for (steps x batch x frames; a backward pass through an encoder counted as two
forwards), and divides by an assumed sustained rate (default 4 T multiply-adds/s: a T4 in
mixed precision at about a quarter of its 65 TFLOP/s peak). An ESTIMATE: data loading,
video decoding and Python overhead are not in it.
"""

from __future__ import annotations

import argparse

import torch

from clipadapt import flops, models, profiles, recipes


def measure(model_name: str) -> tuple[float, float]:
    clip, _, tok = models.load_clip(model_name, None)
    size = clip.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    image = flops.count_macs(clip.encode_image, torch.zeros(1, 3, size, size)).total
    text = flops.count_macs(clip.encode_text, tok(["a person is cooking food in a kitchen."])).total
    return image, text


def chapters(p: profiles.Profile, image: float, text: float, tiny: tuple[float, float]) -> dict[str, float]:
    """Multiply-adds per chapter (training and evaluation), by the chapter's runs."""
    classes = 10
    pre = p.pretrain
    work = {"01_clip_from_scratch": p.live_pretrain_steps * pre.batch_size * sum(tiny) * 3
            + (p.eval_images + 2 * p.retrieval_pairs) * sum(tiny) + image}
    total = 0.0
    test_images = classes * (p.fewshot_test_per_class or 2700)
    for k in p.fewshot_shots:
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
    evaluation = p.video_test_pairs * (frames * image + text)
    total = evaluation  # zero-shot mean pooling
    for variant, backward in (("full", 2), ("partial", 2 * 2 / 12), ("lora", 2)):
        r = recipes.get("mean pooling", p, variant)
        total += r.steps * r.batch_size * (frames * image + text) * (1 + backward) + evaluation
    work["03_video_retrieval"] = total
    r = recipes.get("VoP", p)
    work["04_vop"] = 6 * (r.steps * r.batch_size * (frames * image + text) * 3 + evaluation)
    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="colab")
    parser.add_argument("--tmacs", type=float, default=4.0, help="assumed sustained T multiply-adds per second")
    args = parser.parse_args()
    p = profiles.get(args.profile)
    image, text = measure(p.clip_model)
    tiny = measure("tiny-clip")
    print(f"{p.clip_model}: {image / 1e9:.2f} G multiply-adds per image, {text / 1e9:.2f} G per caption (measured)")
    print(f"ESTIMATE at {args.tmacs:g} T multiply-adds/s (compute only; no loading, decoding or overhead):")
    for name, macs in chapters(p, image, text, tiny).items():
        print(f"  {name:24s} {macs / 1e15:8.2f} P multiply-adds  ~{macs / (args.tmacs * 1e12) / 60:7.1f} min")


if __name__ == "__main__":
    main()
