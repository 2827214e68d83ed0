"""LoRA on the fused query-key-value weight of open_clip's attention (Hu et al., 2022).

open_clip's attention keeps Q, K and V in one matrix ``in_proj_weight`` of shape
``(3d, d)``. LoRA learns ``delta W = (alpha / r) * B @ A`` with ``A`` of shape ``(r, d)``
(random) and ``B`` of shape ``(3d, r)`` (zeros), so training starts exactly at the
pre-trained model. With ``alpha`` left at ``None`` the scaling is 1, as in TempMe's code.

:class:`LoRA` is a ``torch.nn.utils.parametrize`` parametrization of that weight: once
registered, every read of ``attn.in_proj_weight`` returns ``W + delta W``, while the frozen
``W`` lives on as ``attn.parametrizations.in_proj_weight.original``. Nothing else changes:

* ``nn.MultiheadAttention`` (open_clip up to 3.x) reads the weight in its own forward;
* open_clip main's ``Attention`` class (own forward, own call and return signature) reads it too;
* a method block that computes attention itself (ToMe/TempMe in :mod:`clipadapt.core.patching`)
  reads ``block.attn.in_proj_weight`` and so gets the adapted weight as well.

A wrapper that re-implements the attention forward would serve only the first of these.

:meth:`LoRA.merge` folds ``delta W`` into the stored weight (inference then costs nothing
extra) and :meth:`LoRA.unmerge` takes it out again; :func:`remove_lora` drops the
parametrizations altogether, leaving plain weights under open_clip's own state-dict keys.
While LoRA is attached the keys read ``...attn.parametrizations.in_proj_weight.original``
and ``...attn.parametrizations.in_proj_weight.0.lora_A``; ``copy.deepcopy`` and
``state_dict`` work, pickling the whole module (``torch.save(model)``) does not (a limit of
``parametrize``): save the state dict.

On CLIP ViT-B/32 with rank 8 on all 12 image and 12 text layers this trains
12 * 8 * (768 + 3 * 768) + 12 * 8 * (512 + 3 * 512) = 294,912 + 196,608 = 491,520
parameters.

Why not peft: peft's LoRA for ``nn.MultiheadAttention`` adapts the output projection too
(more trainable numbers than the references count for LoRA on the fused QKV) and brings
transformers and accelerate along; ``python -m clipadapt.bench --lora`` prints both side by
side (trainable parameters, equality at initialisation, step and inference time), and the
README's benchmark section keeps a measured run. So clipadapt keeps its own short module,
which the chapter also teaches.

Why a parametrization: it is the one hook that every reader of the weight goes through, so
the method does not depend on how open_clip (or a patched block) computes attention. peft
itself takes the same road when LoRA targets a bare parameter
(``LoraConfig(target_parameters=...)``): its ``ParamWrapper`` registers a
``torch.nn.utils.parametrize`` parametrization of that parameter around each forward call.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..core import models

WEIGHT = "in_proj_weight"


class LoRA(nn.Module):
    """Parametrization ``W -> W + (alpha / rank) * lora_B @ lora_A`` of a weight ``(out, in)``."""

    def __init__(self, out_features: int, in_features: int, rank: int = 8, alpha: float | None = None,
                 device=None):
        super().__init__()
        if not isinstance(rank, int) or rank < 1:
            raise ValueError(f"rank must be an integer of at least 1, got {rank!r}")
        self.rank = rank
        self.scaling = (alpha if alpha is not None else rank) / rank
        self.lora_A = nn.Parameter(torch.empty(rank, in_features, device=device))  # (r, d)
        self.lora_B = nn.Parameter(torch.zeros(out_features, rank, device=device))  # (3d, r)
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as nn.Linear, as in the LoRA code
        self.merged = False
        self._home = None  # the ParametrizationList that holds W, set by add_lora

    def delta(self) -> torch.Tensor:
        """``(alpha / r) * B @ A``, shape ``(out, in)``, in the adapters' dtype."""
        return self.scaling * self.lora_B @ self.lora_A

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.merged:  # the update already sits in the stored weight
            return weight
        return weight + self.delta().to(dtype=weight.dtype, device=weight.device)

    def _original(self) -> torch.Tensor:
        if self._home is None:
            raise RuntimeError("this LoRA is not registered on a weight; use add_lora(model)")
        return self._home.original

    @torch.no_grad()
    def merge(self) -> None:
        """Fold ``delta W`` into the stored weight; the parametrization then passes it through."""
        if not self.merged:
            w = self._original()
            w += self.delta().to(dtype=w.dtype, device=w.device)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take ``delta W`` out of the stored weight again (exact up to float rounding)."""
        if self.merged:
            w = self._original()
            w -= self.delta().to(dtype=w.dtype, device=w.device)
            self.merged = False

    def _attach(self, home: nn.Module | None) -> None:
        # ``home`` (attn.parametrizations.in_proj_weight) contains this module: keep a plain
        # reference, not a submodule, or modules() and state_dict() would walk in a circle
        self.__dict__["_home"] = home

    def extra_repr(self) -> str:
        return f"rank={self.rank}, scaling={self.scaling:g}, merged={self.merged}"


def _blocks(model: nn.Module, tower: str):
    if tower == "visual":
        owner, where = getattr(model, "visual", None), "model.visual"
    elif tower == "text":
        owner, where = model, "model"
    else:
        raise ValueError(f"towers must name 'visual' and/or 'text', got {tower!r}")
    blocks = getattr(getattr(owner, "transformer", None), "resblocks", None)
    if blocks is None:
        raise TypeError(f"{where} ({type(owner).__name__}) has no transformer blocks "
                        f"({where}.transformer.resblocks) to put LoRA on")
    if len(blocks) == 0:
        raise ValueError(f"{where}.transformer.resblocks is empty: no blocks to put LoRA on")
    return blocks, where


def _lora_of(attn: nn.Module) -> LoRA | None:
    if not parametrize.is_parametrized(attn, WEIGHT):
        return None
    found = [p for p in attn.parametrizations[WEIGHT] if isinstance(p, LoRA)]
    return found[0] if found else None


def add_lora(model: nn.Module, rank: int = 8, alpha: float | None = None, towers: tuple[str, ...] = ("visual", "text"),
             freeze_base: bool = True) -> list[LoRA]:
    """Register a :class:`LoRA` on ``attn.in_proj_weight`` of every residual block of the
    chosen towers of an open_clip CLIP; returns them, image tower first. With
    ``freeze_base`` everything else of ``model`` is frozen first."""
    if not isinstance(rank, int) or rank < 1:
        raise ValueError(f"rank must be an integer of at least 1, got {rank!r}")
    if isinstance(towers, str):
        towers = (towers,)
    sites = []  # check every block before changing anything
    for tower in towers:
        blocks, where = _blocks(model, tower)
        for i, block in enumerate(blocks):
            attn = getattr(block, "attn", None)
            w = getattr(attn, WEIGHT, None)
            if not isinstance(w, torch.Tensor) or w.ndim != 2 or w.shape[0] != 3 * w.shape[1]:
                shape = None if not isinstance(w, torch.Tensor) else tuple(w.shape)
                raise TypeError(f"{where}.transformer.resblocks[{i}].attn ({type(attn).__name__}) has no fused "
                                f"{WEIGHT} of shape (3d, d) (found {shape}); LoRA here adapts that weight")
            if _lora_of(attn) is not None:
                raise ValueError(f"this model already has LoRA ({where}.transformer.resblocks[{i}].attn); "
                                 f"remove_lora(model) first")
            sites.append(attn)
    if freeze_base:
        models.freeze(model)
    adapters = []
    for attn in sites:
        w = getattr(attn, WEIGHT)
        lora = LoRA(w.shape[0], w.shape[1], rank, alpha, device=w.device)
        parametrize.register_parametrization(attn, WEIGHT, lora)
        lora._attach(attn.parametrizations[WEIGHT])
        adapters.append(lora)
    return adapters


def lora_modules(model: nn.Module) -> list[LoRA]:
    """Every :class:`LoRA` registered in ``model``, in module order."""
    return [m for m in model.modules() if isinstance(m, LoRA)]


def merge_lora(model: nn.Module) -> int:
    """Merge every LoRA of ``model`` into its weight; returns how many there are."""
    found = lora_modules(model)
    for m in found:
        m.merge()
    return len(found)


def _own_class(module: nn.Module) -> None:
    # parametrize gives a module a generated subclass holding the property, and remove_parametrizations
    # deletes that property from the class; copy.deepcopy shares the class between original and copy,
    # so removing LoRA from one would break the other: give this module a class of its own first
    cls = type(module)
    body = {k: v for k, v in vars(cls).items() if k not in ("__dict__", "__weakref__")}
    module.__class__ = type(cls.__name__, cls.__bases__, body)


def remove_lora(model: nn.Module, merge: bool = True) -> int:
    """Take the parametrizations off again: with ``merge`` the weights keep the update, else
    they go back to the base weights. Leaves plain parameters under open_clip's own keys;
    returns how many LoRAs were removed."""
    count = 0
    for attn in list(model.modules()):
        lora = _lora_of(attn)
        if lora is None:
            continue
        if len(attn.parametrizations[WEIGHT]) != 1:
            raise NotImplementedError(f"{type(attn).__name__}.{WEIGHT} carries other parametrizations besides "
                                      f"LoRA; remove those first")
        _own_class(attn)
        if merge:  # keep the current value: W + delta W (already W once merged)
            parametrize.remove_parametrizations(attn, WEIGHT, leave_parametrized=True)
        else:  # back to W
            lora.unmerge()
            parametrize.remove_parametrizations(attn, WEIGHT, leave_parametrized=False)
        lora._attach(None)
        count += 1
    return count
