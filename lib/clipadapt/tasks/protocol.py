"""What a task is: the base class of every task family, with everything the driver asks of it.

A task turns its data into what the driver (:mod:`clipadapt.training.driver`) needs to
train and measure a method, and nothing else is ever asked of it:

* ``kind`` -- the task family (``MethodSpec.task`` names it: a method solves one kind);
* ``context`` -- what a method needs to be built (class names and template; frames; tasks);
* :meth:`loader` -- the training examples as a :class:`Loader`: ``n`` examples,
  ``per_batch`` of them in each global batch, and ``load(indices, step)`` that makes the
  batch of any subset of them. The driver decides which examples each step takes (a fresh
  draw per step from the run's seed: :func:`clipadapt.training.driver.step_indices`) and,
  under several processes, which shard each process loads; randomness inside ``load``
  (frames, augmentations) comes from a stream of each example's own, so that a batch never
  depends on how it is sharded;
* :meth:`loss`, :meth:`evaluate` (a dict of metrics), :meth:`row` (those metrics as the
  flat columns of the chapter's table);
* :meth:`encoder` and :meth:`example` -- one input and what encodes it, to count the
  multiply-adds of inference.

A loss that compares the examples of a batch with each other (a contrastive loss) gathers
them from every process with :func:`clipadapt.core.distributed.gather_with_grad`; with one
process that is the identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from ..core import seeds
from ..data import augment as aug


@dataclass(frozen=True)
class Loader:
    """How a task feeds training (see :meth:`Task.loader`)."""

    n: int  # examples (a unit the driver draws: an image, a video, a video with its twin)
    per_batch: int  # examples in each global batch (all of them for a full-batch recipe)
    load: Callable[[torch.Tensor, int], Any]  # (indices (k,), step) -> the batch of those examples


class Task:
    """The base of every task family (see the module's docstring)."""

    kind: ClassVar[str]
    context: dict

    @property
    def n_train(self) -> int:
        """Training examples (for recipes whose budget is counted in epochs)."""
        raise NotImplementedError

    def loader(self, module: nn.Module, recipe, seed: int, device) -> Loader:
        raise NotImplementedError

    def loss(self, module: nn.Module, batch) -> torch.Tensor:
        raise NotImplementedError

    def evaluate(self, module: nn.Module) -> dict:
        raise NotImplementedError

    def evaluate_with_features(self, module: nn.Module) -> tuple[dict, Any]:
        """The metrics, and the test set's features they came from where the task hands them
        on for a chapter to reuse (retrieval: ``(videos, captions)``). Default: none."""
        return self.evaluate(module), None

    def row(self, metrics: dict) -> dict:
        """The metrics as the flat columns of a table (default: nested dicts flattened)."""
        flat = {}
        for k, v in metrics.items():
            flat.update({f"{k} {kk}": vv for kk, vv in v.items()} if isinstance(v, dict) else {k: v})
        return flat

    def encoder(self, module: nn.Module) -> Callable:
        """What encodes one input at inference (its multiply-adds are the method's cost)."""
        raise NotImplementedError

    def example(self, device) -> torch.Tensor:
        """One input, for :meth:`encoder`."""
        raise NotImplementedError

    def warm(self) -> None:
        """Read now what runs would read lazily and share (decoded videos), so that runs
        trained side by side in forked processes (:class:`clipadapt.experiments.Lab`) find it
        read instead of each reading it again. Default: nothing to read."""


def device_of(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def fresh_views(images: torch.Tensor, labels: torch.Tensor, module: nn.Module, augment: str, seed: int,
                device) -> Callable[[torch.Tensor, int], Any]:
    """``load(indices, step)`` for pictures ``images`` ``(N, 3, H, W)`` with ``labels`` ``(N, ...)``:
    each picture augmented afresh at every step (:mod:`clipadapt.data.augment`, from the
    stream ``(seed, "augment", step, index)``), then, where the module's image encoder is
    frozen, encoded without gradients (the official recipes run the encoder on every batch).
    Returns ``(inputs, labels)``: pictures, or features of a frozen encoder."""
    def load(indices: torch.Tensor, step: int):
        idx = indices.tolist()
        streams = [seeds.generator(seed, "augment", str(step), str(i)) for i in idx]
        x = aug.batch(augment, images[indices.cpu()], streams).to(device)
        if module.frozen_image_encoder:
            with torch.no_grad():
                x = module.encode_image(x)
        return x, labels[indices.cpu()].to(device)

    return load
