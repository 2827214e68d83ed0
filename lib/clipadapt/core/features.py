"""Features in, similarities out: the small pieces every method shares.

* :func:`encode_batched` -- run an encoder over many inputs in batches without
  gradients (one batch size for the whole library, :data:`BATCH`);
* :func:`encode_images` / :func:`encode_texts` -- normalised CLIP features of images
  (already CLIP-normalised pixels) and of strings;
* :func:`scaled_cosine` -- CLIP's logits: temperature times the cosine similarity, plus
  the model's ``logit_bias`` where it has one (SigLIP-style models);
* :func:`mean_pool` -- a video's feature as the mean of its normalised frame features
  (CLIP4Clip's parameter-free baseline, and VoP's pooling).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

BATCH = 256


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def encode_batched(fn: Callable, inputs: Sequence, batch_size: int = BATCH) -> torch.Tensor | tuple:
    """``fn`` on ``inputs[i:i + batch_size]`` for every batch, without gradients, the
    outputs concatenated (element-wise when ``fn`` returns a tuple). ``inputs`` is a tensor
    or any sliceable sequence (e.g. ``range(len(dataset))``)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if len(inputs) == 0:
        raise ValueError("nothing to encode: inputs is empty")
    with torch.no_grad():
        outs = [fn(inputs[i:i + batch_size]) for i in range(0, len(inputs), batch_size)]
    if isinstance(outs[0], tuple):
        return tuple(torch.cat(parts) for parts in zip(*outs))
    return torch.cat(outs)


def encode_images(model: nn.Module, images: torch.Tensor, batch_size: int = BATCH) -> torch.Tensor:
    """L2-normalised image features of CLIP-normalised pixels ``(N, 3, H, W)``."""
    device = _device(model)
    return F.normalize(encode_batched(lambda x: model.encode_image(x.to(device)), images, batch_size), dim=-1)


def encode_texts(model: nn.Module, tokenizer, texts: list[str], batch_size: int = BATCH) -> torch.Tensor:
    """L2-normalised text features of strings."""
    device = _device(model)
    return F.normalize(encode_batched(lambda t: model.encode_text(tokenizer(list(t)).to(device)), texts, batch_size),
                       dim=-1)


def scaled_cosine(a: torch.Tensor, b: torch.Tensor, clip: nn.Module) -> torch.Tensor:
    """CLIP's logits ``(len(a), len(b))``: ``exp(logit_scale) * cos(a, b) + logit_bias``."""
    logits = clip.logit_scale.exp() * F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).t()
    bias = getattr(clip, "logit_bias", None)
    return logits if bias is None else logits + bias


def mean_pool(frame_features: torch.Tensor) -> torch.Tensor:
    """Video features ``(B, D)`` from frame features ``(B, T, D)``: the mean of the
    normalised frame features (not renormalised)."""
    if frame_features.ndim != 3:
        raise ValueError(f"frame features must be (B, T, D), got {tuple(frame_features.shape)}")
    return F.normalize(frame_features, dim=-1).mean(1)


def fingerprint(encoder: nn.Module) -> int:
    """A cache key for an encoder's weights: a hash of the first 32 values of each tensor
    (stored features are valid while it stays the same)."""
    return hash(torch.cat([p.detach().flatten()[:32].float().cpu() for p in encoder.parameters()]).numpy().tobytes())
