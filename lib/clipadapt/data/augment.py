"""Training augmentations by name, as the official recipes draw them (torchvision's ops, timm's RandAugment).

Each augmentation works on CLIP-normalised tensors and takes its randomness from a
``torch.Generator`` of the example's own (``seeds.generator(seed, ..., step, index)``), so a
batch is the same however it is sharded and a resumed run draws what it would have drawn:

* ``"none"``;
* ``"crop-flip"`` -- ``RandomResizedCrop`` (area (0.08, 1), aspect (3/4, 4/3), bicubic) then
  a horizontal flip with probability 0.5: Dassl's ``random_resized_crop`` + ``random_flip``
  (CoOp, SoftCPT) and CLIP-LoRA's training transform;
* ``"resize-crop-flip"`` -- resize by 256/224, a random crop back to the input size, a flip:
  VPT's FGVC transform (``src/data/transforms.py:20-31``);
* ``"crop-flip-video"`` -- one ``RandomResizedCrop`` (area (0.5, 1)) and one flip for all of
  a video's frames: X-Pool's training transform, which VoP builds on;
* ``"timm:<config>"`` -- timm's own ``rand_augment_transform(config)`` on PIL frames (bicubic,
  grey fill 128, as TempMe's ``create_random_augment``), with the same draw of operations,
  coins and magnitudes for all of a video's frames, as TempMe's video ``AugmentOp`` applies
  one draw to the list of frames (``tvr/dataloaders/rand_augment.py:364-381``); the recipe
  file holds the config (TempMe: ``rand-m7-n4-mstd0.5-inc1``). timm draws from Python's
  ``random`` and ``numpy.random``: both are seeded from the example's generator around each
  frame's call and restored after it;
* ``"weak-strong"`` -- the multi-label task's own weak and strong views
  (:func:`clipadapt.data.multilabel.weak_view`, ``strong_view``), applied by that task.

The pictures here are the evaluation transform's centre crops, so a crop is drawn from the
centre crop rather than from the whole picture (the recipe card says so). Videos under an
official frame rule (the paper profile) are augmented from their raw frames instead, as the
official loaders do: :func:`clipadapt.data.video.augment_raw`.
"""

from __future__ import annotations

import functools
import math
import random

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from ..core.pixels import MEAN, STD

AUGMENTATIONS = ("none", "crop-flip", "resize-crop-flip", "crop-flip-video", "timm:<config>", "weak-strong")
TIMM = "timm:"


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * torch.rand(1, generator=g).item()


def crop_params(h: int, w: int, scale: tuple[float, float], ratio: tuple[float, float],
                g: torch.Generator) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of a random resized crop, drawn as torchvision's
    ``RandomResizedCrop.get_params`` draws it (ten tries, then the centre), from ``g``."""
    area = h * w
    for _ in range(10):
        target = area * _uniform(g, *scale)
        aspect = math.exp(_uniform(g, math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(torch.randint(0, h - ch + 1, (1,), generator=g))
            left = int(torch.randint(0, w - cw + 1, (1,), generator=g))
            return top, left, ch, cw
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, round(w / ratio[0])
    elif in_ratio > ratio[1]:
        cw, ch = round(h * ratio[1]), h
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def _crop_flip(x: torch.Tensor, g: torch.Generator, scale: tuple[float, float]) -> torch.Tensor:
    """``x`` ``(..., 3, H, W)``: one resized crop and one coin for a flip, for all of ``x``."""
    h, w = x.shape[-2:]
    top, left, ch, cw = crop_params(h, w, scale, (3 / 4, 4 / 3), g)
    x = TF.resized_crop(x, top, left, ch, cw, [h, w], interpolation=InterpolationMode.BICUBIC, antialias=True)
    return TF.horizontal_flip(x) if torch.rand(1, generator=g).item() < 0.5 else x


def _resize_crop_flip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    h, w = x.shape[-2:]
    big = TF.resize(x, [round(h * 256 / 224), round(w * 256 / 224)], antialias=True)
    top = int(torch.randint(0, big.shape[-2] - h + 1, (1,), generator=g))
    left = int(torch.randint(0, big.shape[-1] - w + 1, (1,), generator=g))
    x = TF.crop(big, top, left, h, w)
    return TF.horizontal_flip(x) if torch.rand(1, generator=g).item() < 0.5 else x


@functools.lru_cache(maxsize=8)
def timm_transform(config: str, size: int):
    """timm's ``rand_augment_transform(config)`` with TempMe's hparams: bicubic, and the
    translate constant of ``size`` (``tvr/dataloaders/video_transforms.py:636-653``)."""
    from timm.data.auto_augment import rand_augment_transform  # lazy: timm loads slowly; TempMe's recipe alone needs it
    return rand_augment_transform(config, {"translate_const": int(size * 0.45),
                                           "interpolation": Image.BICUBIC})


def timm_frames(frames: torch.Tensor, g: torch.Generator, config: str, size: int) -> torch.Tensor:
    """timm's RandAugment ``config`` (translate constant of ``size``) on each uint8 frame
    ``(N, H, W, 3)``, every frame under the same seed of ``random`` and ``numpy.random``
    (drawn from ``g``): one draw. Returns uint8 ``(N, H, W, 3)``."""
    tf = timm_transform(config, size)
    seed = int(torch.randint(2 ** 32, (1,), generator=g))
    py, npy = random.getstate(), np.random.get_state()
    out = []
    try:
        for f in frames:
            random.seed(seed)
            np.random.seed(seed)
            pic = tf(Image.fromarray(f.cpu().numpy()))
            out.append(torch.from_numpy(np.asarray(pic).copy()))
    finally:
        random.setstate(py)
        np.random.set_state(npy)
    return torch.stack(out)


def _timm(x: torch.Tensor, g: torch.Generator, config: str) -> torch.Tensor:
    """timm's RandAugment ``config`` on each frame of ``x`` ``(..., 3, H, W)``, CLIP-normalised
    in and out, one draw for all of them (:func:`timm_frames`)."""
    mean, std = MEAN.view(3, 1, 1).to(x), STD.view(3, 1, 1).to(x)
    frames = (x * std + mean).clamp(0, 1).mul(255).round().to(torch.uint8).reshape(-1, *x.shape[-3:])
    out = timm_frames(frames.permute(0, 2, 3, 1), g, config, min(x.shape[-2:]))  # (N, H, W, 3)
    pictures = out.permute(0, 3, 1, 2).reshape(x.shape).to(x) / 255
    return (pictures - mean) / std


def one(name: str, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Augmentation ``name`` of one picture ``(3, H, W)`` or one video ``(T, 3, H, W)`` (the
    same draw for all its frames), CLIP-normalised in and out."""
    if name.startswith(TIMM):
        return _timm(x, g, name[len(TIMM):])
    if name not in AUGMENTATIONS[:4]:
        raise ValueError(f"unknown augmentation {name!r} here; choose one of {AUGMENTATIONS[:-1]}")
    if name == "none":
        return x
    if name == "crop-flip":
        return _crop_flip(x, g, (0.08, 1.0))
    if name == "crop-flip-video":
        return _crop_flip(x, g, (0.5, 1.0))
    return _resize_crop_flip(x, g)


def batch(name: str, x: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
    """Augmentation ``name`` of each example of ``x`` ``(B, ...)`` with its own generator."""
    if name == "none":
        return x
    return torch.stack([one(name, xi, g) for xi, g in zip(x, generators)])
