"""One recipe: how a method trains, as data (:class:`Recipe`), and its keys in words (:func:`show`).

The recipes themselves are data files, one per method (``clipadapt/recipes/*.toml``: the
official values with their sources, each profile's changes with their reasons), read by
:mod:`clipadapt.training.recipes`.
"""

from __future__ import annotations

import dataclasses
import math
import textwrap
import typing
from collections import abc
from dataclasses import dataclass, field
from typing import Any, Mapping

# what a recipe card lists, and what every colab/paper row must give a source for (plus
# one "options.<key>" per method setting)
KEYS = ("optimizer", "lr", "weight_decay", "schedule", "warmup", "budget", "batch_size", "augment", "precision",
        "grad_clip")


# the fields each key of KEYS stands for: a recipe file sets them together, under one source
# or reason (clipadapt/recipes/*.toml); ``options`` and ``sources`` stand apart
GROUPS: dict[str, tuple[str, ...]] = {
    "optimizer": ("optimizer", "optimizer_kwargs", "decay_rule"),
    "lr": ("lr", "group_lrs"),
    "weight_decay": ("weight_decay",),
    "schedule": ("schedule", "schedule_unit", "min_lr", "cosine_span", "pct_start", "schedule_length"),
    "warmup": ("warmup", "warmup_kind", "warmup_lr", "warmup_fraction"),
    "budget": ("steps", "epochs", "min_steps", "by_shots"),
    "batch_size": ("batch_size", "full_batch"),
    "augment": ("augment", "cache_features"),
    "precision": ("precision",),
    "grad_clip": ("grad_clip",),
}


@dataclass(frozen=True)
class Recipe:
    lr: float | None = 0.0  # None: the official code never published it
    steps: int | None = None  # a fixed number of steps, or (None) epochs with a floor:
    epochs: int = 0  # passes over the training set, counted in batches of batch_size
    min_steps: int = 0
    # the budget at each shot count of a few-shot run, where the official code sets it by the
    # shots (CoOp's epochs, CLIP-LoRA's iterations): count -> {"steps" | "epochs" | "min_steps":
    # value}; a run of k shots takes the entry of the largest count not above k (at_shots)
    by_shots: Mapping[int, Mapping[str, int]] = field(default_factory=dict)
    batch_size: int = 32
    full_batch: bool = False  # every step sees the whole training set (the linear probe)
    weight_decay: float = 0.0
    warmup: int = 10  # "warmup-cosine": steps, at most a tenth of the run; else schedule units
    grad_clip: float | None = None
    options: Mapping[str, Any] = field(default_factory=dict)  # the method's own settings
    optimizer: str = "adamw"  # torch.optim's "adamw", "adam", "sgd"; "bertadam" (training.bertadam)
    optimizer_kwargs: Mapping[str, Any] = field(default_factory=dict)
    decay_rule: str = "clip"  # which parameters take no weight decay (optim.no_decay)
    group_lrs: Mapping[str, float] = field(default_factory=dict)  # parameter-name prefix -> its own rate
    schedule: str = "warmup-cosine"  # or "cosine", "onecycle", "progress-cosine" (optim.make_scheduler)
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
    precision: str = "amp"  # "amp" (autocast on CUDA), "fp32", "fp16" (OpenAI's float16 CLIP: core.precision)
    sources: Mapping[str, str] = field(default_factory=dict)  # key of KEYS or "options.<k>" -> source

    def total_steps(self, n_train: int) -> int:
        """Steps of a run on ``n_train`` training examples (0: nothing trains, or the official
        linear probe, ``lbfgs``, fitted in closed form by the driver)."""
        if self.optimizer == "lbfgs":
            return 0
        if self.steps is not None:
            return self.steps
        return max(self.min_steps, self.epochs * math.ceil(n_train / self.batch_size))

    def at_shots(self, shots: int | None) -> Recipe:
        """This recipe with the budget of a run of ``shots`` per class (:attr:`by_shots`):
        itself where the budget does not depend on the shots."""
        if not self.by_shots:
            return self
        if shots is None:
            raise ValueError(f"the budget depends on the shots ({dict(self.by_shots)}), but the task has no shot "
                             "count")
        below = [k for k in self.by_shots if k <= shots]
        if not below:
            raise ValueError(f"no budget for {shots} shots: by_shots starts at {min(self.by_shots)}")
        return dataclasses.replace(self, **{"steps": None, "epochs": 0, "min_steps": 0, **self.by_shots[max(below)]},
                                   by_shots={})

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


BY_SHOTS = ("steps", "epochs", "min_steps")  # what a budget by the shot count may set


def budgets_by_shots(value) -> bool:
    """Whether ``value`` read from a file is a budget by shot count: ``{"1": {"epochs": 50}, ...}``."""
    def count(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0
    return isinstance(value, dict) and all(
        isinstance(k, str) and k.isdigit() and int(k) >= 1 and isinstance(b, dict) and b
        and all(f in BY_SHOTS and count(v) for f, v in b.items()) for k, b in value.items())


# the type of each field, for readers of recipe files (clipadapt.training.recipes)
HINTS = typing.get_type_hints(Recipe)


def kinds(field: str) -> tuple[type, ...]:
    """The Python types a value of field ``field`` may have (None aside); an int stands for a float."""
    hint = HINTS[field]
    if type(None) in typing.get_args(hint):  # "X | None"
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    base = typing.get_origin(hint) or hint
    return (int, float) if base is float else (dict,) if base in (Mapping, abc.Mapping, dict) else (base,)


def fits(value, types: tuple[type, ...]) -> bool:
    """Whether ``value`` is of ``types`` (a bool is not taken for a number)."""
    return isinstance(value, types) and (bool in types or not isinstance(value, bool))


def cast(field: str, value):
    """A value read from a file as the recipe holds it: floats as floats, the optimiser's
    arrays as tuples (betas)."""
    if kinds(field) == (int, float) and isinstance(value, int):
        return float(value)
    if field == "optimizer_kwargs":
        return {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    if field == "group_lrs":
        return {k: float(v) for k, v in value.items()}
    if field == "by_shots":  # TOML keys are strings
        return {int(k): dict(v) for k, v in sorted(value.items(), key=lambda kv: int(kv[0]))}
    return value


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
        if r.schedule == "warmup-cosine":  # the tiny rows' LambdaLR (optim.lr_factor)
            return f"warm-up and cosine in one, to 0/{r.schedule_unit}"
        if r.schedule == "progress-cosine":
            return f"cosine of the run's progress, to 0/{r.schedule_unit}"
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
        if r.by_shots:
            return "by shots: " + ", ".join(f"{k}: " + " ".join(f"{v} {' '.join(f.split('_'))}" for f, v in b.items())
                                            for k, b in r.by_shots.items())
        return f"{r.epochs} epochs" + (f" (>= {r.min_steps} steps)" if r.min_steps else "")
    if key == "batch_size":
        return "all" if r.full_batch else str(r.batch_size)
    if key == "augment":
        return r.augment + (", cached" if r.cache_features else ", per step")
    if key == "grad_clip":
        return "none" if r.grad_clip is None else f"{r.grad_clip:g}"
    return str(getattr(r, key))


def render_card(name: str, profile: str, clip_model: str, off: Recipe, ours: Recipe, backbone: str,
                notes: list[str], width: int = 80, data: str | None = None) -> str:
    """The recipe card: ``off`` (the official row) beside ``ours`` (the row ``profile`` runs
    on ``clip_model``; ``data``: the data it cuts, with its reason), each deviation with its
    reason, the official sources and ``notes``."""
    keys = list(dict.fromkeys(off.source_keys() + ours.source_keys()))
    if off.steps == 0 and ours.steps == 0:  # nothing trains: no optimiser to show
        keys = ["budget", "precision", *(k for k in keys if k.startswith("options."))]
    wrap = lambda head, text: textwrap.wrap(text, width, initial_indent=head,  # noqa: E731
                                            subsequent_indent=" " * 6)
    lines = [f"Recipe card: {name}, profile {profile}"]
    lines += wrap("  backbone: ", f"official {backbone}; this run {clip_model.replace('ViT-B-', 'ViT-B/')}")
    lines += wrap("  data: ", data) if data else []
    c1 = max(len(k) for k in keys) + 2
    c2 = (width - c1 - 2) // 2
    lines.append(f"  {'':<{c1}}{'official':<{c2}}this run")
    changed = []
    for k in keys:
        a, b = show(off, k), show(ours, k)
        same = a == b
        reason = ours.sources.get(k, "")
        # a change of value, or a difference the value's name does not show (a crop's scale)
        if not same or (reason.startswith("ours: ") and reason != off.sources.get(k)):
            changed.append(k)
        lines.append(f"  {k:<{c1}}{textwrap.shorten(a, c2 - 1):<{c2}}{'=' if same else textwrap.shorten(b, c2)}")
    if changed:
        lines.append("  deviations:")
        for k in changed:
            lines += wrap(f"    {k}: ", ours.sources.get(k, "(no reason given)"))
    lines.append("  sources of the official values:")
    by_text: dict[str, list[str]] = {}
    for k in keys:
        if k in off.sources:
            by_text.setdefault(off.sources[k], []).append(k)
    for text, ks in by_text.items():
        lines += wrap(f"    {', '.join(ks) if len(ks) < len(keys) else 'all'}: ", text)
    for note in notes:
        lines += wrap("  note: ", note)
    return "\n".join(lines)
