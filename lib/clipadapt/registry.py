"""Every method of the book, by name: the one file to open to add a method.

A :class:`MethodSpec` says which task a method solves and how to build it. ``build(clip,
tokenizer, context, options, variant)`` receives a *copy* of the CLIP (the runner copies
it), the task's ``context`` (class names and template; frames) and the recipe's
``options`` (:mod:`clipadapt.recipes`), and returns a module that

* has the task's interface -- classification: ``module(images) -> logits``; retrieval:
  ``module.encode_video(videos)`` and ``module.encode_text(ids)``;
* trains exactly the parameters that require gradients (everything else frozen).

To add a method: write ``methods/<name>.py`` (the module), add a builder and a
:class:`MethodSpec` below, and its recipe per profile in :mod:`clipadapt.recipes`; then
``runner.run("<name>", clip, tokenizer, task)`` trains and measures it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from . import adapt, features, retrieval, tuning
from .methods import coop, scpnet, vop, vpt


@dataclass(frozen=True)
class MethodSpec:
    name: str
    task: str  # "classification", "retrieval" or "multilabel": the task class of clipadapt.tasks
    build: Callable[..., nn.Module]  # (clip, tokenizer, context, options, variant) -> module
    summary: str
    variants: tuple[str, ...] = ()  # the first is the default

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


def _class_features(clip, tokenizer, context) -> torch.Tensor:
    with torch.no_grad():
        return features.encode_texts(clip, tokenizer, [context["template"].format(c) for c in context["classnames"]])


def _zero_shot(clip, tokenizer, context, options, variant):
    return adapt.ZeroShot(clip, tokenizer, context["classnames"], context["template"])


def _linear_probe(clip, tokenizer, context, options, variant):
    return adapt.LinearProbe(clip, tokenizer, context["classnames"], context["template"])


def _coop(clip, tokenizer, context, options, variant):
    return coop.CoOp(clip, tokenizer, context["classnames"], n_ctx=options.get("n_ctx", 16), init=options.get("init"))


def _vpt(clip, tokenizer, context, options, variant):
    cls = _class_features(clip, tokenizer, context)
    return vpt.DeepVisualPrompts(clip, options.get("prompts", 8), class_features=cls)


def _tuned_clip(policy):
    def build(clip, tokenizer, context, options, variant):
        tuning.set_trainable(clip, policy, rank=options.get("rank", 8))
        return adapt.TextHeadClassifier(clip, tokenizer, context["classnames"], context["template"])

    return build


def _mean_pooling(clip, tokenizer, context, options, variant):
    return retrieval.MeanPoolCLIP(clip, variant, last_layers=options.get("last_layers", 2), rank=options.get("rank", 8))


def _vop(clip, tokenizer, context, options, variant):
    return vop.VoP(clip, variant, frames=context["frames"], ks=options.get("ks", 8))


def _scpnet(clip, tokenizer, context, options, variant):
    return scpnet.SCPNet(clip, tokenizer, context["classnames"], relation=context.get("relation"), variant=variant,
                         **options)


REGISTRY: dict[str, MethodSpec] = {spec.name: spec for spec in (
    MethodSpec("zero-shot", "classification", _zero_shot, "nothing trains: the class prompts' text features"),
    MethodSpec("linear probe", "classification", _linear_probe, "a linear layer on frozen image features"),
    MethodSpec("CoOp", "classification", _coop, "the prompt's context vectors (clipadapt.methods.coop)"),
    MethodSpec("VPT-deep", "classification", _vpt, "visual prompts in every layer (clipadapt.methods.vpt)"),
    MethodSpec("LoRA", "classification", _tuned_clip("lora"), "low-rank updates of every attention QKV, both towers"),
    MethodSpec("full fine-tune", "classification", _tuned_clip("full"), "every weight of both towers"),
    MethodSpec("mean pooling", "retrieval", _mean_pooling, "the mean of the frames' CLIP features; "
               "variants say what of CLIP trains", variants=tuning.POLICIES),
    MethodSpec("VoP", "retrieval", _vop, "text-video co-operative prompt tuning (clipadapt.methods.vop)",
               variants=vop.VARIANTS),
    MethodSpec("SCPNet", "multilabel", _scpnet, "prompts, a label graph and prior-enhanced self-supervision for "
               "incomplete multi-label recognition (clipadapt.methods.scpnet)", variants=scpnet.VARIANTS),
)}


def get(name: str) -> MethodSpec:
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


def methods(task: str | None = None) -> tuple[str, ...]:
    """The methods of ``task`` ("classification", "retrieval"; None: all), in book order."""
    return tuple(n for n, s in REGISTRY.items() if task is None or s.task == task)
