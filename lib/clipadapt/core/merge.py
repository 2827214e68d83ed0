"""Token merging as small pure functions (ToMe, Bolya et al., 2023; TempMe, 2025).

A vision transformer spends most of its work on patch tokens that say nearly the same thing
(sky next to sky). Token merging fuses such tokens inside the network, so every later layer
has fewer tokens to attend over. ToMe's recipe, *bipartite soft matching*, is cheap enough to
run in every layer and needs no training:

1. keep ``protected`` prefix tokens (class tokens) out of the game;
2. deal the other tokens alternately into two sets, A and B;
3. join each token of A to its most similar token of B (cosine similarity of a ``metric``,
   usually the attention keys averaged over heads);
4. of these A -> B edges keep the ``r`` strongest and merge along them; the other A tokens stay.

The sequence shrinks from N to N - r. :func:`bipartite_soft_matching` does steps 1-4 once and
returns two closures, ``merge`` and ``unmerge``, that replay the same decision on any tensor of
the same tokens: features, token sizes, provenance. A merged token stands for several patches,
so features are merged as size-weighted means (:func:`merge_wavg`) and attention gives a
token of size s the weight of s copies of itself by adding ``log s`` to its attention logits
(:func:`proportional_bias`). :func:`merge_source` tracks which input patches each surviving
token holds.

Video: TempMe's ClipMe and VoP^F both let tokens of several frames meet in one sequence.
:func:`group_frames` builds that sequence from per-frame sequences: the class tokens of all
frames first, in frame order, then the remaining tokens of each frame, in frame order.
TempMe's ``ToMeBlock`` (``tvr/models/module_tome_patch.py``, cross-clip step) orders its
concatenation exactly so, with ``prefix`` equal to its running ``cls_num`` (1, then 2, then 4
class tokens per clip); VoP^F's ``[C_1..C_F, P, E_1..E_F]`` is the same layout with
``group = F`` and ``prefix = 1`` (its prompts ``P`` are inserted after the grouping).

:class:`MergeOps` bundles the functions that a patched transformer calls while it runs
(:mod:`clipadapt.core.patching`, TempMe's ClipMe step); pass another bundle to
``patching.apply`` or ``TempMe`` -- an instrumented copy, say (``bench/tempme.py`` times the
merge overhead so) -- and this module stays as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

Merge = Callable[..., torch.Tensor]


def _identity(x: torch.Tensor, mode: str | None = None) -> torch.Tensor:
    return x


def mergeable(tokens: int, protected: int = 1) -> int:
    """The most tokens one matching can remove: half of the unprotected ones (set A's size)."""
    return max(0, (tokens - protected) // 2)


def bipartite_soft_matching(metric: torch.Tensor, r: int, protected: int = 1) -> tuple[Merge, Merge]:
    """Decide which ``r`` tokens to merge; return ``(merge, unmerge)`` closures.

    ``metric`` ``(B, N, C)``: what similarity is measured on. The first ``protected`` tokens are
    never merged and stay first. Of the others, the tokens at even positions of the whole
    sequence form set A and those at odd positions set B (the parity ToMe and TempMe use, so
    that with one class token the choices are theirs). ``r`` is clipped to
    :func:`mergeable`; ``r = 0`` gives identity closures.

    ``merge(x, mode="mean")`` maps ``(B, N, W)`` to ``(B, N - r, W)`` in the order
    ``[protected, kept A tokens in input order, B tokens]``; ``mode`` is any reduction of
    ``Tensor.scatter_reduce`` ("mean", "sum", "amax"). ``unmerge(y)`` maps ``(B, N - r, W)``
    back to ``(B, N, W)``, every input token receiving the value of the token it went into.
    """
    if metric.ndim != 3:
        raise ValueError(f"metric must have shape (B, N, C), got {tuple(metric.shape)}")
    B, N, _ = metric.shape
    if not 0 <= protected <= N:
        raise ValueError(f"protected must be between 0 and the {N} tokens, got {protected}")
    if r < 0:
        raise ValueError(f"r (tokens to merge) must be >= 0, got {r}")
    r = min(r, mergeable(N, protected))
    if r == 0:
        return _identity, _identity

    p, o = protected, protected % 2  # o: where set A starts among the unprotected tokens

    def split(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rest = x[:, p:]
        return rest[:, o::2], rest[:, 1 - o::2]  # A, B

    with torch.no_grad():
        a, b = split(metric / metric.norm(dim=-1, keepdim=True))
        scores = a @ b.transpose(1, 2)  # (B, Na, Nb) cosine similarities
        best, best_b = scores.max(dim=-1)  # (B, Na): each A token's closest B token
        order = best.argsort(dim=-1, descending=True)[..., None]  # (B, Na, 1) strongest first
        src_idx = order[:, :r]  # (B, r, 1) A tokens that merge
        keep_idx = order[:, r:].sort(dim=1).values  # (B, Na - r, 1) A tokens that stay, in order
        dst_idx = best_b[..., None].gather(1, src_idx)  # (B, r, 1) where they go in B
    na = a.shape[1]

    def merge(x: torch.Tensor, mode: str = "mean") -> torch.Tensor:
        w = x.shape[-1]
        xa, xb = split(x)
        kept = xa.gather(1, keep_idx.expand(B, na - r, w))
        src = xa.gather(1, src_idx.expand(B, r, w))
        xb = xb.scatter_reduce(1, dst_idx.expand(B, r, w), src, reduce=mode)
        return torch.cat([x[:, :p], kept, xb], dim=1)  # (B, N - r, W)

    def unmerge(y: torch.Tensor) -> torch.Tensor:
        w = y.shape[-1]
        kept, yb = y[:, p:p + na - r], y[:, p + na - r:]
        ya = y.new_empty(B, na, w)
        ya.scatter_(1, keep_idx.expand(B, na - r, w), kept)
        ya.scatter_(1, src_idx.expand(B, r, w), yb.gather(1, dst_idx.expand(B, r, w)))
        rest = y.new_empty(B, N - p, w)
        rest[:, o::2], rest[:, 1 - o::2] = ya, yb
        return torch.cat([y[:, :p], rest], dim=1)  # (B, N, W)

    return merge, unmerge


def start_size(x: torch.Tensor) -> torch.Tensor:
    """Every token of ``x`` ``(B, N, W)`` holds one patch: sizes ``(B, N, 1)`` of ones."""
    return x.new_ones(*x.shape[:2], 1)


def merge_wavg(merge: Merge, x: torch.Tensor, size: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge ``x`` ``(B, N, W)`` as means weighted by token ``size`` ``(B, N, 1)`` (ones when
    None); return the merged tokens and their sizes (sums of the merged sizes)."""
    size = start_size(x) if size is None else size
    total = merge(x * size, mode="sum")
    size = merge(size, mode="sum")
    return total / size, size


def start_source(x: torch.Tensor) -> torch.Tensor:
    """Provenance before any merge: token i holds input patch i, ``(B, N, N)`` identity."""
    B, N = x.shape[:2]
    return torch.eye(N, dtype=x.dtype, device=x.device).expand(B, N, N)


def merge_source(merge: Merge, x: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
    """Provenance after a merge: ``(B, N_now, N_input)`` 0/1 rows, row t marking the input
    patches token t holds. Merged rows are summed, so every input stays in exactly one row."""
    source = start_source(x) if source is None else source
    return merge(source, mode="sum")


def proportional_bias(size: torch.Tensor) -> torch.Tensor:
    """Additive attention-logit bias ``log(size)`` ``(B, 1, 1, N)`` from sizes ``(B, N, 1)``:
    a key of size s then weighs as s identical keys would."""
    return size.log()[:, None, None, :, 0]


def token_counts(tokens: int, r: Sequence[int], protected: int = 1) -> list[int]:
    """Token count after each layer when layer i asks to merge ``r[i]`` tokens (each request
    clipped as :func:`bipartite_soft_matching` clips it)."""
    counts = []
    for ri in r:  # a loop over layers, not tokens
        tokens -= min(ri, mergeable(tokens, protected))
        counts.append(tokens)
    return counts


def group_frames(x: torch.Tensor, group: int, prefix: int = 1, frames: int | None = None) -> torch.Tensor:
    """Join every ``group`` consecutive frame sequences into one clip sequence.

    ``x`` ``(B*T, N, W)`` holds the tokens of T frames per video, frames of a video adjacent.
    Returns ``(B*T/group, group*N, W)``: the ``prefix`` leading (class) tokens of the group's
    frames, frame by frame, then the other tokens of each frame, frame by frame. Works for
    features and sizes alike. Give ``frames`` (T) to check that no clip straddles two videos.
    """
    bt, n, w = x.shape
    if group < 1 or bt % group:
        raise ValueError(f"cannot group {bt} frame sequences {group} at a time: {bt} is not a multiple of {group}")
    if frames is not None and (bt % frames or frames % group):
        raise ValueError(f"cannot group T={frames} frames per video (batch of {bt} sequences) into clips of "
                         f"{group}: T must divide the batch and be a multiple of {group}")
    if not 0 <= prefix <= n:
        raise ValueError(f"prefix must be between 0 and the {n} tokens of a frame, got {prefix}")
    x = x.reshape(bt // group, group, n, w)
    head = x[:, :, :prefix].reshape(bt // group, group * prefix, w)  # class tokens, frame order
    tail = x[:, :, prefix:].reshape(bt // group, group * (n - prefix), w)  # the rest, frame order
    return torch.cat([head, tail], dim=1)


def ungroup_frames(x: torch.Tensor, group: int, prefix: int = 1) -> torch.Tensor:
    """Inverse of :func:`group_frames`: ``(B', group*N, W)`` -> ``(B'*group, N, W)``."""
    b, length, w = x.shape
    if group < 1 or length % group or length < group * prefix or prefix < 0:
        raise ValueError(f"a sequence of {length} tokens is not {group} frames with {prefix} class tokens "
                         f"each: {length} must be a multiple of {group} and at least {group} * {prefix}")
    n = length // group
    head = x[:, :group * prefix].reshape(b, group, prefix, w)
    tail = x[:, group * prefix:].reshape(b, group, n - prefix, w)
    return torch.cat([head, tail], dim=2).reshape(b * group, n, w)


@dataclass(frozen=True)
class MergeOps:
    """The merging functions a patched transformer calls, as one value; the defaults are this
    module's. Make a variant with ``dataclasses.replace(MergeOps(), merge_wavg=...)``."""

    bipartite_soft_matching: Callable[..., tuple[Merge, Merge]] = bipartite_soft_matching
    merge_wavg: Callable[..., tuple[torch.Tensor, torch.Tensor]] = merge_wavg
    merge_source: Callable[..., torch.Tensor] = merge_source
    start_source: Callable[[torch.Tensor], torch.Tensor] = start_source
    start_size: Callable[[torch.Tensor], torch.Tensor] = start_size
    group_frames: Callable[..., torch.Tensor] = group_frames
