"""CLIP's pixel normalisation: the one place where pictures become model input and back.

CLIP (and every open_clip model with the ``openai`` statistics) was trained on pictures
scaled to [0, 1] and then standardised per colour channel with the mean and standard
deviation of its training set::

    x_model = (x - MEAN) / STD        (MEAN, STD: (1, 3, 1, 1), broadcast over B, H, W)

:func:`normalize` does that for float pictures ``(B, 3, H, W)``, :func:`normalize_uint8`
for the uint8 frames ``(B, H, W, 3)`` that video decoders give (same numbers, bit for
bit, as scaling by 1/255 and calling :func:`normalize`), and :func:`denormalize` undoes it
to show a model input as a picture.

The statistics are written out here (they equal ``open_clip.OPENAI_DATASET_MEAN`` and
``..._STD``, which the tests check) so that data modules need not import open_clip.
"""

from __future__ import annotations

import torch

MEAN = torch.tensor((0.48145466, 0.4578275, 0.40821073)).view(1, 3, 1, 1)  # (1, 3, 1, 1): R, G, B
STD = torch.tensor((0.26862954, 0.26130258, 0.27577711)).view(1, 3, 1, 1)  # (1, 3, 1, 1)


def _check_channels_first(images: torch.Tensor, what: str) -> None:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected {what} of shape (B, 3, H, W), got {tuple(images.shape)}")


def normalize(images: torch.Tensor) -> torch.Tensor:
    """CLIP's pixel normalisation of float images in [0, 1], ``(B, 3, H, W)`` -> same shape."""
    _check_channels_first(images, "images")
    return (images - MEAN.to(images)) / STD.to(images)


def normalize_uint8(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames ``(B, H, W, 3)`` (as decoded) -> normalised float ``(B, 3, H, W)``.

    Exactly ``normalize(frames.permute(0, 3, 1, 2).float() / 255)``: the float copy is made
    here, so a caller that keeps frames as uint8 pays for floats only while it uses them.
    """
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames of shape (B, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
    return normalize(frames.permute(0, 3, 1, 2).float() / 255.0).contiguous()


def denormalize(images: torch.Tensor) -> torch.Tensor:
    """Undo :func:`normalize` for showing: ``(B, 3, H, W)`` model input -> pictures in
    [0, 1] (clipped, since a model input may stray outside what a picture can show)."""
    _check_channels_first(images, "normalised images")
    return (images * STD.to(images) + MEAN.to(images)).clamp(0, 1)
