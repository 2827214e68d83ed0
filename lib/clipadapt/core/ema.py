"""Moving averages of the weights: the decay that fixes how much of the average survives an
epoch (SCPNet's ``ModelEma`` rule). One definition, read by the method that keeps such an
average (:mod:`clipadapt.methods.scpnet`) and by the recipes that set its decay per profile
(:mod:`clipadapt.training.recipes`, the ``{ ema_keep = ..., epoch_of = ... }`` rule)."""

from __future__ import annotations

import math


def ema_decay(steps_per_epoch: int, keep: float = 0.82) -> float:
    """The decay ``d`` of ``avg = d * avg + (1 - d) * now`` for which the average keeps weight
    ``keep`` on itself after one epoch of ``steps_per_epoch`` steps: ``d ** steps = keep``
    (SCPNet's official ``ModelEma``, utils.py:343-360). Fewer than one step counts as one."""
    if not 0 < keep < 1:
        raise ValueError(f"keep must lie in (0, 1): the weight the average keeps on itself, got {keep!r}")
    return math.exp(math.log(keep) / max(1, steps_per_epoch))
