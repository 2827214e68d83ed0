"""A recipe's precision, and CLIP in half precision as OpenAI's code runs it.

A recipe trains in one of :data:`PRECISIONS`:

* ``"amp"`` -- float32 weights, autocast on CUDA (:class:`clipadapt.training.loop.Trainer`);
* ``"fp32"`` -- float32 throughout;
* ``"fp16"`` -- the official rows of CoOp, SoftCPT and zero-shot CLIP: the CLIP as OpenAI's
  ``clip.load`` gives it (``clip_model.dtype`` float16, never ``.float()``), the method's own
  tensors made in that dtype, no autocast and no gradient scaler; the optimiser steps on the
  float16 parameters (CoOp's trainer, Dassl's ``model_backward_and_update``).

:func:`half` turns a float32 open_clip CLIP into OpenAI's float16 CLIP, weight for weight as
OpenAI's ``clip/model.py`` ``convert_weights`` leaves it (open_clip's
``convert_weights_to_lp`` is that function, ported):

* float16: every convolution and linear layer, the attention's in-projection, and the two
  projections ``text_projection`` and ``visual.proj``;
* float32: the layer norms, which also compute in float32 and hand back float16 (OpenAI's
  ``LayerNorm`` subclass; open_clip's ``LayerNormFp32``), the embeddings (cast to float16
  where they are added) and ``logit_scale``.

Images enter in float32 and are cast to the model's dtype at its first convolution, as
OpenAI's ``encode_image`` casts them (``self.visual(image.type(self.dtype))``) -- every
path into the image encoder (``encode_image``, the prompted encoders of
:mod:`clipadapt.core.prompting`) starts there. :func:`dtype` is OpenAI's ``CLIP.dtype``:
the dtype a method makes its own tensors in.
"""

from __future__ import annotations

import torch
from open_clip.model import convert_weights_to_lp
from open_clip.transformer import LayerNormFp32
from torch import nn

PRECISIONS = ("amp", "fp32", "fp16")


def check(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`; else a ValueError."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; a recipe trains in one of {PRECISIONS}")
    return precision


def check_model(model: nn.Module, precision: str, optimizer: str) -> None:
    """That ``model`` can train under ``precision`` with ``optimizer`` (a recipe's names); a
    ValueError else. The model's dtype is its builder's (:func:`clipadapt.training.driver.prepare`
    casts the CLIP of an ``"fp16"`` run with :func:`half`); where a float16 parameter trains,
    ``"fp16"`` needs SGD, as the official rows step: Adam's moments live in the parameter's
    dtype, where its eps and small squared gradients underflow to 0 and the loss turns NaN."""
    if check(precision) == "fp16" and optimizer != "sgd" and any(
            p.dtype == torch.float16 for p in model.parameters() if p.requires_grad):
        raise ValueError(f"precision 'fp16' steps on float16 parameters with SGD, as the official fp16 rows do; "
                         f"{optimizer!r} keeps its moments in float16, where they underflow: use 'amp' or 'fp32'")


def _first_conv(clip: nn.Module) -> nn.Module:
    conv = getattr(getattr(clip, "visual", None), "conv1", None)
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"{type(clip).__name__} has no image encoder with a first convolution (visual.conv1), "
                        "where half precision casts the images (OpenAI's CLIP, ViT or ResNet)")
    return conv


def dtype(clip: nn.Module) -> torch.dtype:
    """The dtype ``clip`` computes in: OpenAI's ``CLIP.dtype``, its first convolution's weight's."""
    return _first_conv(clip).weight.dtype


def _cast_images(conv: nn.Conv2d, args: tuple) -> tuple:
    """Forward pre-hook of the first convolution: the images in its weight's dtype."""
    return (args[0].to(conv.weight.dtype), *args[1:])


def half(clip: nn.Module) -> nn.Module:
    """``clip`` (an open_clip CLIP, changed in place) as OpenAI's float16 CLIP (see the
    module); returns it. A model already in half precision is returned as it is."""
    conv = _first_conv(clip)
    if _cast_images in conv._forward_pre_hooks.values():
        return clip
    convert_weights_to_lp(clip, torch.float16)
    for m in clip.modules():
        # open_clip builds a float32 model with its LayerNorm (computes in the input's dtype)
        # and a float16 one with LayerNormFp32: the same parameters, computing in float32
        if isinstance(m, nn.LayerNorm):
            m.__class__ = LayerNormFp32
    conv.register_forward_pre_hook(_cast_images)
    return clip
