"""One small training loop and the device it runs on (checkpoints: :mod:`clipadapt.core.checkpoints`).

:func:`fit` is deliberately plain: the optimiser and the schedule a
:class:`~clipadapt.training.recipe.Recipe` names (:mod:`clipadapt.training.optim`; by
default AdamW with linear warm-up then cosine decay) on the parameters that require
gradients, the recipe's gradient clipping, mixed precision on CUDA, a progress bar, and a
history of losses. The recipe says how to train; a run adds only its length (``steps``, and
``steps_per_epoch`` where the schedule counts epochs) and whether it may autocast. Each
chapter writes only its ``loss_fn(batch) -> loss`` and its ``batches(step) -> batch``.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch
from torch import nn
from tqdm.auto import tqdm

from ..core import precision
from ..profiles import pick_device
from .optim import lr_factor, make_optimizer, make_scheduler, no_decay  # noqa: F401  (lr_factor, no_decay: re-exported)
from .recipe import Recipe


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

    ``recipe`` names the optimiser, its schedule, the gradient clipping and the precision
    (:data:`clipadapt.core.precision.PRECISIONS`: ``"fp32"`` never autocasts; ``"fp16"`` steps
    on a model already in float16, with neither autocast nor a gradient scaler, as CoOp's
    official trainer does); the run gives its length, ``steps``, the steps of one epoch
    (``steps_per_epoch``: the unit of a schedule that steps per epoch), and ``warmup`` in the
    schedule's units where it is not the recipe's (:meth:`Recipe.warmup_steps`). ``amp`` lets
    an ``"amp"`` recipe autocast on CUDA, and with ``amp_cpu`` on the CPU too, in bfloat16: how
    CI runs the mixed-precision path without a GPU (far slower than float32 on CPUs without
    bfloat16 units).

    :func:`fit` runs it to the end in one call; :mod:`clipadapt.reproduce` drives it step by
    step, evaluates and checkpoints between steps (:meth:`state_dict` holds the optimiser,
    the learning-rate schedule, the gradient scaler and the step), and under
    DistributedDataParallel passes a ``loss_fn`` that calls the wrapped model.
    """

    def __init__(self, model: nn.Module, loss_fn: Callable[[Any], torch.Tensor], recipe: Recipe, steps: int, *,
                 steps_per_epoch: int = 1, warmup: int | None = None, amp: bool = True, amp_cpu: bool = False,
                 device: torch.device | str | None = None, on_step: Callable[[], None] | None = None):
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        if recipe.lr is None:
            raise ValueError("the recipe has no learning rate (the official code never published one); "
                             "give it one with recipe.replace(lr=...)")
        if recipe.lr <= 0:
            raise ValueError(f"lr must be positive, got {recipe.lr}")
        if recipe.schedule_unit not in ("step", "epoch") or steps_per_epoch < 1:
            raise ValueError(f"schedule_unit must be 'step' or 'epoch' with steps_per_epoch >= 1, got "
                             f"{recipe.schedule_unit!r} and {steps_per_epoch}")
        # the run's length in the schedule's units: steps, or epochs of steps_per_epoch steps
        units = math.ceil(steps / steps_per_epoch) if recipe.schedule_unit == "epoch" else steps
        warmup = recipe.warmup_steps(steps, steps_per_epoch) if warmup is None else warmup
        if not 0 <= warmup <= units:
            raise ValueError(f"warmup must lie in [0, {units}] {recipe.schedule_unit}s, got {warmup}")
        self.model, self.loss_fn, self.recipe, self.on_step = model, loss_fn, recipe, on_step
        self.steps, self.steps_per_epoch = steps, steps_per_epoch
        self.device = pick_device(device) if device is not None else next(model.parameters()).device
        self.optimizer = make_optimizer(model, recipe)
        self.scheduler = make_scheduler(self.optimizer, recipe, units, warmup)
        kind = self.device.type
        precision.check_model(model, recipe.precision, recipe.optimizer)
        # autocast only under "amp": "fp16" runs the float16 model as it is, as the official code does
        self.use_amp = amp and recipe.precision == "amp" and (kind == "cuda" or (kind == "cpu" and amp_cpu))
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
        if self.recipe.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, self.recipe.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.recipe.schedule_unit == "step" or (self.step + 1) % self.steps_per_epoch == 0:
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
        lambdas = isinstance(self.scheduler, torch.optim.lr_scheduler.LambdaLR)  # its functions are not saved
        self.scheduler.load_state_dict({**saved, "lr_lambdas": [None] * len(self.optimizer.param_groups)}
                                       if lambdas else saved)
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])


def fit(
    model: nn.Module,
    loss_fn: Callable[[Any], torch.Tensor],
    batches: Callable[[int], Any] | Iterable,
    recipe: Recipe,
    steps: int,
    *,
    steps_per_epoch: int = 1,
    warmup: int | None = None,
    amp: bool = True,
    amp_cpu: bool = False,
    device: torch.device | str | None = None,
    on_step: Callable[[], None] | None = None,
    progress: bool = True,
    description: str = "training",
    stop_after: int | None = None,
) -> History:
    """Train the parameters of ``model`` that require gradients as ``recipe`` says, for
    ``steps`` steps (the run's length; the arguments up to ``on_step`` are :class:`Trainer`'s).

    ``batches`` is either a function ``step -> batch`` or an iterable (cycled);
    ``loss_fn(batch)`` returns a scalar loss; ``on_step()`` (optional) runs after every
    optimiser step (e.g. a moving average of the weights); ``stop_after`` ends the run early
    on the schedule of ``steps``. Returns the per-step history.
    """
    if stop_after is not None and not 1 <= stop_after <= steps:
        raise ValueError(f"stop_after must lie in [1, steps={steps}], got {stop_after}")
    trainer = Trainer(model, loss_fn, recipe, steps, steps_per_epoch=steps_per_epoch, warmup=warmup, amp=amp,
                      amp_cpu=amp_cpu, device=device, on_step=on_step)
    if callable(batches):
        get = batches
    else:
        cache = list(batches)
        if not cache:
            raise ValueError("batches is empty")
        get = lambda step: cache[step % len(cache)]  # noqa: E731
    history = History()
    model.train()
    run = stop_after or steps
    bar = progress_bar(run, description, progress)
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
    elif progress:
        print(f"{description}: {run} steps in {history.seconds:.0f} s "
              f"({run / history.seconds:.1f} steps/s), last loss {history.loss[-1]:.3f}")
    model.eval()
    return history


STATIC_ENV = "CLIPADAPT_STATIC_OUTPUT"


def static_output() -> bool:
    """Whether the notebook is executed for the static book (set by :mod:`clipadapt.book`),
    where a progress widget would be frozen at its first frame."""
    return bool(os.environ.get(STATIC_ENV))


def progress_bar(total: int, desc: str, enabled: bool, initial: int = 0):
    """A progress bar; none in the static book (:func:`static_output`) -- :func:`fit`
    prints a one-line summary there instead."""
    if not enabled or static_output():
        return None
    return tqdm(total=total, desc=desc, mininterval=1.0, initial=initial)
