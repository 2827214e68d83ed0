"""What a method's module is: the base class of every method, with every hook a task or the
driver may call, each one a no-op (or the plain CLIP's behaviour) until a method overrides it.

A method is built around a CLIP (``self.clip``) and trains only the parameters that
require gradients. Beyond that, it has the interface of its task kind (``MethodSpec.task``
in :mod:`clipadapt.methods.registry`), which the task calls:

================  ==========================================================================
classification    ``forward(images (B, 3, H, W)) -> logits (B, C)``
retrieval         ``encode_video(videos (B, T, 3, H, W)) -> (B, D)``, ``encode_text(ids) -> (N, D)``
multitask         ``classifier() -> (image features (B, D) -> logits over every task's classes)``
multilabel        ``forward(images) -> logits (B, C)`` (a sigmoid gives the probabilities)
================  ==========================================================================

and the hooks below, which the driver (:mod:`clipadapt.training.driver`), the checkpoints
(:mod:`clipadapt.training.resume`) and the tasks (:mod:`clipadapt.tasks`) call on every
method alike. Nothing anywhere asks whether a method "has" a hook: the defaults here say
what a method that does not care gets.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Method(nn.Module):
    """The base of every method's module (see the module's docstring for the interfaces)."""

    #: The image encoder never trains. A task may then encode every image once
    #: (:meth:`encode_image`) and train and evaluate :meth:`logits_from_features` on the
    #: stored features (classification and multi-label tasks).
    frozen_image_encoder: bool = False

    #: The augmented views of each image that a multi-label batch carries, in order
    #: (``"weak"``, ``"strong"``): one plain weak view unless the method asks for more.
    views: tuple[str, ...] = ("weak",)

    # -- encoding ----------------------------------------------------------------------------
    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Image features ``(B, D)`` of CLIP-normalised images; what the multiply-adds of an
        image method are counted on. Default: the CLIP's own image encoder."""
        return self.clip.encode_image(images)

    @property
    def image_encoder(self) -> nn.Module:
        """The module whose weights decide :meth:`encode_image` (stored features are keyed by
        them). Default: the CLIP's image tower."""
        return self.clip.visual

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from the output of :meth:`encode_image` (needed where
        :attr:`frozen_image_encoder` is true)."""
        raise NotImplementedError(f"{type(self).__name__} keeps its image encoder trainable; it has no "
                                  "logits_from_features(features)")

    # -- training ----------------------------------------------------------------------------
    def training_loss(self, batch: Any) -> torch.Tensor | None:
        """The method's own objective on a training batch, or ``None`` for the task's loss."""
        return None

    def after_step(self) -> None:
        """Called by the driver after every optimiser step (e.g. a moving average of the weights)."""

    def averaged(self) -> nn.Module:
        """The weights a task evaluates: the module itself, or a moving average of it."""
        return self

    # -- resuming ----------------------------------------------------------------------------
    def resume_state(self) -> dict[str, torch.Tensor]:
        """State kept beside the parameters and buffers (a moving average, pseudo-labels) that
        a checkpoint must hold for a resumed run to be exact. Default: none."""
        return {}

    def load_resume_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Take back what :meth:`resume_state` gave."""
        if tensors:
            raise ValueError(f"{type(self).__name__} keeps no state beside its parameters, "
                             f"but the checkpoint holds {sorted(tensors)[:5]}")
