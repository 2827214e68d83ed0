"""Swap open_clip's residual blocks for method blocks, and back (ToMe's ``apply_patch`` style).

Some methods change what happens *inside* a transformer block: ToMe and TempMe merge tokens
between attention and MLP. Rather than rebuild the network, we change the class of the
existing block objects (``block.__class__ = ...``). The modules, parameters and their names stay
exactly where they were, so pre-trained weights load unchanged (the state_dict keys are the same
before and after) and :func:`remove` gives back the stock classes, hence the stock outputs.

The merging block is written against the parts every open_clip version shares: ``ln_1``,
``attn.in_proj_weight`` / ``attn.in_proj_bias`` / ``attn.out_proj`` (``nn.MultiheadAttention``
and open_clip's own ``Attention`` alike), ``ls_1`` / ``ls_2`` when present, ``ln_2`` and
``mlp``. It computes attention itself (:func:`attention`), because it needs the keys as the
merge metric and an additive ``log(size)`` bias (proportional attention). It reads
``attn.in_proj_weight`` afresh on every call, so a ``torch.nn.utils.parametrize`` LoRA on that
weight is honoured.

The blocks of one transformer share a :class:`MergeState` (ToMe keeps ``_tome_info`` on the
model): what to merge in each layer, and, during a forward pass, the token sizes, the optional
provenance and the token count after each layer. The patched transformer resets it at the start
of every forward pass::

    state = patching.apply(model.visual, r=2, trace_source=True)
    model.encode_image(images)
    state.tokens        # tokens per sequence after each layer, e.g. [48, 46, 44, ...]
    state.source        # (B, N_out, N_in) which input patches each output token holds
    patching.remove(model.visual)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from . import merge as tm

_ORIGINAL = "_patching_original_class"


@dataclass
class MergeState:
    """Shared by the patched blocks of one transformer. ``r[i]``: tokens layer i merges."""

    r: list[int]
    protected: int = 1
    trace_source: bool = False
    prop_attn: bool = True
    batch_first: bool = True
    size: torch.Tensor | None = None  # (B, N_now, 1) patches per token; None = all ones
    source: torch.Tensor | None = None  # (B, N_now, N_in) provenance when trace_source
    tokens: list[int] = field(default_factory=list)  # tokens after each layer, last pass
    # optional step before attention, ``(layer, x, state) -> x``: TempMe's ClipMe blocks join
    # frames into clips and merge across them there (they update size, source, protected)
    pre_attention: Callable[[int, torch.Tensor, "MergeState"], torch.Tensor] | None = None
    # the merging functions the blocks (and pre_attention) call: core.merge's, or those given to apply
    ops: tm.MergeOps = field(default_factory=tm.MergeOps)

    def set_r(self, r: int | Sequence[int]) -> None:
        """Merge ``r`` tokens in every layer (an int) or ``r[i]`` in layer i (a sequence)."""
        layers = len(self.r)
        rs = [r] * layers if isinstance(r, int) else [int(v) for v in r]
        if len(rs) != layers or any(v < 0 for v in rs):
            raise ValueError(f"r must be an int >= 0 or {layers} of them (one per layer), got {r!r}")
        self.r = rs

    def reset(self) -> None:
        self.size, self.source, self.tokens = None, None, []


def attention(block: nn.Module, x: torch.Tensor, size: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Self-attention of ``block.attn`` on normed tokens ``x`` ``(B, N, D)``, with the
    proportional bias ``log(size)`` when ``size`` ``(B, N, 1)`` is given.

    Returns the attention output ``(B, N, D)`` (after ``out_proj``) and the keys averaged over
    heads ``(B, N, D / heads)``, ToMe's merge metric."""
    attn = block.attn
    B, N, D = x.shape
    h = attn.num_heads
    qkv = F.linear(x, attn.in_proj_weight, attn.in_proj_bias)  # (B, N, 3D); read each call
    q, k, v = qkv.reshape(B, N, 3, h, D // h).permute(2, 0, 3, 1, 4)  # each (B, h, N, D/h)
    bias = None if size is None else tm.proportional_bias(size).to(q.dtype)  # (B, 1, 1, N)
    p = _dropout_p(attn) if block.training else 0.0
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p)  # (B, h, N, D/h)
    out = attn.out_proj(out.transpose(1, 2).reshape(B, N, D))
    return out, k.mean(1)


def _dropout_p(attn: nn.Module) -> float:
    p = getattr(attn, "dropout", 0.0)  # nn.MultiheadAttention keeps a float
    return p if isinstance(p, float) else getattr(getattr(attn, "attn_drop", None), "p", 0.0)


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _part(block: nn.Module, name: str):
    """``block.<name>`` if the block has it (layer scale, sub-LN), else the identity."""
    part = getattr(block, name, None)
    return _identity if part is None else part


class MergingBlock(nn.Module):
    """Mixed in front of an open_clip residual block class: ToMe's block.

    ``x + ls_1(attn(ln_1(x)))``, then merge ``r`` tokens (size-weighted, keys as metric), then
    ``x + ls_2(mlp(ln_2(x)))``."""

    _merge_state: MergeState
    _merge_layer: int

    def forward(self, q_x, k_x=None, v_x=None, attn_mask=None):
        if k_x is not None or v_x is not None or attn_mask is not None:
            raise ValueError("a merging block does self-attention without a mask (image towers); "
                             "got cross-attention inputs or an attn_mask")
        st = self._merge_state
        x = q_x if st.batch_first else q_x.transpose(0, 1)  # (B, N, D)
        if st.pre_attention is not None:
            x = st.pre_attention(self._merge_layer, x, st)
        out, metric = attention(self, self.ln_1(x), st.size if st.prop_attn else None)
        x = x + _part(self, "ls_1")(_part(self, "ln_attn")(out))
        r, ops = st.r[self._merge_layer], st.ops
        if r > 0:
            merge, _ = ops.bipartite_soft_matching(metric, r, st.protected)
            if st.trace_source:
                st.source = ops.merge_source(merge, x, st.source)
            x, st.size = ops.merge_wavg(merge, x, st.size)
        elif st.trace_source and st.source is None:
            st.source = ops.start_source(x)
        st.tokens.append(x.shape[1])
        x = x + _part(self, "ls_2")(self.mlp(self.ln_2(x)))
        return x if st.batch_first else x.transpose(0, 1)


class _ResettingTransformer(nn.Module):
    """Mixed in front of the transformer's class: clear the shared state before each pass."""

    def forward(self, *args, **kwargs):
        if getattr(self, "grad_checkpointing", False) and self.training:
            raise NotImplementedError("token merging keeps state across blocks, which gradient "
                                      "checkpointing would recompute; set grad_checkpointing = False")
        self._merge_state.reset()
        return super().forward(*args, **kwargs)


_classes: dict[tuple[type, type], type] = {}


def _mixed(mixin: type, base: type) -> type:
    """``class MergingX(mixin, X)``, made once per stock class X."""
    if (mixin, base) not in _classes:
        _classes[mixin, base] = type(f"Merging{base.__name__}", (mixin, base), {"__module__": __name__})
    return _classes[mixin, base]


def _transformer(module: nn.Module) -> nn.Module:
    if hasattr(module, "visual"):
        raise ValueError(f"pass the image tower (model.visual) or its transformer, not the whole "
                         f"{type(module).__name__}: its .transformer is the text tower")
    if hasattr(module, "resblocks"):
        return module
    if hasattr(getattr(module, "transformer", None), "resblocks"):
        return module.transformer
    raise TypeError(f"expected an open_clip VisionTransformer or Transformer (with .resblocks), "
                    f"got {type(module).__name__}")


def _check_block(i: int, block: nn.Module) -> None:
    attn = getattr(block, "attn", None)
    for name in ("ln_1", "attn", "ln_2", "mlp"):
        if getattr(block, name, None) is None:
            raise TypeError(f"resblocks[{i}] ({type(block).__name__}) has no .{name}")
    if getattr(attn, "in_proj_weight", None) is None or not hasattr(attn, "out_proj"):
        raise TypeError(f"resblocks[{i}].attn ({type(attn).__name__}) has no fused in_proj_weight and "
                        f"out_proj; wrap LoRA as a parametrization of in_proj_weight instead")
    extras = [n for n in ("ln_q", "ln_k", "ln_inner") if not isinstance(getattr(attn, n, nn.Identity()), nn.Identity)]
    extras += [n for n in ("logit_scale", "head_scale") if getattr(attn, n, None) is not None]
    if extras:
        raise NotImplementedError(f"resblocks[{i}].attn uses {', '.join(extras)}, which the merging block "
                                  f"does not compute")


def apply(module: nn.Module, r: int | Sequence[int] = 0, protected: int = 1, trace_source: bool = False,
          prop_attn: bool = True, ops: tm.MergeOps | None = None) -> MergeState:
    """Patch the blocks of ``module`` (``model.visual`` or its ``transformer``) to merge tokens.

    ``r``: tokens merged per layer (an int, or one per layer); change it later with
    ``state.set_r``. ``protected``: leading tokens never merged (the class token, or TempMe's
    several class tokens). ``trace_source``: keep provenance in ``state.source``. ``ops``: the
    merging functions the blocks call (default: :mod:`clipadapt.core.merge`'s). Patching an
    already patched module patches it afresh with a new state. Returns the shared state."""
    transformer = _transformer(module)
    if protected < 0:
        raise ValueError(f"protected must be >= 0, got {protected}")
    blocks = list(transformer.resblocks)
    for i, block in enumerate(blocks):
        _check_block(i, block)
    remove(transformer)
    state = MergeState([0] * len(blocks), protected, trace_source, prop_attn,
                       getattr(transformer, "batch_first", True), ops=ops or tm.MergeOps())
    state.set_r(r)
    for i, block in enumerate(blocks + [transformer]):
        mixin = _ResettingTransformer if block is transformer else MergingBlock
        setattr(block, _ORIGINAL, type(block))
        block.__class__ = _mixed(mixin, type(block))
        block._merge_state = state
        block._merge_layer = i
    return state


def remove(module: nn.Module) -> None:
    """Undo :func:`apply`: the stock classes come back (nothing happens if not patched)."""
    transformer = _transformer(module)
    for m in [transformer, *transformer.resblocks]:
        if hasattr(m, _ORIGINAL):
            m.__class__ = getattr(m, _ORIGINAL)
            for name in (_ORIGINAL, "_merge_state", "_merge_layer"):
                delattr(m, name)


def state_of(module: nn.Module) -> MergeState | None:
    """The :class:`MergeState` of a patched module, None if it is not patched."""
    return getattr(_transformer(module), "_merge_state", None)
