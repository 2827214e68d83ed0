"""The one runner: build a method by name, train it, measure it.

``run(method, clip, tokenizer, task)``:

1. looks the method up in :mod:`clipadapt.registry` and its recipe (learning rate, budget,
   options) in :mod:`clipadapt.recipes` for the profile;
2. seeds everything (:func:`clipadapt.seeds.seed_everything`) and builds the method
   around a *copy* of ``clip`` (the caller's model is never changed);
3. trains the parameters that require gradients with :func:`clipadapt.train.fit` on the
   task's batches and loss (nothing, for a recipe of 0 steps), calling the module's
   ``after_step()`` after every optimiser step where it has one;
4. evaluates with the task's metric (:mod:`clipadapt.tasks`) and counts the trainable
   parameters and the multiply-adds of encoding one input.

It returns a :class:`Result`. Every chapter from 2 on runs its methods through here.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

from torch import nn

from . import flops, models, recipes, registry, seeds, train


@dataclass
class Result:
    method: str
    variant: str | None
    metrics: dict  # the task's: {"accuracy"}, {"text_to_video", "video_to_text", "reversal"}, ...
    trainable: int
    macs: int | None  # multiply-adds to encode one input (an image; a video) at inference
    seconds: float  # build, train and evaluate
    train_seconds: float
    steps: int
    recipe: recipes.Recipe
    history: train.History | None = None
    module: nn.Module | None = field(default=None, repr=False)


def run(method: str, clip: nn.Module, tokenizer, task, *, variant: str | None = None,
        recipe: recipes.Recipe | None = None, profile=None, seed: int = 0, progress: bool = False,
        keep: bool = False, count_macs: bool = True) -> Result:
    """Train ``method`` (``variant``) on ``task`` with ``recipe`` (default: the profile's)
    and measure it; ``keep`` returns the trained module in the result."""
    spec = registry.get(method)
    variant = spec.variant(variant)
    if spec.task != task.kind:
        raise ValueError(f"method {method!r} solves {spec.task}, but the task is {task.kind}")
    recipe = recipe or recipes.get(method, profile, variant)
    device = next(clip.parameters()).device
    label = method if variant is None else f"{method} ({variant})"
    start = time.perf_counter()
    seeds.seed_everything(seed)
    module = spec.build(copy.deepcopy(clip), tokenizer, task.context, dict(recipe.options), variant).to(device)
    steps = recipe.total_steps(task.n_train)
    history = None
    if steps:
        config = train.TrainConfig(steps=steps, lr=recipe.lr, weight_decay=recipe.weight_decay,
                                   warmup=recipe.warmup_steps(steps), grad_clip=recipe.grad_clip,
                                   progress=progress, description=label)
        batches = task.batches(module, recipe, seed, device)
        history = train.fit(module, lambda batch: task.loss(module, batch), batches, config, device=device,
                            on_step=getattr(module, "after_step", None))  # e.g. SCPNet's weight average
    train_seconds = history.seconds if history else 0.0
    module.eval()
    result_metrics = task.evaluate(module)
    seconds = time.perf_counter() - start
    macs = flops.count_macs(task.encoder(module), task.example(device)).total if count_macs else None
    return Result(method, variant, result_metrics, models.count_parameters(module).trainable, macs, seconds,
                  train_seconds, history.steps if history else 0, recipe, history, module if keep else None)


def trainable_parameters(model_name: str, context: dict, profile="colab", task: str = "classification",
                         variant: str | None = None) -> dict[str, int]:
    """Trainable parameters of every method of ``task`` built on ``model_name`` (random
    weights: no download) with ``profile``'s recipes."""
    clip, _, tokenizer = models.load_clip(model_name)
    out = {}
    for name in registry.methods(task):
        spec = registry.get(name)
        v = spec.variant(variant if variant in spec.variants else None)
        options = dict(recipes.get(name, profile, v).options)
        out[name] = models.count_parameters(spec.build(copy.deepcopy(clip), tokenizer, context, options, v)).trainable
    return out
