"""What every chapter's first code cell calls: :func:`setup`."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from . import profiles
from .core import models


class Setup(NamedTuple):
    profile: profiles.Profile
    device: torch.device
    clip: Any  # the profile's CLIP (None with with_clip=False)
    preprocess: Any  # its image transform
    tokenizer: Any


def setup(profile=None, with_clip: bool = True) -> Setup:
    """The profile (``None``: :func:`clipadapt.profiles.default_name`), the device it runs on
    and, with ``with_clip``, the profile's CLIP with its transform and tokenizer, on that
    device. A chapter starts ``P, device, clip, preprocess, tokenizer = chapter.setup(profile)``."""
    p = profiles.get(profile)
    device = profiles.pick_device(p.device)
    if not with_clip:
        return Setup(p, device, None, None, None)
    clip, preprocess, tokenizer = models.load_clip(p.clip_model, p.clip_pretrained, device=device)
    return Setup(p, device, clip, preprocess, tokenizer)
