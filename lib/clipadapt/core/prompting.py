"""Learned tokens inside a frozen open_clip model (chapter 2).

Two forward passes, each written out layer by layer so that tokens can be spliced in:

* :func:`encode_text_embeddings` -- the text encoder from *token embeddings* instead of
  token ids, so that learned context vectors can stand where words stood (CoOp), with
  optional *deep* prompts: fresh learned tokens inserted right after the start-of-text
  token before a layer and dropped after it. The causal mask is built for the longer
  sequence and passed explicitly (none for a text encoder built without one); the features are
  read where the model's own ``text_pool_type`` says (:func:`text_pool_index`).
* :func:`encode_image_prompted` -- the image encoder of a ViT with deep visual prompts
  (VPT-deep): learned tokens between the class token and the patch tokens, without
  positional embedding, inserted before every layer and dropped after it. The first
  layer's prompts pass through ``ln_pre`` with the patches (as in VoP's and MaPLe's code).
  The tokens after the last block go through :func:`image_head`, which pools and projects
  them as the model's own settings say (``_pool`` of open_clip >= 2.32, or the older
  ``attn_pool`` / ``final_ln_after_pool`` / ``pool_type`` path).

Both reduce exactly to open_clip's own ``encode_text`` / ``encode_image`` when no prompts
are given (tests check this to float tolerance).

Prompts are given per layer as a sequence (or a tensor of shape ``(layers, P, width)``);
an entry may be ``None`` (no prompts in that layer), ``(P, width)`` (shared by the batch)
or ``(B, P, width)`` (one set per example, as VoP's frame-specific prompts need).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

PromptSpec = Sequence[torch.Tensor | None] | torch.Tensor | None


def causal_mask(n: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Additive causal mask (n, n): 0 on and below the diagonal, -inf above."""
    return torch.full((n, n), float("-inf"), device=device, dtype=dtype).triu(1)


def _layer_prompts(prompts: PromptSpec, i: int, batch: int, dtype, x: torch.Tensor | None = None) -> torch.Tensor | None:
    if prompts is None:
        return None
    if callable(prompts):  # prompts computed from the tokens entering the layer (VoP^C)
        p = prompts(i, x)
    elif i >= len(prompts):
        return None
    else:
        p = prompts[i]
    if p is None or p.shape[-2] == 0:
        return None
    if p.ndim == 2:
        p = p.unsqueeze(0).expand(batch, -1, -1)
    elif p.ndim != 3 or p.shape[0] != batch:
        raise ValueError(f"prompts of layer {i} must be (P, width) or (batch={batch}, P, width), got {tuple(p.shape)}")
    return p.to(dtype)


def _check_depth(prompts: PromptSpec, layers: int, where: str) -> None:
    if prompts is not None and not callable(prompts) and len(prompts) > layers:
        raise ValueError(f"{len(prompts)} layers of {where} prompts given, but the encoder has {layers} layers")


# -- text ----------------------------------------------------------------------------------
def token_embeddings(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """The frozen word embeddings of token ids ``(B, L) -> (B, L, width)``."""
    return model.token_embedding(ids)


def eot_index(ids: torch.Tensor, model: nn.Module | None = None) -> torch.Tensor:
    """Position of the end-of-text token (the largest id in CLIP's vocabulary), ``(B, L) -> (B,)``.

    Given the ``model``, the position its text encoder pools instead (:func:`text_pool_index`)."""
    return ids.argmax(dim=-1) if model is None else text_pool_index(model, ids)


def text_pool_index(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """The position whose features ``model.encode_text`` pools, per sequence ``(B, L) -> (B,)``.

    Follows open_clip's ``text_global_pool`` with the model's ``text_pool_type``: ``argmax``
    (CLIP's end-of-text token has the largest id; also when the attribute is missing),
    ``first``, ``last``, or ``eos`` (the first ``text_eos_id`` in the sequence).
    """
    kind = getattr(model, "text_pool_type", "argmax")
    B, L = ids.shape
    if kind == "argmax":
        return ids.argmax(dim=-1)
    if kind == "first":
        return torch.zeros(B, dtype=torch.long, device=ids.device)
    if kind == "last":
        return torch.full((B,), L - 1, dtype=torch.long, device=ids.device)
    if kind == "eos":
        eos = getattr(model, "text_eos_id", None)
        if eos is None:
            raise ValueError("text_pool_type 'eos' needs the model's text_eos_id, which is not set")
        return (ids == eos).int().argmax(dim=-1)
    raise ValueError(f"text_pool_type {kind!r} does not pool one token per text; expected 'argmax', 'first', "
                     f"'last' or 'eos'")


def encode_text_embeddings(model: nn.Module, x: torch.Tensor, eot: torch.Tensor,
                           deep_prompts: PromptSpec = None) -> torch.Tensor:
    """Text features from token embeddings ``x`` (B, L, width), read at positions ``eot``.

    ``deep_prompts[i]`` are inserted after the start-of-text token before layer ``i`` and
    dropped after it; positional embeddings are added to the words only.
    """
    blocks = model.transformer.resblocks
    _check_depth(deep_prompts, len(blocks), "text")
    cast = model.transformer.get_cast_dtype()
    B, L, _ = x.shape
    x = x.to(cast) + model.positional_embedding[:L].to(cast)
    causal = getattr(model, "attn_mask", None) is not None  # open_clip's no_causal_mask leaves it None
    base_mask = model.attn_mask[:L, :L] if causal else None
    for i, block in enumerate(blocks):
        p = _layer_prompts(deep_prompts, i, B, x.dtype)
        if p is None:
            x = block(x, attn_mask=base_mask)
            continue
        n = p.shape[1]
        x = torch.cat([x[:, :1], p, x[:, 1:]], dim=1)  # [SOT] [prompts] words...
        x = block(x, attn_mask=causal_mask(L + n, x.device, x.dtype) if causal else None)
        x = torch.cat([x[:, :1], x[:, 1 + n:]], dim=1)  # drop the prompts' outputs
    x = model.ln_final(x)
    pooled = x[torch.arange(B, device=x.device), eot]
    proj = model.text_projection
    return proj(pooled) if isinstance(proj, nn.Linear) else pooled @ proj


def encode_text_prompted(model: nn.Module, ids: torch.Tensor, deep_prompts: PromptSpec = None) -> torch.Tensor:
    """:func:`encode_text_embeddings` on token ids, pooled where the model pools (:func:`text_pool_index`)."""
    return encode_text_embeddings(model, token_embeddings(model, ids), text_pool_index(model, ids), deep_prompts)


# -- image ---------------------------------------------------------------------------------
def _patch_tokens(visual: nn.Module, images: torch.Tensor) -> torch.Tensor:
    x = visual.conv1(images)  # (B, width, grid, grid)
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # (B, grid*grid, width)
    cls = visual.class_embedding.view(1, 1, -1).expand(x.shape[0], -1, -1).to(x.dtype)
    x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
    return visual.patch_dropout(x)


def encode_image_prompted(visual: nn.Module, images: torch.Tensor, deep_prompts: PromptSpec = None,
                          layers: int | None = None, pool: bool = True) -> torch.Tensor:
    """Image features of an open_clip ``VisionTransformer`` with deep visual prompts.

    ``deep_prompts`` may also be a function ``(layer, tokens) -> prompts`` of the tokens
    entering the layer (class token first, previous prompts removed). ``layers`` runs only
    the first blocks and, with ``pool=False``, returns the tokens ``(B, 1 + patches, width)``
    instead of the pooled, projected feature (VoP^F continues from there).
    """
    if not hasattr(visual, "conv1") or not hasattr(visual, "transformer"):
        raise TypeError(f"deep visual prompts need a ViT image encoder, not {type(visual).__name__}")
    blocks = visual.transformer.resblocks
    blocks = blocks if layers is None else blocks[:layers]
    _check_depth(deep_prompts, len(visual.transformer.resblocks), "visual")
    x = _patch_tokens(visual, images)
    B = x.shape[0]
    n = 0
    for i, block in enumerate(blocks):
        p = _layer_prompts(deep_prompts, i, B, x.dtype, x)
        if p is not None:
            x = torch.cat([x[:, :1], p, x[:, 1:]], dim=1)  # [CLS] [prompts] [patches]
        n = 0 if p is None else p.shape[1]
        if i == 0:
            x = visual.ln_pre(x)  # the first layer's prompts pass through ln_pre with the patches
        x = block(x)
        x = torch.cat([x[:, :1], x[:, 1 + n:]], dim=1)  # drop the prompts' outputs
    if len(blocks) == 0:
        x = visual.ln_pre(x)
    if not pool:
        return x
    return image_head(visual, x)


def image_head(visual: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Pool and project the tokens after the last block, ``(N, L, width) -> (N, embed_dim)``,
    as ``visual.forward`` does: class token first, then the patches (prompts already dropped).

    open_clip >= 2.32 keeps the recipe in ``visual._pool``; older versions (2.26 to 2.31) write
    it out in ``forward``, which is followed here: an attentional pooler (CoCa) before
    ``ln_post``, else ``ln_post`` after pooling (``final_ln_after_pool``) or before it, with
    ``pool_type`` 'tok' (class token), 'avg' (mean of the patches) or 'none'.
    """
    if tokens.ndim != 3:
        raise ValueError(f"tokens must be (N, L, width), got {tuple(tokens.shape)}")
    if getattr(visual, "pool_type", "tok") == "avg" and getattr(visual, "attn_pool", None) is None \
            and tokens.shape[1] < 2:
        raise ValueError(f"pool_type 'avg' averages the patch tokens, but only {tokens.shape[1]} token was given")
    if hasattr(visual, "_pool"):
        pooled, _ = visual._pool(tokens)
    else:
        pooled = _pool_before_2_32(visual, tokens)
    return pooled @ visual.proj if visual.proj is not None else pooled


def _pool_before_2_32(visual: nn.Module, x: torch.Tensor) -> torch.Tensor:
    attn_pool = getattr(visual, "attn_pool", None)
    if attn_pool is not None:
        contrastive = getattr(visual, "attn_pool_contrastive", None)
        if contrastive is not None:  # 'parallel' or 'cascade' pooler
            x = visual.ln_post(x)
            return contrastive(x if visual.attn_pool_type == "parallel" else attn_pool(x))
        return visual._global_pool(visual.ln_post(attn_pool(x)))[0]
    if getattr(visual, "final_ln_after_pool", False):
        return visual.ln_post(visual._global_pool(x)[0])
    return visual._global_pool(visual.ln_post(x))[0]
