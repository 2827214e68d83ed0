"""One command per recipe: ``python -m clipadapt.reproduce METHOD [--variant V] --profile P``.

It trains a method of :mod:`clipadapt.registry` with its recipe of :mod:`clipadapt.recipes`
on the task that the chapters use (``tasks.for_profile``), with a progress bar, an
evaluation every ``--eval-every`` steps, a metrics log (``OUT/metrics.jsonl``, one JSON
object a line) and run-state checkpoints (``OUT/checkpoints``, :mod:`clipadapt.runstate`);
at the end it writes the trained parameters (``OUT/final.safetensors``) and the results
(``OUT/result.json``) and prints the chapter's table beside the paper's numbers.

* ``--resume`` continues from the newest whole checkpoint: same weights, optimiser,
  schedule, generators and data order, so the run ends exactly as an uninterrupted one;
  a checkpoint of another method, recipe, profile or seed is refused, naming the difference.
* Under ``torchrun --nproc_per_node=N`` the same command trains with DistributedDataParallel:
  each process reads its shard of every global batch (:func:`clipadapt.distributed.step_shard`),
  contrastive losses gather the features of every process, evaluation gathers every
  feature before ranking, and only rank 0 prints and writes.

The data go through in epochs of a DistributedSampler's order (the chapters' runner draws
a fresh random batch each step instead); the recipe -- optimiser, schedule, budget,
options -- is the chapters' own.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from . import distributed, flops, models, profiles, recipes, registry, runstate, seeds, tasks, train
from .checkpoints import save_checkpoint
from .files import atomic_path

KILL_ENV = "CLIPADAPT_KILL_AT"  # tests: "save:STEP" (mid-write) or "step:STEP" -> SIGKILL


class ReproduceError(ValueError):
    """A run that cannot start: bad choices, or an output folder that holds another run."""


def _kill_point(event: str, step: int) -> None:
    if os.environ.get(KILL_ENV) == f"{event}:{step}":
        os.kill(os.getpid(), signal.SIGKILL)


class _Objective(nn.Module):
    """The task's loss as a module's forward, so that DistributedDataParallel sees it."""

    def __init__(self, module: nn.Module, loss: Callable):
        super().__init__()
        self.module, self.loss = module, loss

    def forward(self, batch) -> torch.Tensor:
        return self.loss(self.module, batch)


@dataclass
class Run:
    method: str
    variant: str | None
    profile: profiles.Profile
    recipe: recipes.Recipe
    seed: int
    steps: int
    module: nn.Module
    task: Any
    trainer: train.Trainer | None
    batch: Callable[[int], Any]  # step -> this process's part of the global batch
    device: torch.device
    data: dict

    @property
    def label(self) -> str:
        return self.method if self.variant is None else f"{self.method} ({self.variant})"

    def identity(self) -> dict:
        """What makes two runs the same run (a checkpoint must match it)."""
        return {"method": self.method, "variant": self.variant, "seed": self.seed,
                "profile": json.loads(json.dumps(asdict(self.profile))),
                "recipe": json.loads(json.dumps({**asdict(self.recipe), "options": dict(self.recipe.options)}))}


def choices(method: str, variant: str | None, profile) -> tuple[registry.MethodSpec, str | None, profiles.Profile]:
    """Check the command's choices; the errors list what there is. A method's name may be
    written in any case, with ``-`` or ``_`` for its spaces (``mean-pooling``)."""
    plain = {n.lower().replace(" ", "-"): n for n in registry.REGISTRY}
    spec = registry.get(plain.get(method.lower().replace(" ", "-").replace("_", "-"), method))
    return spec, spec.variant(variant), profiles.get(profile)


def prepare(method: str, variant: str | None = None, profile="tiny", *, seed: int = 0, steps: int | None = None,
            data_root=None, workdir=".", device: str | None = None, amp: bool = True) -> Run:
    """Build everything a run needs, in this process (joining torchrun's group if launched by it)."""
    spec, variant, prof = choices(method, variant, profile)
    device = train.pick_device(device or prof.device)
    device = distributed.init_from_env(device.type) or device
    recipe = recipes.get(method, prof, variant)
    if steps is not None:
        recipe = recipe.replace(steps=steps, epochs=0, min_steps=0)
    clip, preprocess, tokenizer = models.load_clip(prof.clip_model, prof.clip_pretrained, device=device)
    for turn in (0, 1):  # rank 0 writes any synthetic data first; the others then read it
        if (distributed.rank() == 0) == (turn == 0):
            task = tasks.for_profile(spec.task, prof, clip, preprocess, tokenizer, data_root=data_root, workdir=workdir)
        distributed.barrier()
    seeds.seed_everything(seed)
    module = spec.build(clip, tokenizer, task.context, dict(recipe.options), variant).to(device)
    total = recipe.total_steps(task.n_train)
    rank, world = distributed.rank(), distributed.world()
    if hasattr(task, "sampling"):
        n, per_batch, load = task.sampling(module, recipe, seed, device)
        batch = lambda step: load(distributed.step_shard(n, per_batch, step, seed, rank, world), step)  # noqa: E731
        data = {"order": "DistributedSampler(seed, epoch)", "seed": seed, "examples": n, "global_batch": per_batch,
                "steps_per_epoch": n // per_batch}
    else:
        batches = task.batches(module, recipe, seed, device)
        batch = lambda step: distributed.shard_batch(batches(step), rank, world)  # noqa: E731
        data = {"order": "task.batches(seed, step)", "seed": seed}
    trainer = None
    if total:
        objective = _Objective(module, task.loss)
        if distributed.active():
            objective = nn.parallel.DistributedDataParallel(
                objective, device_ids=[device.index] if device.type == "cuda" else None,
                static_graph=True)  # also copes with a parameter that a method leaves out of the loss
        config = train.TrainConfig(steps=total, lr=recipe.lr, weight_decay=recipe.weight_decay,
                                   warmup=recipe.warmup_steps(total), grad_clip=recipe.grad_clip, amp=amp,
                                   progress=False)
        # a method that keeps state beside its parameters (SCPNet's moving average) updates it
        # after every optimiser step, as under the runner
        trainer = train.Trainer(module, objective, config, device, on_step=getattr(module, "after_step", None))
    return Run(method, variant, prof, recipe, seed, total, module, task, trainer, batch, device, data)


def _read_log(path: Path, upto: int) -> list[str]:
    """The lines of a metrics log up to step ``upto`` (a torn last line is dropped)."""
    if not path.is_file():
        return []
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= upto:
                kept.append(line)
        except (ValueError, KeyError):
            continue
    return kept


def _start(run: Run, out: Path, resume: bool, say: Callable) -> float:
    """Put a resumed run back where its checkpoint left it; returns the seconds it had trained."""
    folder = out / "checkpoints"
    if not resume:  # rank 0 looks before anyone writes, and tells the others
        if distributed.broadcast_object(_holds_a_run(out) if distributed.is_main() else None):
            raise ReproduceError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
        return 0.0
    path, tensors, meta, passed = runstate.latest(folder) if distributed.is_main() else (None, {}, {}, [])
    for note in passed:
        say(note)
    if distributed.is_main():
        for name in runstate.clean(folder):
            say(f"removed {name}, a checkpoint whose writing was interrupted")
    # rank 0 reads the checkpoint and hands it to the others (no shared file system needed)
    path, tensors, meta = distributed.broadcast_object((str(path) if path else None, tensors, meta))
    if path is None:
        say(f"no checkpoint in {folder}: starting from step 0")
        if distributed.is_main():
            _rewrite_log(out / "metrics.jsonl", [])
        return 0.0
    diff = runstate.differences(meta["identity"], run.identity())
    if diff:
        raise ReproduceError(f"checkpoint {path} belongs to another run; it differs in: " + "; ".join(diff[:8]))
    runstate.restore(run.module, run.trainer, tensors, meta)
    if hasattr(run.module, "after_step") and not hasattr(run.module, "resume_state"):
        say(f"note: {type(run.module).__name__} updates state after every step (after_step) but does not hand it "
            "to checkpoints (resume_state); the resumed run starts that state afresh")
    if distributed.is_main():
        _rewrite_log(out / "metrics.jsonl", _read_log(out / "metrics.jsonl", meta["step"]))
    say(f"resumed from {path} at step {meta['step']} of {run.steps}")
    return float(meta["data"].get("seconds", 0.0))


def _holds_a_run(out: Path) -> bool:
    return bool(runstate.checkpoints(out / "checkpoints")) or (out / "metrics.jsonl").exists()


def _rewrite_log(path: Path, lines: list[str]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in lines))


def evaluate(run: Run) -> dict:
    run.module.eval()
    out = run.task.evaluate(run.module)
    run.module.train()
    return out


def train_and_evaluate(run: Run, out: str | Path, *, resume: bool = False, eval_every: int | None = None,
                       save_every: int | None = None, keep: int = 2, progress: bool = True,
                       say: Callable = print) -> dict:
    """Train ``run`` to its last step, evaluating, logging and checkpointing on the way;
    returns the final results (also written to ``out/result.json``)."""
    out = Path(out)
    main = distributed.is_main()
    if main:
        out.mkdir(parents=True, exist_ok=True)
    say = say if main else (lambda *a, **k: None)
    eval_every = eval_every or max(1, run.steps // 4)
    save_every = save_every or max(1, min(500, run.steps // 10))
    seconds = _start(run, out, resume, say) if run.trainer else 0.0
    log = open(out / "metrics.jsonl", "a") if main else None
    begin = run.trainer.step if run.trainer else 0
    bar = None
    if main and progress and run.steps:
        from tqdm import tqdm

        bar = tqdm(total=run.steps, initial=begin, desc=run.label, mininterval=1.0, file=sys.stderr)

    def record(entry: dict) -> None:
        if log is not None:
            log.write(json.dumps(entry) + "\n")
            log.flush()

    metrics = None
    clock = time.perf_counter()
    run.module.train()
    for step in range(begin, run.steps):
        lr = run.trainer.lr
        loss = distributed.mean(run.trainer.train_step(run.batch(step)))
        done = step + 1
        record({"step": done, "loss": loss, "lr": lr})
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        _kill_point("step", done)
        if done % eval_every == 0 or done == run.steps:
            metrics = evaluate(run)
            record({"step": done, "eval": metrics})
            if bar is not None:
                bar.write(f"step {done}: " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                                                       for k, v in _row(run.task, metrics).items()))
        if done % save_every == 0 and done < run.steps:
            if main:
                where = {**run.data, "next_step": done, "seconds": seconds + time.perf_counter() - clock}
                if "steps_per_epoch" in run.data:
                    where["epoch"], where["batch_in_epoch"] = divmod(done, run.data["steps_per_epoch"])
                tensors, meta = runstate.capture(run.module, run.trainer, run.identity(), where)
                path = out / "checkpoints" / runstate.PATTERN.format(done)
                runstate.write(path, tensors, meta, midway=lambda: _kill_point("save", done))
                runstate.prune(out / "checkpoints", keep)
            distributed.barrier()
    seconds += time.perf_counter() - clock
    if bar is not None:
        bar.close()
    if metrics is None:  # nothing trained (or the run had already ended)
        metrics = evaluate(run)
        record({"step": run.steps, "eval": metrics})
    if log is not None:
        log.close()
    return _finish(run, out, metrics, seconds, say)


def _row(task, metrics: dict) -> dict:
    if hasattr(task, "row"):
        return task.row(metrics)
    flat = {}
    for k, v in metrics.items():
        flat.update({f"{k} {kk}": vv for kk, vv in v.items()} if isinstance(v, dict) else {k: v})
    return flat


def _finish(run: Run, out: Path, metrics: dict, seconds: float, say: Callable) -> dict:
    if not distributed.is_main():
        distributed.barrier()
        return {"metrics": metrics}
    run.module.eval()
    macs = flops.count_macs(run.task.encoder(run.module), run.task.example(run.device)).total
    trainable = {n: p for n, p in run.module.named_parameters() if p.requires_grad}
    result = {"method": run.method, "variant": run.variant, "profile": run.profile.name, "steps": run.steps,
              "seed": run.seed, "metrics": metrics, "trainable": sum(p.numel() for p in trainable.values()),
              "macs": macs, "train_seconds": seconds, "processes": distributed.world(), "device": str(run.device)}
    save_checkpoint(out / "final.safetensors", trainable, {"identity": run.identity(), "metrics": metrics})
    with atomic_path(out / "result.json") as tmp:
        tmp.write_text(json.dumps(result, indent=1))
    say(format_table(run, result))
    distributed.barrier()
    return result


def format_table(run: Run, result: dict) -> str:
    """The chapter's columns for this run, and the paper's row under them where it has one."""
    spec = registry.get(run.method)
    rows = [{"run": f"{run.label}, {run.profile.name} (measured)", **_row(run.task, result["metrics"]),
             "trainable": result["trainable"], "M multiply-adds": result["macs"] / 1e6,
             "seconds": result["train_seconds"]}]
    paper = dict(spec.paper.get(run.variant) or {})
    if paper:
        if "params (M, %)" in paper:  # the paper counts in millions, with the share of the full model
            paper["trainable"] = paper.pop("params (M, %)").replace(" ", " M ", 1)
        rows.append({"run": "paper (cited)", **paper})
    cols = list(dict.fromkeys(c for r in rows for c in r))
    cell = lambda v: f"{v:.1f}" if isinstance(v, float) else (f"{v:,}" if isinstance(v, int) else str(v))  # noqa: E731
    width = {c: max(len(c), *(len(cell(r[c])) for r in rows if c in r)) for c in cols}
    lines = ["  ".join(c.ljust(width[c]) for c in cols)]
    lines += ["  ".join(cell(r[c]).ljust(width[c]) if isinstance(r.get(c), str) else
                        (cell(r[c]) if c in r else "-").rjust(width[c]) for c in cols) for r in rows]
    if paper:
        lines.append(f"paper: {spec.paper_source} -- cited, not measured here")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clipadapt.reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("method", help="one of: " + ", ".join(registry.REGISTRY) + " (spaces may be written -)")
    parser.add_argument("--variant", help="the method's variant (default: its first)")
    parser.add_argument("--profile", required=True, help="one of: " + ", ".join(profiles.PROFILES))
    parser.add_argument("--out", help="output folder (default: runs/METHOD[-VARIANT]-PROFILE)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, help="override the recipe's budget (a quick look; part of the run's identity)")
    parser.add_argument("--eval-every", type=int, help="steps between evaluations (default: a quarter of the run)")
    parser.add_argument("--save-every", type=int, help="steps between checkpoints (default: a tenth, at most 500)")
    parser.add_argument("--data-root", help="where real datasets live (colab/paper); default $CLIPADAPT_DATA or ./data")
    parser.add_argument("--workdir", help="where synthetic data are written and reused (default: --out)")
    parser.add_argument("--device", help="cpu or cuda (default: the profile's, when there is one)")
    parser.add_argument("--no-amp", action="store_true", help="train in float32 on CUDA too")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        spec, variant, prof = choices(args.method, args.variant, args.profile)
    except ValueError as err:
        parser.error(str(err))
    name = "-".join(x for x in (spec.name, variant, prof.name) if x).replace(" ", "_").replace("+", "")
    out = Path(args.out or Path("runs") / name)
    if not args.resume and not distributed.launched() and _holds_a_run(out):  # early, before any loading
        print(f"error: {out} already holds a run; pass --resume to continue it or choose another --out",
              file=sys.stderr)
        return 2
    try:
        run = prepare(spec.name, variant, prof, seed=args.seed, steps=args.steps, data_root=args.data_root,
                      workdir=args.workdir or out, device=args.device, amp=not args.no_amp)
        train_and_evaluate(run, out, resume=args.resume, eval_every=args.eval_every, save_every=args.save_every,
                           progress=not args.no_progress)
    except ReproduceError as err:
        if distributed.is_main():
            print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        if distributed.active():
            torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
