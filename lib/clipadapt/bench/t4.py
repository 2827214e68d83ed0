"""Chapter by chapter: will each ``colab`` run fit a 16 GB T4? (``python -m clipadapt.bench --t4``)

Every run a chapter makes under the profile (:data:`CHAPTERS`) is dry-run at full size on
the CPU by :mod:`clipadapt.bench.dryrun`; chapter 1, which pre-trains the tiny CLIP
instead of adapting one, is measured by :func:`pretrain_probe`.
"""

from __future__ import annotations

import torch

from .. import pretrain, profiles
from ..core import models
from ..core.live_memory import LiveTensors
from ..data import worlds
from ..experiments import settings
from ..methods import registry
from ..training.loop import Trainer
from . import dryrun

# the runs each chapter makes under ``colab`` (chapter 1: :func:`pretrain_probe`)
CHAPTERS: dict[str, list[tuple[str, str | None]]] = {
    "02_adapting_clip": [(m, None) for m in registry.methods("classification")],
    "03_video_retrieval": [("mean pooling", v) for v in registry.get("mean pooling").variants],
    "04_vop": [("VoP", v) for v in registry.get("VoP").variants],
    "05_tempme": [("TempMe", "lora")],
    "06_scpnet": [("SCPNet", v) for v in registry.get("SCPNet").variants],
    "07_softcpt": [(m, None) for m in registry.methods("multitask") if m != "SoftCPT"]
                  + [("SoftCPT", v) for v in registry.get("SoftCPT").variants],
}


def pretrain_probe(profile: profiles.Profile) -> dryrun.Measured:
    """Chapter 1: two pre-training steps of the tiny CLIP at the profile's batch (it fits)."""
    rec = settings.of(profile).chapter1.pretrain
    model, _, tokenizer = models.load_clip(pretrain.MODEL, pretrained=None, device="cpu")
    world = worlds.ImageWorld(model.visual.image_size[0], p_two_objects=rec.p_two_objects)
    peaks = []
    for batch in (rec.batch_size // 2, rec.batch_size):
        trainer = Trainer(model, pretrain.contrastive_step(model, tokenizer, world, batch, rec.seed),
                          pretrain.training_recipe(rec), 2, warmup=0, amp=False, device="cpu")
        with LiveTensors(model) as live:
            for step in range(2):
                trainer.train_step(step)
            train = live.peak
            live.reset_peak()
            with torch.no_grad():
                model.encode_image(torch.zeros(batch, 3, *model.visual.image_size))
            peaks.append((train, live.peak))
    half, whole = rec.batch_size // 2, rec.batch_size
    return dryrun.Measured("tiny CLIP pre-training", None, whole, "fp32", (half, whole),
                           (peaks[0][0], peaks[1][0]), (peaks[0][1], peaks[1][1]), whole)


def chapter_table(profile: profiles.Profile, chapters=None, say=print) -> list[tuple[str, dryrun.Measured]]:
    """Every run of every chapter (or of ``chapters``), measured; ``say`` reports progress."""
    out = []
    if chapters is None or "01_clip_from_scratch" in chapters:
        out.append(("01_clip_from_scratch", pretrain_probe(profile)))
        say(f"01_clip_from_scratch: {out[-1][1].row()}")
    for chapter, runs in CHAPTERS.items():
        if chapters is not None and chapter not in chapters:
            continue
        for method, variant in runs:
            out.append((chapter, dryrun.measure(method, variant, profile)))
            say(f"{chapter}: {out[-1][1].row()}")
    return out
