"""Each chapter executed under ``tiny`` with papermill: wall time and the kernel's peak
memory against the targets; and the shipped tiny CLIP's held-out zero-shot accuracy and
retrieval, measured now."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from .. import book, pretrain
from ..core import models
from .memory import PeakMemory

TARGETS_S = {"01_clip_from_scratch": 150, "02_adapting_clip": 180, "03_video_retrieval": 180, "04_vop": 180,
             "05_tempme": 180, "06_scpnet": 180, "07_softcpt": 180,
             "08_choosing_a_method": 180}
TARGET_PEAK_GB = 4.0


def bench_chapters(notebooks: list[str] | None, profile: str) -> list[dict]:
    rows = []
    chosen = [p.stem for p in book.toc_notebooks()]
    for stem in notebooks or chosen:
        with tempfile.TemporaryDirectory() as tmp, PeakMemory() as mem:
            start = time.perf_counter()
            book.execute(profile, dest=Path(tmp) / "exec", notebooks=[stem], log=lambda *a: None)
            seconds = time.perf_counter() - start
        rows.append({"chapter": stem, "seconds": seconds, "target_s": TARGETS_S.get(stem),
                     "peak_gb": mem.peak / 2**30})
    return rows


def bench_tiny_clip() -> dict:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    model, _, tokenizer = models.load_clip("tiny-clip", pretrained="synthetic")
    return pretrain.evaluate(model, tokenizer, n_images=1000, n_pairs=200)
