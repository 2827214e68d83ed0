"""Pre-training the tiny CLIP on the synthetic image world (chapter 1), and evaluating it.

The shipped weights ``weights/tiny-clip.safetensors`` are made by::

    python -m clipadapt.pretrain

which trains with the ``tiny`` profile's pre-training (``experiments/_settings.toml``, ``[pretrain]``) on
the CPU with a fixed seed and records the recipe, the measured accuracies and the time in
the file's metadata. The later chapters load that file in a second instead of training.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from . import profiles
from .core import features, losses, metrics, models
from .core.checkpoints import save_checkpoint
from .core.seeds import seed_everything
from .data import worlds
from .experiments import settings
from .training.loop import fit, pick_device
from .training.recipe import Recipe

MODEL = "tiny-clip"


def encode_pictures(model, pictures: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """L2-normalised image features of pictures in [0, 1] (normalised for CLIP here)."""
    return features.encode_images(model, models.normalize(pictures), batch_size)


def class_features(model, tokenizer, prompts: list[list[str]]) -> torch.Tensor:
    """One feature per class: the renormalised mean of its prompts' features (prompt
    ensembling, as in the CLIP paper)."""
    flat = [p for group in prompts for p in group]
    feats = features.encode_texts(model, tokenizer, flat)
    sizes = [len(g) for g in prompts]
    means = torch.stack([chunk.mean(0) for chunk in feats.split(sizes)])
    return F.normalize(means, dim=-1)


def contrastive_step(model, tokenizer, world: worlds.ImageWorld, batch_size: int, seed: int):
    """The loss function of pre-training: a fresh batch per step, every caption that is
    true of an image counted as its positive."""
    device = next(model.parameters()).device

    def loss_fn(step: int) -> torch.Tensor:
        g = worlds.generator(seed, "pretrain", str(step))
        batch = world.batch(batch_size, g)
        caps = batch["captions"]
        positives = worlds.consistent(caps.mentions, batch["scenes"].attrs).t()  # (images, texts)
        img = model.encode_image(models.normalize(batch["images"].to(device)))
        txt = model.encode_text(tokenizer(caps.texts).to(device))
        return losses.clip_loss(img, txt, model.logit_scale.exp().clamp(max=100), positives.to(device))

    return loss_fn


def training_recipe(recipe: settings.Pretrain) -> Recipe:
    """How the training loop runs pre-training: AdamW at the profile's rate and weight decay,
    CLIP's no-decay rule, a linear warm-up then cosine, gradients clipped at 1."""
    return Recipe(lr=recipe.lr, weight_decay=recipe.weight_decay, grad_clip=1.0)


def pretrain(recipe: settings.Pretrain, device: str | None = None, progress: bool = True,
             stop_after: int | None = None):
    """Train a tiny CLIP from scratch with ``recipe`` (a profile's:
    ``experiments.settings.of(profile).chapter1.pretrain``); returns ``(model, tokenizer,
    history)``. ``stop_after`` ends the run early on the same schedule, so its loss curve is
    the first part of the full run's. ``device``: None, the best there is."""
    seed_everything(recipe.seed)
    model, _, tokenizer = models.load_clip(MODEL, pretrained=None, device="cpu")
    dev = pick_device(device)
    with torch.no_grad():
        model.visual.positional_embedding.mul_(recipe.pos_embed_scale)
    model = model.to(dev)
    world = worlds.ImageWorld(model.visual.image_size[0], p_two_objects=recipe.p_two_objects)
    loss_fn = contrastive_step(model, tokenizer, world, recipe.batch_size, recipe.seed)
    # loss_fn draws its own batch; the warm-up is the profile's, in full (a recipe's is at most
    # a tenth of the run)
    history = fit(model, loss_fn, lambda step: step, training_recipe(recipe), recipe.steps, warmup=recipe.warmup,
                  device=dev, progress=progress, description="pre-training", stop_after=stop_after)
    return model.eval(), tokenizer, history


@torch.no_grad()
def evaluate(model, tokenizer, n_images: int = 1000, n_pairs: int = 200, seed: int = 0) -> dict:
    """Measure a CLIP on held-out pictures of the image world:

    * ``zero_shot``: accuracy per attribute on ``n_images`` single-object pictures, with the
      ensembled prompts of :data:`worlds.ZERO_SHOT_PROMPTS` (``chance`` beside it);
    * ``retrieval``: image-text retrieval among ``n_pairs`` single-object pictures whose
      four attributes are all different, each with its full caption;
    * ``retrieval_two``: the same among ``n_pairs`` two-object pictures;
    * ``binding``: how often a two-object picture scores its caption above the same caption
      with the two objects' colours swapped (chance 0.5).
    """
    model.eval()
    size = model.visual.image_size[0]
    world = worlds.ImageWorld(size)
    scenes = world.sample(n_images, worlds.generator(seed, "test", "zero-shot"))
    img = encode_pictures(model, world.render(scenes))
    result = {"zero_shot": {}, "chance": {}}
    for attr in worlds.ATTRIBUTES:
        cls = class_features(model, tokenizer, worlds.prompts_for(attr))
        result["zero_shot"][attr] = metrics.zero_shot_accuracy(img, cls, scenes.attribute(attr))
        result["chance"][attr] = 1 / len(worlds.VALUES[attr])
    g = worlds.generator(seed, "test", "retrieval")
    scenes = distinct_scenes(world, n_pairs, g)
    img = encode_pictures(model, world.render(scenes))
    txt = features.encode_texts(model, tokenizer, world.captions(scenes, g, full=True).texts)
    result["retrieval"] = metrics.image_text_retrieval(img, txt)
    two = worlds.ImageWorld(size, p_two_objects=1.0)
    g = worlds.generator(seed, "test", "two objects")
    scenes = two.sample(n_pairs, g)
    img = encode_pictures(model, two.render(scenes))
    txt = features.encode_texts(model, tokenizer, two.captions(scenes, g, full=True).texts)
    result["retrieval_two"] = metrics.image_text_retrieval(img, txt)
    result["binding"] = binding_accuracy(model, tokenizer, two, scenes)
    return result


def swap_colours(scenes: worlds.Scenes) -> worlds.Scenes:
    """The same scenes with the colours of their first two objects exchanged (the pixels
    are not touched: only what a caption written from them would say)."""
    attrs = scenes.attrs.clone()
    attrs[:, 0, 1], attrs[:, 1, 1] = scenes.attrs[:, 1, 1], scenes.attrs[:, 0, 1]
    return dataclasses.replace(scenes, attrs=attrs)


@torch.no_grad()
def binding_accuracy(model, tokenizer, world: worlds.ImageWorld, scenes: worlds.Scenes) -> float:
    """Fraction of two-object pictures (with two different colours) whose full caption
    scores above the caption with the colours swapped between the objects. A model that
    sees a bag of attributes, not which object has which, scores 0.5."""
    keep = scenes.attrs[:, 0, 1] != scenes.attrs[:, 1, 1]
    if (scenes.n_objects < 2).any() or not keep.any():
        raise ValueError("binding_accuracy needs two-object scenes with two different colours")
    img = encode_pictures(model, world.render(scenes))
    right = features.encode_texts(model, tokenizer, world.captions(scenes, worlds.generator(0), full=True).texts)
    swapped = features.encode_texts(model, tokenizer, world.captions(swap_colours(scenes), worlds.generator(0), full=True).texts)
    wins = (img * right).sum(1) > (img * swapped).sum(1)
    return wins[keep].float().mean().item()


def distinct_scenes(world: worlds.ImageWorld, n: int, g: torch.Generator) -> worlds.Scenes:
    """``n`` single-object scenes, no two with the same four attributes, so that each full
    caption has exactly one right picture."""
    combos = torch.cartesian_prod(*[torch.arange(len(worlds.VALUES[a])) for a in worlds.ATTRIBUTES])
    if n > len(combos):
        raise ValueError(f"only {len(combos)} distinct single-object scenes exist, asked for {n}")
    pick = combos[torch.randperm(len(combos), generator=g)[:n]]
    return world.sample(n, g, **{a: pick[:, i] for i, a in enumerate(worlds.ATTRIBUTES)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Pre-train the tiny CLIP on the synthetic image world and save it.")
    parser.add_argument("--out", type=Path, default=models.weights_path(MODEL))
    parser.add_argument("--profile", default="tiny")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    prof = profiles.get(args.profile)
    ch1 = settings.of(prof).chapter1
    start = time.perf_counter()
    model, tokenizer, history = pretrain(ch1.pretrain, device=prof.device)
    seconds = time.perf_counter() - start
    result = evaluate(model, tokenizer, ch1.eval_images, ch1.retrieval_pairs)
    meta = {
        "model": MODEL,
        "recipe": dataclasses.asdict(ch1.pretrain),
        "profile": prof.name,
        "train_seconds": round(seconds, 1),
        "final_loss": round(history.loss[-1], 4),
        "loss": [round(v, 4) for v in history.loss],
        "evaluation": result,
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
    }
    # half precision halves the file; the tiny CLIP loses nothing measurable by it
    save_checkpoint(args.out, model, meta, dtype=torch.float16)
    zs = ", ".join(f"{k} {100 * v:.1f}%" for k, v in result["zero_shot"].items())
    print(f"trained in {seconds:.0f} s; zero-shot {zs}; "
          f"image->text R@1 {result['retrieval']['image_to_text']['R@1']:.1f}%; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
