"""The data a colab profile cuts from the paper profile's, in words, for the recipe card.

A recipe card (:func:`clipadapt.training.recipes.card`) sets a method's official recipe
beside the row a profile runs; under colab the run also sees less data than the paper
profile (MSR-VTT's training pairs, General-10's datasets, EuroSAT's test pictures), and
:func:`line` says how much, per task, with its reason. The counts are read from where they
live: ``clipadapt/experiments/_settings.toml`` (the data; its reader is
:mod:`clipadapt.experiments.settings`, a layer above this one, so this module reads the
file itself) and the budgets (:mod:`clipadapt.training.budgets`). Tiny and paper get none.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from .. import profiles
from ..core.models import TINY_MODELS
from . import budgets

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

FILE = Path(__file__).resolve().parents[1] / "experiments" / "_settings.toml"


@functools.cache
def _file(path: Path = FILE) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _entry(table: str, p: profiles.Profile) -> dict:
    return profiles.merged(_file().get(table, {}), p) or {}


def line(task: str, profile: profiles.Profile) -> str | None:
    """What ``profile`` (a colab one) keeps of the paper profile's data for a method of ``task``
    (``registry.MethodSpec.task``), and why; None for the tiny and paper profiles."""
    p, paper = profiles.need(profile), profiles.PROFILES["paper"]  # the card compares with the paper profile
    if p.clip_model in TINY_MODELS or "paper" in profiles.lineage(p):  # recipes.section_of: not colab
        return None
    b, full = budgets.of(p), budgets.of(paper)
    why = "one T4 session" if p.name == "colab" else f"profile {p.name}, a check of colab's code paths"
    if task == "retrieval":
        v, pv = _entry("videos", p), _entry("videos", paper)
        once = " see each pair once" if b["video_steps"] * b["video_batch"] == v["train_pairs"] else ""
        return (f"{v['train_pairs']:,} of MSR-VTT 9k's {pv['train_pairs']:,} training pairs, {v['test_pairs']:,} "
                f"test videos: {b['video_steps']} steps of {b['video_batch']}{once}, {why} "
                "(experiments/_settings.toml, recipes/_shared.toml)")
    if task == "classification":
        f = _entry("fewshot", p)
        return (f"{f['dataset']}, {f['test_per_class']} test pictures per class (paper profile: the whole test "
                f"split): {why} (experiments/_settings.toml)")
    if task == "multitask":
        kept = _entry("suites", p)["datasets"]
        return (f"{len(kept) or 10} of General-10's 10 datasets ({', '.join(kept) or 'all'}), one seed (paper "
                "profile: all ten, three seeds): the four with torchvision's checked archives, about 1.1 GB, "
                f"{why} (experiments/_settings.toml, ch07.toml)")
    if task == "multilabel":
        return (f"{b['multilabel_train']:,} training and {_entry('scenes', p)['test']:,} test pictures of the scene "
                f"world (paper profile: {full['multilabel_train']:,} and {_entry('scenes', paper)['test']:,}): {why} "
                "(experiments/_settings.toml, recipes/_shared.toml)")
    return None
