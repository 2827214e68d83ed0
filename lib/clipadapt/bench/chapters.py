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
from ..core.resident import PeakMemory

# each chapter at most 240 s under tiny on the 2-core development machine
TARGETS_S = {"01_clip_from_scratch": 240, "02_adapting_clip": 240, "03_video_retrieval": 240, "04_vop": 240,
             "05_tempme": 240, "06_scpnet": 240, "07_softcpt": 240, "08_choosing_a_method": 240}
TARGET_PEAK_GB = 4.0


def bench_chapters(notebooks: list[str] | None, profile: str) -> list[dict]:
    rows = []
    chosen = [p.stem for p in book.toc_notebooks()]
    # one folder for all, in reading order, as the book executes them: a chapter reads the
    # runs an earlier chapter filed in the run store (chapter 5 chapter 4's VoP, chapter 8
    # the runs of chapters 2 to 5) and makes only its own
    with tempfile.TemporaryDirectory() as tmp:
        for stem in [s for s in chosen if s in (notebooks or chosen)]:
            with PeakMemory() as mem:
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
