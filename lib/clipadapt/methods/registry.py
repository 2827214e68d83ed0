"""Every method of the book, by name.

A :class:`MethodSpec` says which task a method solves and how to build it. ``build(clip,
tokenizer, context, options, variant)`` receives a *copy* of the CLIP (the driver copies
it), the task's ``context`` (class names and template; frames; tasks) and the recipe's
``options`` (:mod:`clipadapt.training.recipes`), and returns a
:class:`~clipadapt.methods.protocol.Method`: the interface of its task kind, the hooks it
needs, and exactly the parameters that train requiring gradients.

A new method is one file under ``methods/`` (its module, a subclass of ``Method``), one
entry below, one recipe row per profile in :mod:`clipadapt.training.recipes` and its tests;
``driver.run("<name>", clip, tokenizer, task)`` then trains and measures it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch

from ..core import features
from ..data import names
from . import baselines, coop, mean_pool, scpnet, softcpt, tempme, vop, vpt
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


def _class_features(clip, tokenizer, context) -> torch.Tensor:
    with torch.no_grad():
        return features.encode_texts(clip, tokenizer, names.prompts(context["template"], context["classnames"]))


def _zero_shot(clip, tokenizer, context, options, variant):
    return baselines.ZeroShot(clip, tokenizer, context["classnames"], context["template"])


def _linear_probe(clip, tokenizer, context, options, variant):
    return baselines.LinearProbe(clip, tokenizer, context["classnames"], context["template"])


def _coop(clip, tokenizer, context, options, variant):
    return coop.CoOp(clip, tokenizer, context["classnames"], n_ctx=options.get("n_ctx", 16), init=options.get("init"))


def _vpt(clip, tokenizer, context, options, variant):
    cls = _class_features(clip, tokenizer, context)
    return vpt.DeepVisualPrompts(clip, options.get("prompts", 8), class_features=cls)


def _tuned_clip(policy):
    def build(clip, tokenizer, context, options, variant):
        baselines.set_trainable(clip, policy, rank=options.get("rank", 8))
        return baselines.TextHeadClassifier(clip, tokenizer, context["classnames"], context["template"])

    return build


def _mean_pooling(clip, tokenizer, context, options, variant):
    return mean_pool.MeanPoolCLIP(clip, variant, last_layers=options.get("last_layers", 2), rank=options.get("rank", 8),
                                  checkpointing=options.get("checkpointing", False))


def _vop(clip, tokenizer, context, options, variant):
    return vop.VoP(clip, variant, frames=context["frames"], ks=options.get("ks", 8))


def _vop_paper(rows: dict[str | None, str]) -> dict:
    """Rows of the VoP paper's Table 1 by our variant names, in the tasks' column names."""
    return {v: dict(zip(vop.PAPER_COLUMNS, vop.PAPER_TABLE_1[name])) for v, name in rows.items()}


_VOP_SOURCE = "VoP paper (Huang et al., CVPR 2023), Table 1: MSR-VTT 9k / 1k-A, CLIP ViT-B/32, 12 frames"


def _multitask(kind):
    def build(clip, tokenizer, context, options, variant):
        tasks = context["tasks"]
        if kind == "zero-shot":
            return softcpt.MultiTaskZeroShot(clip, tokenizer, tasks)
        if kind == "linear probe":
            return softcpt.MultiTaskLinearProbe(clip, tokenizer, tasks)
        if kind == "SoftCPT":
            return softcpt.SoftCPT(clip, tokenizer, tasks, variant, n_ctx=options.get("n_ctx", 16),
                                   task_n_ctx=options.get("task_n_ctx", 4), class_n_ctx=options.get("class_n_ctx", 4))
        return softcpt.MultiTaskCoOp(clip, tokenizer, tasks, n_ctx=options.get("n_ctx", 16), sharing=kind)

    return build


def _tempme(clip, tokenizer, context, options, variant):
    schedule = tempme.schedule_for(options.get("schedule", "ViT-B-32"), context["frames"])
    return tempme.TempMe(clip, schedule, frames=context["frames"], policy=variant, rank=options.get("rank", 8),
                         positions=options.get("positions", True))


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
               "variants say what of CLIP trains", variants=baselines.POLICIES,
               paper=_vop_paper({"full": "Full", "partial": "Partial"}), paper_source=_VOP_SOURCE),
    MethodSpec("VoP", "retrieval", _vop, "text-video co-operative prompt tuning (clipadapt.methods.vop)",
               variants=vop.VARIANTS, paper=_vop_paper(dict(zip(vop.VARIANTS, (
                   "VoP", "VoP^P", "VoP^C", "VoP^F", "VoP^F+P", "VoP^F+C")))), paper_source=_VOP_SOURCE),
    MethodSpec("TempMe", "retrieval", _tempme, "ImgMe + ClipMe temporal token merging; variants say what "
               "of CLIP trains beside the clip positional embeddings (clipadapt.methods.tempme)",
               variants=("lora", "full"), long_video_frames=tempme.LONG_VIDEO_FRAMES),
    MethodSpec("ZS-CLIP", "multitask", _multitask("zero-shot"), "every task zero-shot with its own template"),
    MethodSpec("LP-CLIP", "multitask", _multitask("linear probe"), "a linear probe per task on frozen features"),
    MethodSpec("CoOp-CA", "multitask", _multitask("CA"), "a CoOp context per task, trained jointly "
               "(clipadapt.methods.softcpt)"),
    MethodSpec("CoOp-MT", "multitask", _multitask("MT"), "one CoOp context shared by every task"),
    MethodSpec("SoftCPT", "multitask", _multitask("SoftCPT"), "contexts generated from the task names by a "
               "task-shared meta network (clipadapt.methods.softcpt)", variants=softcpt.VARIANTS),
    MethodSpec("SCPNet", "multilabel", _scpnet, "prompts, a label graph and prior-enhanced self-supervision for "
               "incomplete multi-label recognition (clipadapt.methods.scpnet)", variants=scpnet.VARIANTS),
)}


def get(name: str) -> MethodSpec:
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


def methods(task: str | None = None) -> tuple[str, ...]:
    """The methods of ``task`` ("classification", "retrieval", "multitask"; None: all), in book order."""
    return tuple(n for n, s in REGISTRY.items() if task is None or s.task == task)
