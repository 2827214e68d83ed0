"""One small training loop and the device it runs on (checkpoints: :mod:`clipadapt.core.checkpoints`).

:func:`fit` is deliberately plain: the optimiser and the schedule the config names
(:mod:`clipadapt.training.optim`; by default AdamW with linear warm-up then cosine decay)
on the parameters that require gradients, optional gradient clipping, mixed precision on
CUDA, a progress bar, and a history of losses. Each chapter writes only its ``loss_fn(batch) -> loss`` and
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

from ..profiles import pick_device
from .optim import lr_factor, make_optimizer, make_scheduler, no_decay  # noqa: F401  (lr_factor, no_decay: re-exported)


@dataclass
class TrainConfig:
    steps: int
    lr: float
    weight_decay: float = 0.0
    warmup: int = 0
    grad_clip: float | None = None
    amp: bool = True  # mixed precision, on CUDA
    # ... and on the CPU too, in bfloat16: how CI runs the mixed-precision path without a GPU
    # (tests/test_colab_smoke.py); far slower than float32 on CPUs without bfloat16 units
    amp_cpu: bool = False
    progress: bool = True
    description: str = "training"
    stop_after: int | None = None  # end early, keeping the schedule of ``steps``
    # the optimiser and the schedule (clipadapt.training.optim); the defaults are the tiny rows'
    optimizer: str = "adamw"  # "adamw", "adam" or "sgd" (torch.optim)
    optimizer_kwargs: dict = field(default_factory=dict)  # momentum, betas, eps, ...
    decay_rule: str = "clip"  # which parameters take no weight decay (optim.no_decay)
    group_lrs: dict = field(default_factory=dict)  # parameter-name prefix -> its own learning rate
    schedule: str = "warmup-cosine"  # or "cosine", "onecycle"
    schedule_unit: str = "step"  # or "epoch": the scheduler steps once per epoch
    steps_per_epoch: int = 1
    warmup_kind: str = "linear"  # "cosine": "linear", "constant" or "none"
    warmup_lr: float | None = None  # the constant warm-up's learning rate
    min_lr: float = 0.0  # the cosine's floor
    cosine_span: str = "after warm-up"  # or "whole run" (Dassl's recount)
    pct_start: float = 0.3  # "onecycle": the fraction of the schedule spent rising
    schedule_length: float = 1.0  # the schedule spans this many times the run

    def schedule_units(self) -> int:
        """The run's length in the schedule's units."""
        if self.schedule_unit == "epoch":
            return math.ceil(self.steps / self.steps_per_epoch)
        return self.steps

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0 <= self.warmup <= self.schedule_units():
            raise ValueError(f"warmup must lie in [0, {self.schedule_units()}] {self.schedule_unit}s, got {self.warmup}")
        if self.schedule_unit not in ("step", "epoch") or self.steps_per_epoch < 1:
            raise ValueError(f"schedule_unit must be 'step' or 'epoch' with steps_per_epoch >= 1, got "
                             f"{self.schedule_unit!r} and {self.steps_per_epoch}")
        if self.stop_after is not None and not 1 <= self.stop_after <= self.steps:
            raise ValueError(f"stop_after must lie in [1, steps={self.steps}], got {self.stop_after}")


@dataclass
class History:
    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: float = 0.0
    evaluations: dict[int, dict] = field(default_factory=dict)  # step -> metrics, where a run evaluated

    @property
    def steps(self) -> int:
        return len(self.loss)


class Trainer:
    """The training loop one step at a time, with every piece of its state in reach.

    :func:`fit` runs it to the end in one call; :mod:`clipadapt.reproduce` drives it step by
    step, evaluates and checkpoints between steps (:meth:`state_dict` holds the optimiser,
    the learning-rate schedule, the gradient scaler and the step), and under
    DistributedDataParallel passes a ``loss_fn`` that calls the wrapped model.
    """

    def __init__(self, model: nn.Module, loss_fn: Callable[[Any], torch.Tensor], config: TrainConfig,
                 device: torch.device | str | None = None, on_step: Callable[[], None] | None = None):
        self.model, self.loss_fn, self.config, self.on_step = model, loss_fn, config, on_step
        self.device = pick_device(device) if device is not None else next(model.parameters()).device
        self.optimizer = make_optimizer(model, config.lr, config.weight_decay, config.optimizer,
                                        config.optimizer_kwargs, config.decay_rule, config.group_lrs)
        self.scheduler = make_scheduler(self.optimizer, config)
        kind = self.device.type
        self.use_amp = config.amp and (kind == "cuda" or (kind == "cpu" and config.amp_cpu))
        self.amp_dtype = (torch.bfloat16 if kind == "cpu" or (self.use_amp and torch.cuda.is_bf16_supported())
                          else torch.float16)
        self.scaler = torch.amp.GradScaler(kind, enabled=self.use_amp and self.amp_dtype == torch.float16)
        self.params = [p for g in self.optimizer.param_groups for p in g["params"]]
        self.step = 0  # steps done

    @property
    def lr(self) -> float:
        """The learning rate of the next step."""
        return self.optimizer.param_groups[0]["lr"]

    def train_step(self, batch) -> torch.Tensor:
        """One optimisation step on ``batch``; returns the (detached) loss."""
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            loss = self.loss_fn(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {self.step}; lower the learning rate")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.config.schedule_unit == "step" or (self.step + 1) % self.config.steps_per_epoch == 0:
            self.scheduler.step()
        if self.on_step is not None:
            self.on_step()
        self.step += 1
        return loss.detach()

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "optimizer": self.optimizer.state_dict(),
                "scheduler": {k: v for k, v in self.scheduler.state_dict().items() if k != "lr_lambdas"},
                "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        saved = state["scheduler"]
        self.scheduler.load_state_dict({**saved, "lr_lambdas": [None]} if self.config.schedule == "warmup-cosine"
                                       else saved)
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])


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
    optimiser step (e.g. a moving average of the weights). Returns the per-step history.
    """
    trainer = Trainer(model, loss_fn, config, device, on_step)
    if callable(batches):
        get = batches
    else:
        cache = list(batches)
        if not cache:
            raise ValueError("batches is empty")
        get = lambda step: cache[step % len(cache)]  # noqa: E731
    history = History()
    model.train()
    run = config.stop_after or config.steps
    bar = progress_bar(run, config.description, config.progress)
    start = time.perf_counter()
    for step in range(run):
        history.lr.append(trainer.lr)
        loss = trainer.train_step(get(step)).item()
        history.loss.append(loss)
        if bar is not None:
            bar.update(1)
            if step % 10 == 0 or step == run - 1:
                bar.set_postfix(loss=f"{loss:.3f}")
    history.seconds = time.perf_counter() - start
    if bar is not None:
        bar.close()
    elif config.progress:
        print(f"{config.description}: {run} steps in {history.seconds:.0f} s "
              f"({run / history.seconds:.1f} steps/s), last loss {history.loss[-1]:.3f}")
    model.eval()
    return history


STATIC_ENV = "CLIPADAPT_STATIC_OUTPUT"


def progress_bar(total: int, desc: str, enabled: bool, initial: int = 0):
    """A progress bar; none when the notebook is executed for the static book (set by
    :mod:`clipadapt.book`), where a widget would be frozen at its first frame -- :func:`fit`
    prints a one-line summary there instead."""
    if not enabled or os.environ.get(STATIC_ENV):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, mininterval=1.0, initial=initial)
