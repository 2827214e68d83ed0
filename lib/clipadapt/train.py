"""One small training loop and the device it runs on (checkpoints: :mod:`clipadapt.checkpoints`).

:func:`fit` is deliberately plain: AdamW on the parameters that require gradients, linear
warm-up then cosine decay, optional gradient clipping, mixed precision on CUDA, a progress
bar, and a history of losses. Each chapter writes only its ``loss_fn(batch) -> loss`` and
its ``batches(step) -> batch``.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch
from torch import nn


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
    on_step: Callable[[], None] | None = None,
) -> History:
    """Train the parameters of ``model`` that require gradients.

    ``batches`` is either a function ``step -> batch`` or an iterable (cycled);
    ``loss_fn(batch)`` returns a scalar loss; ``on_step()`` (optional) runs after every
    optimiser step (a moving average of the weights, chapter 6). Returns the per-step history.
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
        if on_step is not None:
            on_step()
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
