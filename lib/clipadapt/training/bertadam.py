"""BertAdam: the Adam of CLIP4Clip's official training (ArrowLuo/CLIP4Clip
modules/optimization.py:52-168), and the learning-rate curve it schedules with.

It differs from ``torch.optim.AdamW`` in two ways that change the first steps and the
last ones:

* no bias correction: the step is ``m / (sqrt(v) + eps)`` with the raw moving averages
  (``m`` and ``v`` start at zero, so the first steps differ from Adam's: at step one
  ``(1 - b1) / sqrt(1 - b2)`` times the gradient's sign, 0.71 at CLIP4Clip's betas 0.9 and
  0.98, where Adam's is 1);
* weight decay is added to that step, ``p -= lr * (m / (sqrt(v) + eps) + wd * p)``, which
  is AdamW's decoupled decay written the other way round.

The official optimiser also clips each parameter's gradient to norm ``max_grad_norm``
before its update (optimization.py:135-136); ``clip_each`` keeps that, off by default:
after the loop's clip of the whole gradient to the same norm (main_task_retrieval.py:278)
it changes nothing, since no part of a vector is longer than the vector.

The schedule, :func:`progress_cosine`, is ``warmup_cosine`` (optimization.py:26-29): a
linear rise over the first ``warmup`` fraction of the run, then ``(1 + cos(pi x)) / 2`` of
the run's *overall* progress ``x``, so it starts below 1 after the warm-up and ends at 0.
BertAdam reads it at the step count before the update (optimization.py:158-159): the first
update takes a rate of 0.
"""

from __future__ import annotations

import math

import torch


def progress_cosine(step: int, total: int, warmup: float) -> float:
    """The factor of the base rate at update ``step`` (0-based) of ``total``: ``x / warmup``
    while the progress ``x = step / total`` is below ``warmup``, then ``(1 + cos(pi x)) / 2``."""
    if total < 1:
        raise ValueError(f"a schedule needs at least one step, got total={total}")
    if not 0 <= warmup < 1:
        raise ValueError(f"warmup is a fraction of the run in [0, 1), got {warmup}")
    x = step / total
    if x < warmup:
        return x / warmup
    return 0.5 * (1.0 + math.cos(math.pi * x))


class BertAdam(torch.optim.Optimizer):
    """Adam without bias correction, with decoupled weight decay (see the module). Each
    group may set its own ``lr`` and ``weight_decay``; ``betas`` and ``eps`` as Adam's."""

    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.01, clip_each: float | None = None):
        if lr < 0:
            raise ValueError(f"lr must be >= 0, got {lr}")
        if not all(0 <= b < 1 for b in betas) or len(betas) != 2:
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas}")
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        if clip_each is not None and clip_each <= 0:
            raise ValueError(f"clip_each must be a positive norm or None, got {clip_each}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                                  "clip_each": clip_each})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("BertAdam takes dense gradients only")
                if group["clip_each"] is not None:
                    torch.nn.utils.clip_grad_norm_(p, group["clip_each"])
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                m, v, g = state["m"], state["v"], p.grad
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                update = m / (v.sqrt() + group["eps"])
                if group["weight_decay"] > 0:
                    update.add_(p, alpha=group["weight_decay"])
                p.add_(update, alpha=-group["lr"])
                state["step"] += 1
        return loss
