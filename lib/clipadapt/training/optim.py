"""The optimiser and the learning-rate schedule a recipe names, built from ``torch.optim``.

A recipe (:class:`~clipadapt.training.recipe.Recipe`) names its optimiser (``"adamw"``, ``"adam"``,
``"sgd"``), the weight-decay rule of its official code, learning rates of their own for
parameter groups (SCPNet's graph), and its schedule:

* ``"warmup-cosine"`` -- the tiny rows' schedule: linear warm-up over ``warmup`` steps
  (``(step + 1) / warmup``), then cosine decay to zero (:func:`lr_factor`, a ``LambdaLR``);
* ``"cosine"`` -- ``CosineAnnealingLR`` after a warm-up of ``warmup`` units: ``"constant"``
  at ``warmup_lr`` (Dassl's ``ConstantWarmupScheduler``, CoOp and SoftCPT) through
  ``ConstantLR``, or ``"linear"`` from (almost) zero (``LinearLR``; the transformers-style
  warm-up of TempMe and VPT), chained by ``SequentialLR``. The cosine spans the units after
  the warm-up, or (``cosine_span="whole run"``) as many units as the whole run, as Dassl's
  warm-up "recount" does;
* ``"onecycle"`` -- ``OneCycleLR`` with each group's own peak (SCPNet), scheduled over
  ``schedule_length`` times the run (SCPNet schedules 80 epochs and stops at 60);
* ``"progress-cosine"`` -- CLIP4Clip's ``warmup_cosine``: a linear rise over the first
  ``warmup_fraction`` of the run, then the cosine of the run's overall progress, ending at 0
  (:func:`clipadapt.training.bertadam.progress_cosine`, a ``LambdaLR``).

``"bertadam"`` is CLIP4Clip's Adam without bias correction (:mod:`clipadapt.training.bertadam`).

The unit of a schedule is the step or (``schedule_unit="epoch"``) the epoch: Dassl and VPT
step their schedulers once per epoch, so the rate stays constant within an epoch.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .bertadam import BertAdam, progress_cosine
from .recipe import Recipe

OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD, "bertadam": BertAdam}
SCHEDULES = ("warmup-cosine", "cosine", "onecycle", "progress-cosine")
WARMUPS = ("none", "linear", "constant")
DECAY_RULES = ("clip", "all", "bias-and-1d", "bias")


def lr_factor(step: int, steps: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to zero."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def no_decay(name: str, p: torch.Tensor, rule: str = "clip") -> bool:
    """Whether parameter ``name`` takes no weight decay under ``rule``: ``"clip"`` (gains,
    biases, embeddings and scalars, CLIP's recipe), ``"bias-and-1d"`` (SCPNet's
    ``add_weight_decay``, utils.py:309-341), ``"bias"`` (every name holding "bias": CLIP4Clip's
    list, main_task_retrieval.py:189-192, whose "LayerNorm" entries no name of CLIP's holds) or
    ``"all"`` (every parameter decays: Dassl's and TempMe's single group)."""
    if rule == "all":
        return False
    if rule == "bias":
        return "bias" in name
    if rule == "bias-and-1d":
        return p.ndim < 2 or name.endswith(".bias")
    return p.ndim < 2 or "embedding" in name or "logit_scale" in name or ".ln" in name or name.startswith("ln")


def param_groups(model: nn.Module, lr: float, weight_decay: float, rule: str = "clip",
                 group_lrs: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """The trainable parameters in groups: for each learning rate (the base one, and one per
    name prefix of ``group_lrs``), those that decay and those that do not."""
    if rule not in DECAY_RULES:
        raise ValueError(f"unknown weight-decay rule {rule!r}; choose one of {DECAY_RULES}")
    group_lrs = dict(group_lrs or {})
    buckets: dict[tuple[str | None, bool], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        prefix = next((k for k in group_lrs if name.startswith(k)), None)
        buckets.setdefault((prefix, no_decay(name, p, rule)), []).append(p)
    if not buckets:
        raise ValueError("the model has no trainable parameters (did you freeze everything?)")
    groups = []
    for prefix in [None, *group_lrs]:
        for plain in (False, True):
            params = buckets.get((prefix, plain))
            if params:
                groups.append({"params": params, "weight_decay": 0.0 if plain else weight_decay,
                               "lr": lr if prefix is None else group_lrs[prefix]})
    return groups


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """The optimiser ``recipe`` names, over the trainable parameters of ``model`` in their groups."""
    if recipe.optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {recipe.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in recipe.optimizer_kwargs.items()}
    groups = param_groups(model, recipe.lr, recipe.weight_decay, recipe.decay_rule, recipe.group_lrs)
    return OPTIMIZERS[recipe.optimizer](groups, lr=recipe.lr, **kwargs)


def make_scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe, units: int,
                   warmup: int) -> torch.optim.lr_scheduler.LRScheduler:
    """The schedule ``recipe`` names over a run of ``units`` of its unit (steps, or epochs),
    the first ``warmup`` of them warming up."""
    sched = torch.optim.lr_scheduler
    if recipe.schedule == "warmup-cosine":
        return sched.LambdaLR(optimizer, lambda u: lr_factor(u, units, warmup))
    if recipe.schedule == "progress-cosine":
        if recipe.warmup_fraction is None:
            raise ValueError("the progress cosine needs warmup_fraction (CLIP4Clip's warmup_proportion)")
        fraction = recipe.warmup_fraction if recipe.warmup_kind != "none" else 0.0
        return sched.LambdaLR(optimizer, lambda u: progress_cosine(u, max(1, units), fraction))
    if recipe.schedule == "onecycle":
        total = max(units, math.ceil(units * recipe.schedule_length))
        return sched.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total,
                                pct_start=recipe.pct_start)
    if recipe.schedule != "cosine":
        raise ValueError(f"unknown schedule {recipe.schedule!r}; choose one of {SCHEDULES}")
    warm = warmup if recipe.warmup_kind != "none" else 0
    span = units if recipe.cosine_span == "whole run" else units - warm
    cosine = sched.CosineAnnealingLR(optimizer, T_max=max(1, span), eta_min=recipe.min_lr)
    if not warm:
        return cosine
    if recipe.warmup_kind == "constant":
        if not recipe.warmup_lr:
            raise ValueError("a constant warm-up needs warmup_lr (Dassl's WARMUP_CONS_LR)")
        first = sched.ConstantLR(optimizer, factor=recipe.warmup_lr / recipe.lr, total_iters=warm)
    elif recipe.warmup_kind == "linear":
        first = sched.LinearLR(optimizer, start_factor=1e-6, end_factor=1.0, total_iters=warm)
    else:
        raise ValueError(f"unknown warm-up {recipe.warmup_kind!r}; choose one of {WARMUPS}")
    return sched.SequentialLR(optimizer, [first, cosine], milestones=[warm])
