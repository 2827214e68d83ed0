"""One recipe: how a method trains, as data (:class:`Recipe`), and its keys in words (:func:`show`).

The tables of recipes are :mod:`clipadapt.training.official` (the papers' own, with their
sources) and :mod:`clipadapt.training.recipes` (each profile's, with the reasons for every
change).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

# what a recipe card lists, and what every colab/paper row must give a source for (plus
# one "options.<key>" per method setting)
KEYS = ("optimizer", "lr", "weight_decay", "schedule", "warmup", "budget", "batch_size", "augment", "precision",
        "grad_clip")


def every(text: str) -> dict[str, str]:
    """The same source for every key (a row that trains nothing)."""
    return {k: text for k in KEYS}


@dataclass(frozen=True)
class Recipe:
    lr: float | None = 0.0  # None: the official code never published it
    steps: int | None = None  # a fixed number of steps, or (None) epochs with a floor:
    epochs: int = 0  # passes over the training set, counted in batches of batch_size
    min_steps: int = 0
    batch_size: int = 32
    full_batch: bool = False  # every step sees the whole training set (the linear probe)
    weight_decay: float = 0.0
    warmup: int = 10  # "warmup-cosine": steps, at most a tenth of the run; else schedule units
    grad_clip: float | None = None
    options: Mapping[str, Any] = field(default_factory=dict)  # the method's own settings
    optimizer: str = "adamw"  # torch.optim: "adamw", "adam", "sgd"
    optimizer_kwargs: Mapping[str, Any] = field(default_factory=dict)
    decay_rule: str = "clip"  # which parameters take no weight decay (optim.no_decay)
    group_lrs: Mapping[str, float] = field(default_factory=dict)  # parameter-name prefix -> its own rate
    schedule: str = "warmup-cosine"  # or "cosine", "onecycle" (optim.make_scheduler)
    schedule_unit: str = "step"  # or "epoch"
    warmup_kind: str = "linear"  # "cosine": "linear", "constant" or "none"
    warmup_lr: float | None = None  # the constant warm-up's rate
    warmup_fraction: float | None = None  # a warm-up given as a fraction of the run
    min_lr: float = 0.0
    cosine_span: str = "after warm-up"  # or "whole run"
    pct_start: float = 0.3
    schedule_length: float = 1.0
    augment: str = "none"  # a name of clipadapt.data.augment.AUGMENTATIONS
    cache_features: bool = True  # a frozen image encoder's features may be computed once
    precision: str = "amp"  # "amp" (autocast on CUDA), "fp32", "fp16" (official rows only)
    sources: Mapping[str, str] = field(default_factory=dict)  # key of KEYS or "options.<k>" -> source

    def total_steps(self, n_train: int) -> int:
        """Steps of a run on ``n_train`` training examples (0: nothing trains)."""
        if self.steps is not None:
            return self.steps
        return max(self.min_steps, self.epochs * math.ceil(n_train / self.batch_size))

    def steps_per_epoch(self, n_train: int) -> int:
        return 1 if self.full_batch else max(1, math.ceil(n_train / self.batch_size))

    def warmup_steps(self, steps: int, steps_per_epoch: int = 1) -> int:
        """The warm-up in the schedule's units (steps, or epochs)."""
        if self.schedule == "warmup-cosine":
            return min(self.warmup, steps // 10)
        units = math.ceil(steps / steps_per_epoch) if self.schedule_unit == "epoch" else steps
        if self.warmup_kind == "none" or self.schedule == "onecycle":
            return 0
        if self.warmup_fraction is not None:
            return int(self.warmup_fraction * units)
        return min(self.warmup, units)

    def source_keys(self) -> tuple[str, ...]:
        return KEYS + tuple(f"options.{k}" for k in self.options)

    def replace(self, **changes) -> "Recipe":
        return dataclasses.replace(self, **changes)

    def deviate(self, reasons: Mapping[str, str], **changes) -> "Recipe":
        """This recipe with ``changes``, each key that changes with its reason (``reasons``:
        key of :data:`KEYS` or ``options.<k>`` -> why)."""
        sources = {**self.sources, **{k: f"ours: {why}" for k, why in reasons.items()}}
        return dataclasses.replace(self, **changes, sources=sources)


def show(r: Recipe, key: str) -> str:
    """One key of a recipe, in a few words."""
    if key.startswith("options."):
        value = r.options.get(key[len("options."):], "-")
        return f"{value:.5g}" if isinstance(value, float) else repr(value)
    if key == "optimizer":
        kw = ", ".join(f"{k}={v}" for k, v in r.optimizer_kwargs.items())
        return f"{r.optimizer}" + (f"({kw})" if kw else "") + f", decay {r.decay_rule}"
    if key == "lr":
        base = "not published" if r.lr is None else f"{r.lr:g}"
        return base + "".join(f"; {k} {v:g}" for k, v in r.group_lrs.items())
    if key == "weight_decay":
        return "L2, C searched" if r.optimizer == "lbfgs" else f"{r.weight_decay:g}"
    if key == "schedule":
        if r.schedule == "onecycle":
            return f"onecycle, rise {r.pct_start:g}, x{r.schedule_length:.2f}"
        if r.schedule == "none":
            return "none"
        floor = f" to {r.min_lr:g}" if r.min_lr else ""
        span = ", whole run" if r.cosine_span == "whole run" else ""
        return f"cosine{floor}/{r.schedule_unit}{span}"
    if key == "warmup":
        if r.schedule == "warmup-cosine":
            return f"linear, {r.warmup} steps (<= 10%)"
        if r.warmup_kind == "none" or r.schedule in ("onecycle", "none"):
            return "none"
        length = f"{r.warmup_fraction:.0%}" if r.warmup_fraction is not None else \
            f"{r.warmup} {r.schedule_unit}{'s' if r.warmup != 1 else ''}"
        return f"{r.warmup_kind}, {length}" + (f" at {r.warmup_lr:g}" if r.warmup_kind == "constant" else "")
    if key == "budget":
        if r.steps == 0:
            return "no training"
        if r.steps is not None:
            return f"{r.steps} steps"
        if r.optimizer == "lbfgs":
            return "L-BFGS to convergence"
        return f"{r.epochs} epochs" + (f" (>= {r.min_steps} steps)" if r.min_steps else "")
    if key == "batch_size":
        return "all" if r.full_batch else str(r.batch_size)
    if key == "augment":
        return r.augment + (", cached" if r.cache_features else ", per step")
    if key == "grad_clip":
        return "none" if r.grad_clip is None else f"{r.grad_clip:g}"
    return str(getattr(r, key))
