"""What a method's module is: the base every method carries, the interface of each task kind
as a :class:`typing.Protocol`, and the optional protocols of the few methods that need more.

Every method is a :class:`Method`: it is built around a CLIP (``self.clip``), trains only
the parameters that require gradients, and has the hooks every task and the driver may
call, each with the plain CLIP's behaviour (or nothing) until a method overrides it.

Beyond that, a method has the interface of its task kind (``MethodSpec.task`` in
:mod:`clipadapt.methods.spec`), which the task calls:

================  ==============================================================================
classification    :class:`ImageClassifier` -- ``forward(images (B, 3, H, W)) -> logits (B, C)``
retrieval         :class:`VideoTextRetriever` -- ``encode_video(videos (B, T, 3, H, W)) -> (B, D)``,
                  ``encode_text(ids (N, L)) -> (N, D)``
multitask         :class:`MultiTaskClassifier` -- ``classifier() -> (features (B, D) -> logits
                  (B, all tasks' classes))``
multilabel        :class:`ImageClassifier` (a sigmoid of the logits gives the probabilities)
================  ==============================================================================

and, where its image encoder is frozen (:attr:`Method.frozen_image_encoder`) and the task
trains on stored features (classification, multi-label), :class:`FeatureClassifier`.
:func:`check` compares a built module with these when a run is prepared
(:func:`clipadapt.training.driver.prepare`), so that a missing member stops the run before
its first step, not at its first evaluation.

Two optional protocols, which a method carries only if it needs them:

* :class:`OwnTraining` -- the augmented ``views`` a training batch carries, the method's
  own ``training_loss(batch)`` and the ``averaged()`` weights that evaluation uses (SCPNet;
  the multi-label task asks for them);
* :class:`KeepsState` -- ``resume_state()`` and ``load_resume_state(tensors)``, state kept
  beside the parameters and buffers that a run-state checkpoint
  (:mod:`clipadapt.training.runstate`) must hold for a resumed run to be exact.

The tasks and the training code reach them only through :func:`views`,
:func:`training_loss`, :func:`averaged`, :func:`resume_state` and
:func:`load_resume_state`, which give what a method without the protocol gets.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

import torch
from torch import nn


class Method(nn.Module):
    """The base of every method's module (see the module's docstring for the interfaces)."""

    #: The image encoder never trains. A task may then encode every image once
    #: (:meth:`encode_image`) and train and evaluate :meth:`logits_from_features` on the
    #: stored features (classification and multi-label tasks).
    frozen_image_encoder: bool = False

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
        :attr:`frozen_image_encoder` is true: :class:`FeatureClassifier`)."""
        raise NotImplementedError(f"{type(self).__name__} keeps its image encoder trainable; it has no "
                                  "logits_from_features(features)")

    # -- training ----------------------------------------------------------------------------
    def after_step(self) -> None:
        """Called by the driver after every optimiser step (e.g. a moving average of the weights)."""


# -- the interfaces of the task kinds ----------------------------------------------------------
class ImageClassifier(Protocol):
    """Classification and multi-label recognition: class logits of images."""

    def forward(self, images: torch.Tensor) -> torch.Tensor: ...  # (B, 3, H, W) -> (B, C)


class FeatureClassifier(Protocol):
    """A classifier whose image encoder is frozen: logits of stored image features."""

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor: ...  # (B, D) -> (B, C)


class VideoTextRetriever(Protocol):
    """Text-video retrieval: videos and captions in one embedding space."""

    def encode_video(self, videos: torch.Tensor) -> torch.Tensor: ...  # (B, T, 3, H, W) -> (B, D)

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor: ...  # (N, L) token ids -> (N, D)


class MultiTaskClassifier(Protocol):
    """Many classification tasks at once: one head over every task's classes."""

    # -> a function from image features (B, D) to logits (B, sum of the tasks' classes)
    def classifier(self) -> Callable[[torch.Tensor], torch.Tensor]: ...


#: The interface each task kind calls. A kind not named here (a new task's) is not checked.
INTERFACES: dict[str, type] = {"classification": ImageClassifier, "retrieval": VideoTextRetriever,
                               "multitask": MultiTaskClassifier, "multilabel": ImageClassifier}
#: The kinds whose tasks train and evaluate a frozen encoder's method on stored features.
FEATURE_KINDS = ("classification", "multilabel")


# -- the optional protocols ----------------------------------------------------------------------
@runtime_checkable
class OwnTraining(Protocol):
    """A method that trains by its own rules (SCPNet): the multi-label task builds batches
    of its ``views``, trains its ``training_loss`` and evaluates its ``averaged`` weights."""

    #: the augmented views of each image a training batch carries, in order ("weak", "strong")
    views: tuple[str, ...]

    def training_loss(self, batch: Any) -> torch.Tensor | None:
        """The method's own objective on a training batch, or ``None`` for the task's loss."""

    def averaged(self) -> nn.Module:
        """The weights a task evaluates: the module itself, or a moving average of it."""


@runtime_checkable
class KeepsState(Protocol):
    """A method with state beside its parameters and buffers (a moving average kept as a
    plain attribute, pseudo-labels) that a checkpoint must hold for an exact resume."""

    def resume_state(self) -> dict[str, torch.Tensor]:
        """That state, as named tensors."""

    def load_resume_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Take back what :meth:`resume_state` gave."""


OPTIONAL = (OwnTraining, KeepsState)


def views(module: nn.Module) -> tuple[str, ...]:
    """The views a training batch of ``module`` carries: its own, or one plain weak view."""
    return tuple(module.views) if isinstance(module, OwnTraining) else ("weak",)


def training_loss(module: nn.Module, batch: Any) -> torch.Tensor | None:
    """``module``'s own loss on ``batch``, or ``None`` where the task's loss applies."""
    return module.training_loss(batch) if isinstance(module, OwnTraining) else None


def averaged(module: nn.Module) -> nn.Module:
    """The weights to evaluate: ``module``'s moving average, or ``module`` itself."""
    return module.averaged() if isinstance(module, OwnTraining) else module


def resume_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """What a checkpoint must keep of ``module`` beyond its parameters and buffers (often nothing)."""
    return module.resume_state() if isinstance(module, KeepsState) else {}


def load_resume_state(module: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Give ``module`` back what :func:`resume_state` took; refuse state it cannot keep."""
    if isinstance(module, KeepsState):
        module.load_resume_state(tensors)
    elif tensors:
        raise ValueError(f"{type(module).__name__} keeps no state beside its parameters, "
                         f"but the checkpoint holds {sorted(tensors)[:5]}")


# -- the check when a run is prepared ------------------------------------------------------------
class InterfaceError(TypeError):
    """A method's module lacks a member that its task kind calls."""


# members that every nn.Module or Method has, but only as a placeholder that fails when called
_PLACEHOLDERS = {"forward": nn.Module.forward, "logits_from_features": Method.logits_from_features}


def members(protocol: type) -> tuple[str, ...]:
    """The members a protocol declares, in the order it declares them."""
    declared = [n for n, v in vars(protocol).items() if not n.startswith("_") and callable(v)]
    return tuple(vars(protocol).get("__annotations__", {})) + tuple(declared)


def lacks(module: nn.Module, protocol: type) -> list[str]:
    """The members of ``protocol`` that ``module`` does not have. A member that resolves to a
    placeholder (``nn.Module.forward``, the base's ``logits_from_features``, the protocol's
    own stub where a class inherits the protocol) counts as missing."""
    out = []
    for name in members(protocol):
        resolved = getattr(type(module), name, None)
        stubs = (_PLACEHOLDERS.get(name), vars(protocol).get(name))
        stub = resolved is not None and any(resolved is s for s in stubs)
        if stub or not hasattr(module, name):
            out.append(name)
    return out


def check(name: str, kind: str, module: nn.Module) -> None:
    """Refuse ``module``, built for method ``name`` of task kind ``kind``, where it is no
    :class:`Method`, lacks a member of its kind's interface, or carries only part of an
    optional protocol; the message names the method, the kind and every missing member."""
    if not isinstance(module, Method):
        raise InterfaceError(f"method {name!r} built a {type(module).__name__}, not a "
                             "clipadapt.methods.protocol.Method")
    wanted = [INTERFACES[kind]] if kind in INTERFACES else []
    if module.frozen_image_encoder and kind in FEATURE_KINDS:
        wanted.append(FeatureClassifier)
    problems = [f"lacks {', '.join(gaps)} of the {kind} interface {p.__name__} ({', '.join(members(p))})"
                for p in wanted if (gaps := lacks(module, p))]
    for p in OPTIONAL:
        gaps = lacks(module, p)
        if 0 < len(gaps) < len(members(p)):
            problems.append(f"has only part of {p.__name__}: it lacks {', '.join(gaps)}")
    if problems:
        raise InterfaceError(f"method {name!r} ({type(module).__name__}) cannot run as a {kind} method: "
                             + "; ".join(problems))
