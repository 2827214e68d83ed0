"""One small training loop, seeds, devices and safetensors checkpoints.

:func:`fit` is deliberately plain: AdamW on the parameters that require gradients, linear
warm-up then cosine decay, optional gradient clipping, mixed precision on CUDA, a progress
bar, and a history of losses. Each chapter writes only its ``loss_fn(batch) -> loss`` and
its ``batches(step) -> batch``.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn

from .files import atomic_path


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def pick_device(device: str | None = None) -> torch.device:
    """``"cuda"`` when asked for and available, else the CPU. ``None``: the best there is."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device(device)


@dataclass
class TrainConfig:
    steps: int
    lr: float
    weight_decay: float = 0.0
    warmup: int = 0
    grad_clip: float | None = None
    amp: bool = True  # mixed precision, on CUDA only
    progress: bool = True
    description: str = "training"
    stop_after: int | None = None  # end early, keeping the schedule of ``steps``


    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0 <= self.warmup <= self.steps:
            raise ValueError(f"warmup must lie in [0, steps={self.steps}], got {self.warmup}")
        if self.stop_after is not None and not 1 <= self.stop_after <= self.steps:
            raise ValueError(f"stop_after must lie in [1, steps={self.steps}], got {self.stop_after}")


@dataclass
class History:
    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def steps(self) -> int:
        return len(self.loss)


def lr_factor(step: int, steps: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to zero."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def no_decay(name: str, p: torch.Tensor) -> bool:
    """Gains, biases, embeddings and scalars take no weight decay (CLIP's recipe)."""
    return p.ndim < 2 or "embedding" in name or "logit_scale" in name or ".ln" in name or name.startswith("ln")


def make_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    decay, plain = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (plain if no_decay(name, p) else decay).append(p)
    if not decay and not plain:
        raise ValueError("the model has no trainable parameters (did you freeze everything?)")
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr)


def fit(
    model: nn.Module,
    loss_fn: Callable[[Any], torch.Tensor],
    batches: Callable[[int], Any] | Iterable,
    config: TrainConfig,
    device: torch.device | str | None = None,
) -> History:
    """Train the parameters of ``model`` that require gradients.

    ``batches`` is either a function ``step -> batch`` or an iterable (cycled);
    ``loss_fn(batch)`` returns a scalar loss. Returns the per-step history.
    """
    device = pick_device(device) if device is not None else next(model.parameters()).device
    opt = make_optimizer(model, config.lr, config.weight_decay)
    use_amp = config.amp and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    if callable(batches):
        get = batches
    else:
        cache = list(batches)
        if not cache:
            raise ValueError("batches is empty")
        get = lambda step: cache[step % len(cache)]  # noqa: E731
    params = [p for g in opt.param_groups for p in g["params"]]
    history = History()
    model.train()
    run = config.stop_after or config.steps
    bar = _progress(run, config.description, config.progress)
    start = time.perf_counter()
    for step in range(run):
        factor = lr_factor(step, config.steps, config.warmup)
        for g in opt.param_groups:
            g["lr"] = config.lr * factor
        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            loss = loss_fn(get(step))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower the learning rate")
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if config.grad_clip:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        scaler.step(opt)
        scaler.update()
        history.loss.append(loss.item())
        history.lr.append(config.lr * factor)
        if bar is not None:
            bar.update(1)
            if step % 10 == 0 or step == run - 1:
                bar.set_postfix(loss=f"{loss.item():.3f}")
    history.seconds = time.perf_counter() - start
    if bar is not None:
        bar.close()
    elif config.progress:
        print(f"{config.description}: {run} steps in {history.seconds:.0f} s "
              f"({run / history.seconds:.1f} steps/s), last loss {history.loss[-1]:.3f}")
    model.eval()
    return history


STATIC_ENV = "CLIPADAPT_STATIC_OUTPUT"


def _progress(total: int, desc: str, enabled: bool):
    """A progress bar; none when the notebook is executed for the static book (set by
    :mod:`clipadapt.book`), where a widget would be frozen at its first frame -- :func:`fit`
    prints a one-line summary there instead."""
    if not enabled or os.environ.get(STATIC_ENV):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, mininterval=1.0)


# -- checkpoints ---------------------------------------------------------------------------
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
    from safetensors.torch import save_file

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
    from safetensors import safe_open

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
