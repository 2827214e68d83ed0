"""What a method declares about itself, and where the declarations gather.

Each method's file ends with ``register(MethodSpec(...))``: its name, the task kind it
solves, how to build it, a one-line summary, its variants, the papers' numbers it is
compared with. :mod:`clipadapt.methods.registry` imports every method file (so that each
has registered) and looks methods up by name; this module imports no method, so that each
method file can import it without a cycle.

``build(clip, tokenizer, context, options, variant)`` receives a *copy* of the CLIP (the
driver copies it), the task's ``context`` (class names and template; frames; tasks) and
the recipe's ``options`` (:mod:`clipadapt.training.recipes`), and returns a
:class:`~clipadapt.methods.protocol.Method` that has the interface of its task kind
(:func:`clipadapt.methods.protocol.check` says which members it lacks) and exactly the
parameters that train requiring gradients.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

from .protocol import Method


@dataclass(frozen=True)
class MethodSpec:
    name: str
    task: str  # "classification", "retrieval", "multilabel" or "multitask": clipadapt.tasks.TASKS
    build: Callable[..., Method]  # (clip, tokenizer, context, options, variant) -> module
    summary: str
    variants: tuple[str, ...] = ()  # the first is the default
    # the paper's own numbers, cited (never measured here): {variant or None: {column: value}}
    # in the columns of the task's table (tasks.*.row), and where they come from
    paper: Mapping[str | None, Mapping[str, object]] = field(default_factory=dict)
    paper_source: str = ""
    # frames per video on the long videos of ActivityNet Captions and DiDeMo where the paper
    # samples more than elsewhere (None: the profile's video_frames everywhere)
    long_video_frames: int | None = None

    def variant(self, variant: str | None) -> str | None:
        """``variant`` checked against the method's variants (None: the default)."""
        if not self.variants:
            if variant is not None:
                raise ValueError(f"method {self.name!r} has no variants, got variant {variant!r}")
            return None
        if variant is None:
            return self.variants[0]
        if variant not in self.variants:
            raise ValueError(f"unknown variant {variant!r} of {self.name!r}; choose one of {self.variants}")
        return variant


#: Every registered method by name. :mod:`clipadapt.methods.registry` puts them in the book's
#: order once every method file has registered; later registrations (a test's) come last.
REGISTRY: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    """Add ``spec`` to :data:`REGISTRY`; a second method of the same name is refused."""
    if spec.name in REGISTRY and REGISTRY[spec.name] is not spec:
        raise ValueError(f"two methods are named {spec.name!r}: one built by {_builder(REGISTRY[spec.name])}, "
                         f"one by {_builder(spec)}; give one of them another name (or unregister the first)")
    REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> MethodSpec:
    """Take method ``name`` out of :data:`REGISTRY` (a test's toy, when the test ends)."""
    if name not in REGISTRY:
        raise ValueError(f"no method {name!r} is registered")
    return REGISTRY.pop(name)


def _builder(spec: MethodSpec) -> str:
    return f"{getattr(spec.build, '__module__', '?')}.{getattr(spec.build, '__qualname__', repr(spec.build))}"
