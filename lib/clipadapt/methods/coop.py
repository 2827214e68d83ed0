"""CoOp: learned context vectors in place of a prompt's words (Zhou et al., IJCV 2022).

The prompt of class ``c`` is built in token-embedding space as
``[SOT] [V]_1 ... [V]_M [class words] . [EOT]`` (class token at the ``"end"``), or with the
class words in the ``"middle"`` of the context or at its ``"front"``. The context is
shared by all classes (``class_specific=False``) or one per class, initialised from the
embeddings of words (``init="a photo of a"``, which fixes ``M`` to their number) or from
N(0, 0.02^2). Only the context trains; CLIP stays frozen.

The context may also come from outside: ``text_features(ctx)`` assembles the prompts around
a context computed elsewhere (SoftCPT's meta network generates one per task), of shape
``(M, width)`` shared by the classes or ``(n_cls, M, width)``, with ``M`` the ``n_ctx`` this
CoOp was built for.

Its tensors are made in the CLIP's dtype (:func:`clipadapt.core.precision.dtype`), as CoOp's
``PromptLearner`` makes them in ``clip_model.dtype``: float16 under the official ``fp16``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..core import features, models, precision, prompting
from ..data import names
from .protocol import Method
from .spec import MethodSpec, register

POSITIONS = ("end", "middle", "front")


class CoOp(Method):
    def __init__(self, clip: nn.Module, tokenizer, classnames: list[str], n_ctx: int = 16,
                 init: str | None = None, class_specific: bool = False, class_position: str = "end"):
        super().__init__()
        if class_position not in POSITIONS:
            raise ValueError(f"class_position must be one of {POSITIONS}, got {class_position!r}")
        if not classnames:
            raise ValueError("CoOp needs at least one class name")
        self.clip = models.freeze(clip)
        self.class_position = class_position
        classnames = names.prompt_names(classnames)  # as CoOp's PromptLearner writes them: '_' -> ' '
        self.classnames = classnames
        embed = clip.token_embedding
        width = embed.weight.shape[1]
        # CoOp makes its context and the prompts' embeddings in clip_model.dtype: float16 under
        # the official fp16 (clipadapt.core.precision), float32 else
        dtype = precision.dtype(clip)
        if init:
            init_ids = tokenizer([names.prompt_name(init)])[0]  # CoOp: ctx_init.replace('_', ' ')
            n_init = int(prompting.eot_index(init_ids[None])[0]) - 1  # words between SOT and EOT
            n_ctx = n_init
            with torch.no_grad():
                vectors = embed(init_ids[1:1 + n_ctx].to(embed.weight.device)).to(dtype)
            shape = (len(classnames), n_ctx, width) if class_specific else (n_ctx, width)
            ctx = vectors.expand(shape).clone()
        else:
            if n_ctx < 1:
                raise ValueError(f"n_ctx must be at least 1, got {n_ctx}")
            shape = (len(classnames), n_ctx, width) if class_specific else (n_ctx, width)
            ctx = torch.empty(shape, dtype=dtype).normal_(std=0.02)  # drawn in that dtype, as CoOp draws it
        self.n_ctx = n_ctx
        self.ctx = nn.Parameter(ctx.to(embed.weight.device))
        # placeholders "X X ... X {name}." give the frozen prefix and suffix embeddings
        placeholder = " ".join(["X"] * n_ctx)
        ids = tokenizer([f"{placeholder} {name}." for name in classnames]).to(embed.weight.device)
        name_lens = [int(prompting.eot_index(tokenizer([f"{name}."]))[0]) - 2 for name in classnames]
        need = max(1 + n_ctx + n + 2 for n in name_lens)  # SOT, context, name, ".", EOT
        if need > ids.shape[1]:
            raise ValueError(f"a prompt of {n_ctx} context tokens and the longest class name needs {need} tokens, "
                             f"more than the context length {ids.shape[1]}")
        with torch.no_grad():
            emb = embed(ids).to(dtype)  # (n_cls, L, width)
        self.register_buffer("ids", ids, persistent=False)
        self.register_buffer("prefix", emb[:, :1].clone(), persistent=False)  # SOT
        self.register_buffer("suffix", emb[:, 1 + n_ctx:].clone(), persistent=False)  # name . EOT pad
        self.name_lens = name_lens

    def prompt_embeddings(self, ctx: torch.Tensor | None = None) -> torch.Tensor:
        """The token embeddings of the class prompts ``(n_cls, L, width)`` around the
        learned context, or around ``ctx`` given from outside."""
        n_cls = len(self.classnames)
        ctx = self.ctx if ctx is None else ctx
        want = (self.n_ctx, self.ctx.shape[-1])
        if ctx.shape[-2:] != want or ctx.ndim not in (2, 3) or (ctx.ndim == 3 and ctx.shape[0] != n_cls):
            raise ValueError(f"a context must be {want} or {(n_cls, *want)}, got {tuple(ctx.shape)}")
        ctx = ctx if ctx.ndim == 3 else ctx.unsqueeze(0).expand(n_cls, -1, -1)
        ctx = ctx.to(self.prefix.dtype)
        if self.class_position == "end":
            return torch.cat([self.prefix, ctx, self.suffix], dim=1)
        rows = []
        half = self.n_ctx // 2
        for i, n in enumerate(self.name_lens):
            name, rest = self.suffix[i:i + 1, :n], self.suffix[i:i + 1, n:]
            if self.class_position == "middle":
                rows.append(torch.cat([self.prefix[i:i + 1], ctx[i:i + 1, :half], name, ctx[i:i + 1, half:], rest], 1))
            else:  # front
                rows.append(torch.cat([self.prefix[i:i + 1], name, ctx[i:i + 1], rest], 1))
        return torch.cat(rows)

    def text_features(self, ctx: torch.Tensor | None = None) -> torch.Tensor:
        """Features of the class prompts ``(n_cls, embed_dim)`` (not normalised)."""
        return prompting.encode_text_embeddings(self.clip, self.prompt_embeddings(ctx), prompting.eot_index(self.ids, self.clip))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits of (normalised) images: CLIP's scaled cosine similarities."""
        with torch.no_grad():
            img = self.clip.encode_image(images)
        return features.scaled_cosine(img, self.text_features(), self.clip)


def _build(clip, tokenizer, context, options, variant):
    return CoOp(clip, tokenizer, context["classnames"], n_ctx=options.get("n_ctx", 16), init=options.get("init"))


register(MethodSpec("CoOp", "classification", _build, "the prompt's context vectors (clipadapt.methods.coop)"))
