"""ToMe on CLIP's image encoder (Bolya et al., ICLR 2023): merge ``r`` tokens in every layer.

The core -- bipartite soft matching, size-weighted merging, proportional attention and
provenance, as small pure functions -- is :mod:`clipadapt.core.merge`; the block swap that runs
it between attention and MLP is :mod:`clipadapt.core.patching`. This module is the thin method on
top: patch an open_clip model's image tower with ``r`` per layer (the class token protected),
read back the token trace, and turn provenance into merged-patch maps for figures::

    state = tome.apply(model, r=2, trace_source=True)
    model.encode_image(images)          # cheaper: 50 -> 48 -> ... -> 26 tokens on ViT-B/32
    tome.patch_groups(state.source, 1)  # (B, 49) which output token each patch went into
    tome.remove(model)                  # stock again

No parameter is added and none changes: ``r = 0`` gives the stock model (tests).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..core import merge, patching


def _visual(model: nn.Module) -> nn.Module:
    return model.visual if hasattr(model, "visual") else model


def apply(model: nn.Module, r: int | Sequence[int] = 2, trace_source: bool = False,
          prop_attn: bool = True) -> patching.MergeState:
    """Make ``model``'s image tower (a CLIP or its ``.visual``) merge ``r`` tokens per layer
    (an int, or one per layer). Returns the shared state (``state.tokens``, ``state.source``)."""
    return patching.apply(_visual(model), r, protected=1, trace_source=trace_source, prop_attn=prop_attn)


def remove(model: nn.Module) -> None:
    """Give the image tower its stock blocks back."""
    patching.remove(_visual(model))


def token_trace(tokens: int, r: int | Sequence[int], layers: int) -> list[int]:
    """Tokens leaving each of ``layers`` layers when each merges ``r`` (class token protected)."""
    rs = [r] * layers if isinstance(r, int) else list(r)
    if len(rs) != layers:
        raise ValueError(f"r must be an int or {layers} values (one per layer), got {len(rs)}")
    return merge.token_counts(tokens, rs, protected=1)


def patch_groups(source: torch.Tensor, protected: int = 1) -> torch.Tensor:
    """Which output token holds each input patch: ``source`` ``(B, N_out, N_in)`` (0/1 rows,
    :func:`clipadapt.core.merge.merge_source`) -> ``(B, N_in - protected)`` token indices, the
    class tokens' columns left out. Reshape to the patch grid to draw merged-patch maps."""
    if source.ndim != 3:
        raise ValueError(f"source must be (B, N_out, N_in), got {tuple(source.shape)}")
    return source[:, :, protected:].argmax(dim=1)
