"""What trains: the one freezing policy for a whole CLIP.

=============  ===========================================================================
``none``       nothing (zero-shot)
``full``       every weight of both towers
``partial``    the last ``last_layers`` blocks of both towers, their final layer norms and
               the two projections (VoP's "Partial" baseline)
``lora``       LoRA of rank ``rank`` on the fused query-key-value weight of every block
               of both towers (:mod:`clipadapt.methods.lora`); the rest frozen
=============  ===========================================================================

The temperature ``logit_scale`` (and ``logit_bias``) stays frozen under every policy.
"""

from __future__ import annotations

from torch import nn

from . import models
from .methods import lora

POLICIES = ("none", "full", "partial", "lora")


def set_trainable(clip: nn.Module, policy: str, last_layers: int = 2, rank: int = 8) -> nn.Module:
    """Freeze ``clip`` and unfreeze (or adapt) what ``policy`` trains; returns ``clip``."""
    if policy not in POLICIES:
        raise ValueError(f"unknown tuning policy {policy!r}; choose one of {POLICIES}")
    models.freeze(clip)
    if policy == "full":
        models.unfreeze(clip)
    elif policy == "partial":
        layers = len(clip.visual.transformer.resblocks)
        if not 1 <= last_layers <= layers:
            raise ValueError(f"last_layers must lie in [1, {layers}], got {last_layers}")
        for blocks in (clip.visual.transformer.resblocks, clip.transformer.resblocks):
            for block in blocks[-last_layers:]:
                models.unfreeze(block)
        for p in (clip.visual.proj, clip.text_projection):
            p.requires_grad_(True)
        models.unfreeze(clip.visual.ln_post)
        models.unfreeze(clip.ln_final)
    elif policy == "lora":
        lora.add_lora(clip, rank=rank)
    for name in ("logit_scale", "logit_bias"):
        p = getattr(clip, name, None)
        if isinstance(p, nn.Parameter):
            p.requires_grad_(False)
    return clip
