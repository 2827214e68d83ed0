"""Safetensors checkpoints, written atomically and read back with clear errors.

:func:`save_checkpoint` writes a state dict (or any dict of tensors) with JSON metadata in
the file's header; :func:`load_checkpoint` refuses, before touching the model, a file
whose keys or shapes do not fit and names the file and the first offending keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from .files import atomic_path


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or whose tensors do not fit the model."""


def save_checkpoint(
    path: str | Path,
    tensors: dict[str, torch.Tensor] | nn.Module,
    metadata: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write ``tensors`` (or a module's state dict) to a safetensors file, atomically:
    the data goes to a temporary file in the same folder, which then replaces ``path``.
    ``metadata`` is stored as JSON strings in the header; ``dtype`` converts floats."""
    path = Path(path)
    if isinstance(tensors, nn.Module):
        tensors = tensors.state_dict()
    out = {}
    for k, v in tensors.items():
        v = v.detach().cpu()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        out[k] = v.contiguous().clone()  # clone: safetensors refuses shared storage
    meta = {k: json.dumps(v) for k, v in (metadata or {}).items()}
    with atomic_path(path) as tmp:
        save_file(out, str(tmp), metadata=meta)
    return path


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata of a safetensors file; a clear error if it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = {k: json.loads(v) for k, v in (f.metadata() or {}).items()}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:
        raise CheckpointError(f"checkpoint {path} is not a readable safetensors file ({err})") from err
    return tensors, meta


def load_checkpoint(model: nn.Module, path: str | Path, strict: bool = True) -> dict[str, Any]:
    """Load a safetensors checkpoint into ``model`` and return its metadata.

    Missing or unexpected keys (when ``strict``) and shape mismatches raise
    :class:`CheckpointError` naming the file and the first offending keys; the model is
    left untouched in that case. Tensors are cast to the dtype of the model's parameters.
    """
    tensors, meta = read_checkpoint(path)
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    wrong = [f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(own[k].shape)}"
             for k in own if k in tensors and tensors[k].shape != own[k].shape]
    problems = []
    if wrong:
        problems.append(f"{len(wrong)} tensors of the wrong shape ({'; '.join(wrong[:5])})")
    if strict and missing:
        problems.append(f"{len(missing)} keys missing from the file ({', '.join(missing[:5])})")
    if strict and unexpected:
        problems.append(f"{len(unexpected)} keys the model does not have ({', '.join(unexpected[:5])})")
    if problems:
        raise CheckpointError(f"checkpoint {path} does not fit {type(model).__name__}: " + "; ".join(problems))
    cast = {k: v.to(own[k].dtype) for k, v in tensors.items() if k in own}
    model.load_state_dict(cast, strict=strict)
    return meta
