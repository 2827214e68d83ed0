"""FixMatch's RandAugment as SCPNet's official ``randaugment.py`` has it, on PIL pictures.

``RandAugment(3, 5)`` (jameslahm/SCPNet ``randaugment.py:155-169``): three operations drawn
with replacement from the fourteen of ``augment_list`` (:146-152), each at a value uniform in
its range, then a cutout square of side up to half the picture, filled with (125, 123, 114)
(:116-143); ``m`` (5) is unused by the official code. Every op here is the official one,
line for line. The official draws come from Python's ``random`` and ``numpy.random``; here
from a ``random.Random`` of the caller's, so that a picture's draw is its own.
"""

from __future__ import annotations

import random

import PIL.ImageDraw
import PIL.ImageEnhance
import PIL.ImageOps
from PIL import Image


def _affine(img, coeffs):
    return img.transform(img.size, Image.AFFINE, coeffs)


# name, op, low, high: the official augment_list (randaugment.py:146-152), in its order
OPS = (
    ("AutoContrast", lambda img, v: PIL.ImageOps.autocontrast(img), 0, 1),
    ("Brightness", lambda img, v: PIL.ImageEnhance.Brightness(img).enhance(v), 0.05, 0.95),
    ("Color", lambda img, v: PIL.ImageEnhance.Color(img).enhance(v), 0.05, 0.95),
    ("Contrast", lambda img, v: PIL.ImageEnhance.Contrast(img).enhance(v), 0.05, 0.95),
    ("Equalize", lambda img, v: PIL.ImageOps.equalize(img), 0, 1),
    ("Identity", lambda img, v: img, 0, 1),
    ("Posterize", lambda img, v: PIL.ImageOps.posterize(img, max(1, int(v))), 4, 8),
    ("Rotate", lambda img, v: img.rotate(v), -30, 30),
    ("Sharpness", lambda img, v: PIL.ImageEnhance.Sharpness(img).enhance(v), 0.05, 0.95),
    ("ShearX", lambda img, v: _affine(img, (1, v, 0, 0, 1, 0)), -0.3, 0.3),
    ("ShearY", lambda img, v: _affine(img, (1, 0, 0, v, 1, 0)), -0.3, 0.3),
    ("Solarize", lambda img, v: PIL.ImageOps.solarize(img, v), 0, 256),
    ("TranslateX", lambda img, v: _affine(img, (1, 0, v * img.size[0], 0, 1, 0)), -0.3, 0.3),
    ("TranslateY", lambda img, v: _affine(img, (1, 0, 0, 0, 1, v * img.size[1])), -0.3, 0.3),
)
CUTOUT_FILL = (125, 123, 114)


def cutout(img: Image.Image, v: float, rng: random.Random) -> Image.Image:
    """The official ``Cutout``/``CutoutAbs`` (randaugment.py:116-143): a square of side
    ``v`` x the width, its centre uniform in the picture, clipped at the borders."""
    if v <= 0:
        return img
    v = v * img.size[0]
    w, h = img.size
    x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
    x0, y0 = int(max(0, x0 - v / 2.0)), int(max(0, y0 - v / 2.0))
    img = img.copy()
    PIL.ImageDraw.Draw(img).rectangle((x0, y0, min(w, x0 + v), min(h, y0 + v)), CUTOUT_FILL)
    return img


def rand_augment(img: Image.Image, rng: random.Random, n: int = 3) -> Image.Image:
    """``RandAugment(n, m).__call__`` (randaugment.py:162-169): ``n`` ops, then a cutout."""
    for _, op, lo, hi in rng.choices(OPS, k=n):
        img = op(img, lo + float(hi - lo) * rng.random())
    return cutout(img, rng.random() * 0.5, rng)
