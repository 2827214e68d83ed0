"""Multi-label data with incomplete labels (chapter 6).

Labels are kept in the partial-label convention of SCPNet's figure: ``observed[b, c]`` is
``1`` (known positive), ``-1`` (known negative) or ``0`` (unknown). From full labels
``targets`` (0/1):

* :func:`keep_labels` -- a proportion of all labels kept, the rest unknown: exactly
  ``round(proportion * N * C)`` entries, chosen at random from a seed (10% ... 90%);
* :func:`single_positive` -- one known positive per image, every other label unknown
  (the single-positive setting, the only one SCPNet's official code implements).

Both are deterministic given the seed. :func:`weak_view` and the strong views are the
two kinds of augmented views of SCPNet's self-supervision, on batches of pixels in [0, 1]:
a flip and a random resized crop; :func:`official_strong_view`, SCPNet's own order
(RandAugment(3, 5) and a cutout on the whole picture, then the weak view: the training
runs' fresh views under the official recipe), and :func:`strong_view`, a batched
approximation (the weak view first, 3 of 13 operations, no Equalize) that makes the stored
pool of views a frozen encoder's runs draw from (the tiny profile's).
:class:`SceneSet` and :func:`scene_sets` give the synthetic train and test sets.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..core.seeds import generator
from . import fixmatch, worlds


def _check_targets(targets: torch.Tensor) -> None:
    if targets.ndim != 2:
        raise ValueError(f"targets must be (N images, C classes), got shape {tuple(targets.shape)}")
    if not ((targets == 0) | (targets == 1)).all():
        raise ValueError("targets must hold only 0 and 1")


def keep_labels(targets: torch.Tensor, proportion: float, seed: int = 0) -> torch.Tensor:
    """Observed labels ``(N, C)`` in {1, -1, 0}: ``round(proportion * N * C)`` labels
    kept (positives as 1, negatives as -1), chosen uniformly at random, the rest 0."""
    _check_targets(targets)
    if not 0.0 < proportion <= 1.0:
        raise ValueError(f"proportion of labels kept must lie in (0, 1], got {proportion}")
    n = targets.numel()
    keep = torch.zeros(n, dtype=torch.bool)
    keep[torch.randperm(n, generator=generator(seed, "labels", "keep", f"{proportion:.4f}"))[:round(proportion * n)]] = True
    signed = torch.where(targets.flatten() > 0, 1, -1).to(torch.int8)
    return torch.where(keep, signed, torch.zeros_like(signed)).view_as(targets)


def single_positive(targets: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Observed labels ``(N, C)``: one of each image's positives (drawn at random) as 1,
    everything else 0. Raises on an image without positives."""
    _check_targets(targets)
    empty = (targets.sum(1) == 0).nonzero().flatten()
    if len(empty):
        raise ValueError(f"the single-positive setting needs a positive in every image; images {empty[:10].tolist()} "
                         f"have none")
    u = torch.rand(targets.shape, generator=generator(seed, "labels", "single"))
    pick = torch.where(targets > 0, u, torch.full_like(u, -1.0)).argmax(1)
    observed = torch.zeros(targets.shape, dtype=torch.int8)
    observed[torch.arange(len(targets)), pick] = 1
    return observed


def observe(targets: torch.Tensor, setting: float | str, seed: int = 0) -> torch.Tensor:
    """``setting`` a proportion (0, 1] for :func:`keep_labels`, or ``"single"``."""
    if setting == "single":
        return single_positive(targets, seed)
    if isinstance(setting, str):
        raise ValueError(f"a label setting is a proportion in (0, 1] or 'single', got {setting!r}")
    return keep_labels(targets, float(setting), seed)


# -- views ---------------------------------------------------------------------------------
def weak_view(images: torch.Tensor, g: torch.Generator, scale: tuple[float, float] = (0.5, 1.0),
              ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """Random horizontal flip and random resized crop (area ``scale``, aspect ``ratio``) of
    each image ``(B, 3, H, W)``, back to ``H x W``, as affine grids (one call per batch)."""
    B, _, H, W = images.shape
    area = scale[0] + (scale[1] - scale[0]) * torch.rand(B, generator=g)
    aspect = torch.exp(torch.empty(B).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=g))
    sx, sy = (area * aspect).sqrt().clamp(max=1), (area / aspect).sqrt().clamp(max=1)
    cx, cy = (1 - sx) * (2 * torch.rand(B, generator=g) - 1), (1 - sy) * (2 * torch.rand(B, generator=g) - 1)
    flip = torch.where(torch.rand(B, generator=g) < 0.5, -1.0, 1.0)
    theta = torch.zeros(B, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx * flip, cx, sy, cy
    grid = F.affine_grid(theta, (B, 3, H, W), align_corners=False)
    return F.grid_sample(images, grid.to(images.device), mode="bilinear", padding_mode="reflection",
                         align_corners=False)


# RandAugment's operations as FixMatch (and SCPNet's randaugment.py) draw them: each op's
# value uniform in its range. Equalize is left out (a per-image histogram, not batched).
STRONG_OPS = ("identity", "autocontrast", "brightness", "color", "contrast", "sharpness", "posterize", "solarize",
              "rotate", "shear_x", "shear_y", "translate_x", "translate_y")


def _grey(x: torch.Tensor) -> torch.Tensor:
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)


def _colour_op(op: str, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``op`` on a batch ``x`` with per-image value ``u`` in [0, 1] (mapped to the op's range)."""
    f = (0.05 + 0.9 * u).view(-1, 1, 1, 1)  # enhance factors 0.05..0.95
    if op == "autocontrast":
        lo, hi = x.amin((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)
        return ((x - lo) / (hi - lo).clamp(min=1e-3)).clamp(0, 1)
    if op == "brightness":
        return (x * f).clamp(0, 1)
    if op == "color":
        return (_grey(x) + f * (x - _grey(x))).clamp(0, 1)
    if op == "contrast":
        mean = _grey(x).mean((2, 3), keepdim=True)
        return (mean + f * (x - mean)).clamp(0, 1)
    if op == "sharpness":
        blur = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        return (blur + f * (x - blur)).clamp(0, 1)
    if op == "posterize":
        levels = 2 ** (4 + (u * 4).round()).view(-1, 1, 1, 1)  # 4..8 bits
        return (x * (levels - 1)).floor() / (levels - 1)
    if op == "solarize":
        t = u.view(-1, 1, 1, 1)
        return torch.where(x >= t, 1 - x, x)
    return x


def strong_view(images: torch.Tensor, g: torch.Generator, ops: int = 3, cutout: float = 0.5) -> torch.Tensor:
    """A weak view, then ``ops`` RandAugment operations per image drawn from
    :data:`STRONG_OPS` with random values, then a grey cutout square of side up to
    ``cutout`` of the image: a batched approximation of FixMatch's strong augmentation (one
    pass per operation slot), which makes the stored pool of views; the official order and
    operations are :func:`official_strong_view`'s."""
    x = weak_view(images, g)
    B, _, H, W = x.shape
    for _ in range(ops):
        pick = torch.randint(len(STRONG_OPS), (B,), generator=g)
        u = torch.rand(B, generator=g)
        out = x.clone()
        for i, op in enumerate(STRONG_OPS[1:8], start=1):
            rows = (pick == i).nonzero().flatten()
            if len(rows):
                out[rows] = _colour_op(op, x[rows], u[rows].to(x.device))
        theta = torch.eye(2, 3).repeat(B, 1, 1)
        v = 2 * u - 1  # -1..1
        angle = torch.deg2rad(30 * v)
        rot = pick == STRONG_OPS.index("rotate")
        theta[rot, 0, 0], theta[rot, 0, 1] = torch.cos(angle[rot]), -torch.sin(angle[rot])
        theta[rot, 1, 0], theta[rot, 1, 1] = torch.sin(angle[rot]), torch.cos(angle[rot])
        theta[pick == STRONG_OPS.index("shear_x"), 0, 1] = 0.3 * v[pick == STRONG_OPS.index("shear_x")]
        theta[pick == STRONG_OPS.index("shear_y"), 1, 0] = 0.3 * v[pick == STRONG_OPS.index("shear_y")]
        theta[pick == STRONG_OPS.index("translate_x"), 0, 2] = 0.6 * v[pick == STRONG_OPS.index("translate_x")]
        theta[pick == STRONG_OPS.index("translate_y"), 1, 2] = 0.6 * v[pick == STRONG_OPS.index("translate_y")]
        moved = pick >= STRONG_OPS.index("rotate")
        if moved.any():
            rows = moved.nonzero().flatten()
            grid = F.affine_grid(theta[rows], (len(rows), 3, H, W), align_corners=False).to(x.device)
            out[rows] = F.grid_sample(x[rows], grid, padding_mode="zeros", align_corners=False)
        x = out
    side = (cutout * torch.rand(B, generator=g) * H).long()
    y0, x0 = (torch.rand(B, generator=g) * H).long(), (torch.rand(B, generator=g) * W).long()
    rows, cols = torch.arange(H)[None, :, None], torch.arange(W)[None, None, :]
    box = ((rows - y0[:, None, None]).abs() <= side[:, None, None] // 2) & \
          ((cols - x0[:, None, None]).abs() <= side[:, None, None] // 2) & (side[:, None, None] > 0)
    return torch.where(box[:, None].to(x.device), torch.full_like(x, 0.5), x)


def official_strong_view(images: torch.Tensor, g: torch.Generator,
                         scale: tuple[float, float] = (0.5, 1.0)) -> torch.Tensor:
    """SCPNet's strong view of each image ``(B, 3, H, W)``: ``RandAugment(3, 5)`` with its
    cutout on the whole picture (PIL, :mod:`clipadapt.data.fixmatch`), then the weak view's
    flip and crop (``scpnet.py:33-37`` inserts the RandAugment ahead of the weak transform,
    ``:217-221``). Each picture's draw comes from a seed drawn from ``g``."""
    out = []
    for img in images:
        rng = random.Random(int(torch.randint(2 ** 62, (1,), generator=g)))
        pic = Image.fromarray(img.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy())
        pic = fixmatch.rand_augment(pic, rng, n=3)
        out.append(torch.from_numpy(np.asarray(pic).copy()).permute(2, 0, 1))
    return weak_view(torch.stack(out).to(images) / 255, g, scale)


# -- the synthetic sets ----------------------------------------------------------------------
@dataclass
class SceneSet:
    """Pixels in [0, 1] ``(N, 3, H, W)``, full labels ``(N, C)`` and the class names."""

    images: torch.Tensor
    targets: torch.Tensor
    classnames: tuple[str, ...]
    template: str = "a photo of a {}."

    def __len__(self) -> int:
        return len(self.targets)


def scene_sets(sizes: tuple[int, int], image_size: int = 64, seed: int = 0,
               hidden: str | None = None) -> tuple[SceneSet, SceneSet]:
    """The scene world's training and test sets of ``sizes`` = (train, test) pictures (a
    chapter's: clipadapt.experiments); with ``hidden`` (a shape), that shape's objects are
    hard to see (:class:`worlds.SceneWorld`)."""
    n_train, n_test = sizes
    if not all(isinstance(n, int) and n > 0 for n in (n_train, n_test)):
        raise ValueError(f"sizes: two positive counts (training, test pictures), got {sizes!r}")
    world = worlds.SceneWorld(image_size, hidden=hidden)
    out = []
    for split, n in (("train", n_train), ("test", n_test)):
        s = world.sample(n, generator(seed, "scenes", split))
        out.append(SceneSet(world.render(s), s.targets, world.classnames))
    return out[0], out[1]
