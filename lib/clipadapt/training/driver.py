"""The one training path: prepare, fit, evaluate. Chapters, ``python -m clipadapt.reproduce``
and the benchmarks all train through it.

* :func:`prepare` looks the method up in :mod:`clipadapt.methods.registry` and its recipe in
  :mod:`clipadapt.training.recipes`, seeds everything, builds the method around a *copy* of
  the CLIP (the caller's model never changes; in float16 as OpenAI's code runs it where the
  recipe's precision is ``"fp16"``, :func:`clipadapt.core.precision.half`), asks the task for
  its :class:`Loader` and sets up the :class:`~clipadapt.training.loop.Trainer`;
* :func:`fit` trains to the recipe's last step. The data order is one function of the seed
  and the step (:func:`step_indices`: a fresh draw of the global batch at every step), so a
  run stopped anywhere and resumed goes on with exactly the batches it would have seen.
  With an output folder it also evaluates every ``eval_every`` steps, logs
  (``metrics.jsonl``) and writes run-state checkpoints (:mod:`clipadapt.training.runstate`);
* :func:`evaluate` measures with the task's metrics, :func:`measure` counts the trainable
  parameters and the multiply-adds of encoding one input;
* :func:`run` does all of it in one call and returns a :class:`Result` (what chapters use).

Under ``torchrun`` (:func:`clipadapt.core.distributed.init_from_env`) each process loads
only its shard of every global batch, and the objective is wrapped in
DistributedDataParallel. Every hook it calls is declared by
:class:`~clipadapt.methods.protocol.Method` and :class:`~clipadapt.tasks.protocol.Task`.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from ..core import distributed, flops, models, precision, seeds
from ..core.checkpoints import save_checkpoint
from ..core.files import atomic_path
from ..methods import protocol, registry
from ..methods.protocol import Method
from ..tasks.protocol import Loader, Task
from .. import profiles
from . import recipes, runstate
from .loop import History, Trainer, progress_bar


def step_indices(n: int, per_batch: int, seed: int, step: int) -> torch.Tensor:
    """The examples of step ``step``'s global batch: a fresh draw of ``per_batch`` of ``n``
    from a generator seeded by ``(seed, step)``, or all of them, in order, for a full batch."""
    if per_batch >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=seeds.step_generator(seed, step))[:per_batch]


class _Objective(nn.Module):
    """The task's loss as a module's forward, so that DistributedDataParallel sees it."""

    def __init__(self, module: nn.Module, loss: Callable):
        super().__init__()
        self.module, self.loss = module, loss

    def forward(self, batch) -> torch.Tensor:
        return self.loss(self.module, batch)


@dataclass
class Run:
    """A prepared run: everything :func:`fit` and :func:`evaluate` need."""

    method: str
    variant: str | None
    profile: str | None
    recipe: recipes.Recipe
    seed: int
    steps: int
    module: Method
    task: Task
    loader: Loader | None
    trainer: Trainer | None
    device: torch.device

    @property
    def label(self) -> str:
        return self.method if self.variant is None else f"{self.method} ({self.variant})"

    def batch(self, step: int):
        """This process's part of step ``step``'s global batch."""
        indices = step_indices(self.loader.n, self.loader.per_batch, self.seed, step)
        return self.loader.load(distributed.shard(indices, distributed.rank(), distributed.world()), step)

    def identity(self) -> dict:
        """What makes two runs the same run (a checkpoint must match it)."""
        return {"method": self.method, "variant": self.variant, "seed": self.seed, "profile": self.profile,
                "recipe": json.loads(json.dumps({k: dict(v) if isinstance(v, Mapping) else v
                                                 for k, v in asdict(self.recipe).items() if k != "sources"}))}


def prepare(method: str, clip: nn.Module, tokenizer, task: Task, *, variant: str | None = None,
            recipe: recipes.Recipe | None = None, profile=None, seed: int = 0, amp: bool = True) -> Run:
    """Build ``method`` (``variant``) for ``task`` with ``recipe`` (default: the profile's);
    ``amp=False`` trains in float32 (no autocast, and an ``"fp16"`` recipe in ``"fp32"``)."""
    spec = registry.get(method)
    variant = spec.variant(variant)
    if spec.task != task.kind:
        raise ValueError(f"method {method!r} solves {spec.task}, but the task is {task.kind}")
    if recipe is None and not isinstance(profile, profiles.Profile):
        raise TypeError(f"driver.prepare({method!r}, ...): pass the recipe, or the Profile whose recipe it runs "
                        f"(clipadapt.profiles.get(name)); got profile={profile!r}")
    recipe = recipe or recipes.get(method, profile, variant)
    recipe = recipe.at_shots(getattr(task, "shots", None))  # a budget set by the shot count (CoOp's epochs)
    if not amp and recipe.precision == "fp16":  # float32 asked for (reproduce --no-amp)
        recipe = recipe.deviate({"precision": "float32 asked for (amp=False)"}, precision="fp32")
    device = next(clip.parameters()).device
    seeds.seed_everything(seed)
    clip = copy.deepcopy(clip)
    if precision.check(recipe.precision) == "fp16":  # the official fp16 rows: OpenAI's float16 CLIP, before the
        precision.half(clip)                          # method makes its own tensors in its dtype
    module = spec.build(clip, tokenizer, task.context, dict(recipe.options), variant).to(device)
    protocol.check(spec.name, spec.task, module)  # the interface of its task kind, before any step
    if recipe.optimizer == "lbfgs":  # the official linear probe: fitted here, on features, in no steps
        if not (hasattr(task, "fit_probe") and getattr(module, "probe", None) == "sklearn"):
            raise ValueError(f"recipe optimizer 'lbfgs' fits the official linear probe (option probe='sklearn') "
                             f"on a task with fit_probe; {spec.name!r} on {type(task).__name__} is not that")
        task.fit_probe(module)
        name = profile if profile is None or isinstance(profile, str) else profile.name
        return Run(spec.name, variant, name, recipe, seed, 0, module, task, None, None, device)
    steps = recipe.total_steps(task.n_train)
    loader = trainer = None
    if steps:
        loader = task.loader(module, recipe, seed, device)
        if loader.per_batch % distributed.world():
            raise ValueError(f"the global batch of {loader.per_batch} does not split over {distributed.world()} "
                             "processes; choose a number of processes that divides it")
        objective = _Objective(module, task.loss)
        if distributed.active():
            objective = nn.parallel.DistributedDataParallel(
                objective, device_ids=[device.index] if device.type == "cuda" else None,
                static_graph=True)  # also copes with a parameter that a method leaves out of the loss
        trainer = Trainer(module, objective, recipe, steps, steps_per_epoch=recipe.steps_per_epoch(task.n_train),
                          amp=amp, device=device, on_step=module.after_step)
    name = profile if profile is None or isinstance(profile, str) else profile.name
    return Run(spec.name, variant, name, recipe, seed, steps, module, task, loader, trainer, device)


def evaluate(run: Run) -> dict:
    """The task's metrics of the module as it stands (left in evaluation mode)."""
    run.module.eval()
    return run.task.evaluate(run.module)


def evaluate_with_features(run: Run) -> tuple[dict, Any]:
    """:func:`evaluate`, with the test features the task hands on (:meth:`Task.evaluate_with_features`)."""
    run.module.eval()
    return run.task.evaluate_with_features(run.module)


def measure(run: Run) -> tuple[int, int]:
    """Trainable parameters, and the multiply-adds of encoding one input at inference."""
    run.module.eval()
    # counted on the meta device (shapes only): a full-size encoder costs no arithmetic; a task
    # whose encoder is a plain function is counted where it runs
    encoder, example = run.task.encoder(run.module), run.task.example(run.device)
    count = flops.count_macs_on_meta if flops.owner(encoder) is not None else flops.count_macs
    macs = count(encoder, example).total
    return models.count_parameters(run.module).trainable, macs


def fit(run: Run, out: str | Path | None = None, *, resume: bool = False, eval_every: int | None = None,
        save_every: int | None = None, keep: int = 2, progress: bool = False, say: Callable = print,
        kill_point: Callable[[str, int], None] = lambda event, step: None) -> History:
    """Train ``run`` to its last step. With ``out``, also evaluate every ``eval_every`` steps
    (default: a quarter of the run), log to ``out/metrics.jsonl`` and write a checkpoint every
    ``save_every`` steps (default: a tenth, at most 500), keeping the newest ``keep``;
    ``resume`` continues from the newest whole checkpoint there. ``kill_point(event, step)``
    is a test's hook. Returns the history of this call's steps (losses, learning rates)."""
    history = History()
    if not run.steps:
        return history
    main = distributed.is_main()
    say = say if main else (lambda *a, **k: None)
    log, before = None, 0.0
    if out is not None:
        out = Path(out)
        if main:
            out.mkdir(parents=True, exist_ok=True)
        before = runstate.start(run, out, resume, say)
        log = open(out / "metrics.jsonl", "a") if main else None
        eval_every = eval_every or max(1, run.steps // 4)
        save_every = save_every or max(1, min(500, run.steps // 10))

    def record(entry: dict) -> None:
        if log is not None:
            log.write(json.dumps(entry) + "\n")
            log.flush()

    begin = run.trainer.step
    bar = progress_bar(run.steps, run.label, progress and main, initial=begin)
    clock = time.perf_counter()
    run.module.train()
    for step in range(begin, run.steps):
        history.lr.append(run.trainer.lr)
        loss = distributed.mean(run.trainer.train_step(run.batch(step)))
        history.loss.append(loss)
        done = step + 1
        record({"step": done, "loss": loss, "lr": history.lr[-1]})
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        kill_point("step", done)
        if out is None:
            continue
        if done % eval_every == 0 or done == run.steps:
            metrics = history.evaluations[done] = evaluate(run)
            run.module.train()
            record({"step": done, "eval": metrics})
            if bar is not None:
                bar.write(f"step {done}: " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                                                       for k, v in run.task.row(metrics).items()))
        if done % save_every == 0 and done < run.steps:
            runstate.save(run, out, done, before + time.perf_counter() - clock, keep,
                          midway=lambda: kill_point("save", done))
    history.seconds = before + time.perf_counter() - clock
    if bar is not None:
        bar.close()
    elif progress and main and history.steps:
        print(f"{run.label}: {history.steps} steps in {history.seconds:.0f} s "
              f"({history.steps / max(history.seconds, 1e-9):.1f} steps/s), last loss {history.loss[-1]:.3f}")
    if log is not None:
        log.close()
    run.module.eval()
    return history


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
    history: History | None = None
    module: nn.Module | None = field(default=None, repr=False)
    peak_bytes: int | None = None  # memory above the level before the run, where it was measured
    # a kept module's test-set features from its evaluation, where the task gives them (retrieval:
    # (videos, captions)); a chapter reuses them instead of encoding the test set again
    features: Any = field(default=None, repr=False)


def run(method: str, clip: nn.Module, tokenizer, task: Task, *, variant: str | None = None,
        recipe: recipes.Recipe | None = None, profile=None, seed: int = 0, progress: bool = False,
        keep: bool = False, count_macs: bool = True) -> Result:
    """Prepare, fit and evaluate ``method`` (``variant``) on ``task`` with ``recipe``
    (default: the profile's) and measure it; ``keep`` returns the trained module."""
    start = time.perf_counter()
    prepared = prepare(method, clip, tokenizer, task, variant=variant, recipe=recipe, profile=profile, seed=seed)
    history = fit(prepared, progress=progress) if prepared.steps else None
    metrics, features = evaluate_with_features(prepared) if keep else (evaluate(prepared), None)
    seconds = time.perf_counter() - start
    trainable, macs = measure(prepared) if count_macs else (models.count_parameters(prepared.module).trainable, None)
    return Result(prepared.method, prepared.variant, metrics, trainable, macs, seconds,
                  history.seconds if history else 0.0, history.steps if history else 0, prepared.recipe, history,
                  prepared.module if keep else None, features=features)


def trainable_parameters(model_name: str, context: dict, profile: profiles.Profile, task: str = "classification",
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


def write_result(run: Run, out: str | Path, metrics: dict, seconds: float) -> dict[str, Any]:
    """The trained parameters (``out/final.safetensors``) and the results (``out/result.json``)."""
    out = Path(out)
    trainable, macs = measure(run)
    result = {"method": run.method, "variant": run.variant, "profile": run.profile, "steps": run.steps,
              "seed": run.seed, "metrics": metrics, "trainable": trainable, "macs": macs, "train_seconds": seconds,
              "processes": distributed.world(), "device": str(run.device)}
    params = {n: p for n, p in run.module.named_parameters() if p.requires_grad}
    save_checkpoint(out / "final.safetensors", params, {"identity": run.identity(), "metrics": metrics})
    with atomic_path(out / "result.json") as tmp:
        tmp.write_text(json.dumps(result, indent=1))
    return result

