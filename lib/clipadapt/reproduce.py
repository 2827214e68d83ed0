"""One command per run the book shows: ``python -m clipadapt.reproduce chNN/NAME --profile P``.

``chNN/NAME`` is an experiment of :mod:`clipadapt.experiments` (``--list`` prints them
chapter by chapter): the command builds its task, recipe and seeds exactly as the chapter's
``lab.run("chNN/NAME")`` does, trains every seed (and shot count) of it, or the one chosen
with ``--seed`` and ``--shots``, each into ``OUT/seed-S`` (``OUT/shots-K-seed-S``), and
prints one row per run, with the mean and spread over the seeds. The short form
``python -m clipadapt.reproduce METHOD [--variant V] --profile P [--dataset D]`` runs the
method's default experiment (:func:`clipadapt.experiments.default`: its kind of task as a
spec that says nothing else builds it, its recipe as written; the method at paper scale).

It trains a method of :mod:`clipadapt.methods.registry` with its recipe of
:mod:`clipadapt.training.recipes` on a task built as the chapters build theirs
(:mod:`clipadapt.experiments.build`), with a progress bar, an
evaluation every ``--eval-every`` steps, a metrics log (``OUT/metrics.jsonl``, one JSON
object a line) and run-state checkpoints (``OUT/checkpoints``, :mod:`clipadapt.training.runstate`);
at the end it writes the trained parameters (``OUT/final.safetensors``) and the results
(``OUT/result.json``) and prints the chapter's table beside the paper's numbers.

``--dataset`` chooses the benchmark of a retrieval method (``msrvtt`` by default; ``didemo``,
``activitynet``, ``lsmdc``, ``msvd``: :data:`clipadapt.data.video_sets.BENCHMARKS`), so that
every row of the VoP and TempMe tables is one command, e.g.
``python -m clipadapt.reproduce VoP --variant F --dataset didemo --profile paper``.

* ``--resume`` continues from the newest whole checkpoint: same weights, optimiser,
  schedule, generators and data order, so the run ends exactly as an uninterrupted one;
  a checkpoint of another method, recipe, profile or seed is refused, naming the difference.
* ``--dry-run`` trains nothing for real: it builds the run at full size on the CPU (random
  weights, real-format fixtures), takes two training steps and one evaluation batch, and
  prints the peak memory with the estimate for a 16 GB T4 (:mod:`clipadapt.bench.dryrun`);
  it exits with 1 when the run would not leave 20 % of a T4 free.
* Under ``torchrun --nproc_per_node=N`` the same command trains with DistributedDataParallel:
  each process reads its shard of every global batch (:func:`clipadapt.core.distributed.shard`),
  contrastive losses gather the features of every process, evaluation gathers every
  feature before ranking, and only rank 0 prints and writes.

It trains through the chapters' own path (:mod:`clipadapt.training.driver`: the same
task, recipe, seeds and data order), so a run gives the numbers of the chapter's call with
the same seed; the command adds only the logging, the checkpoints and the table.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

import torch

from . import experiments, profiles
from .bench import dryrun
from .core import distributed, metrics as core_metrics, models
from .core.files import atomic_path
from .data import video_sets
from .methods import registry
from .training import driver, runstate

KILL_ENV = "CLIPADAPT_KILL_AT"  # tests: "save:STEP" (mid-write) or "step:STEP" -> SIGKILL


class ReproduceError(ValueError):
    """A run that cannot start: bad choices, or an output folder that holds another run."""


def _kill_point(event: str, step: int) -> None:
    if os.environ.get(KILL_ENV) == f"{event}:{step}":
        os.kill(os.getpid(), signal.SIGKILL)


def choices(method: str, variant: str | None, profile) -> tuple[registry.MethodSpec, str | None, profiles.Profile]:
    """Check the command's choices; the errors list what there is. A method's name may be
    written in any case, with ``-`` or ``_`` for its spaces (``mean-pooling``). ``profile``: a
    name (resolved here, the command's entry) or a Profile."""
    plain = {n.lower().replace(" ", "-"): n for n in registry.REGISTRY}
    spec = registry.get(plain.get(method.lower().replace(" ", "-").replace("_", "-"), method))
    return spec, spec.variant(variant), profiles.get(profile)


def check_dataset(spec: registry.MethodSpec, prof: profiles.Profile, dataset: str | None) -> None:
    """Refuse a benchmark the method or the profile cannot read, before anything is loaded."""
    if dataset is None:
        return
    if spec.task != "retrieval":
        raise ReproduceError(f"--dataset chooses a retrieval benchmark; {spec.name!r} solves {spec.task}")
    try:
        video_sets.for_dataset(experiments.settings.of(prof).videos, dataset, prof.video_frames)  # its checks
    except ValueError as err:
        raise ReproduceError(f"profile {prof.name!r}: {err}") from err


def workbench(spec: registry.MethodSpec, prof: profiles.Profile, dataset: str | None, device, data_root,
              workdir, settings=None, budgets: dict | None = None) -> experiments.Workbench:
    """The profile's CLIP on ``device`` and the workbench the run's task is built on, reading
    ``dataset`` (a retrieval benchmark; None: the profile's own video sets); ``settings`` and
    ``budgets``: other than the profile's (a smaller world, a smaller batch)."""
    check_dataset(spec, prof, dataset)
    clip, preprocess, tokenizer = models.load_clip(prof.clip_model, prof.clip_pretrained, device=device)
    bench = experiments.Workbench(prof, clip, preprocess, tokenizer, data_root, workdir, settings)
    bench.budgets.update(budgets or {})
    if dataset is not None:
        bench.read_dataset(dataset, spec.long_video_frames)
    return bench


def prepare(method: str, variant: str | None, profile: profiles.Profile, *, seed: int = 0, steps: int | None = None,
            data_root=None, workdir=".", device: str | None = None, amp: bool = True,
            dataset: str | None = None, settings=None, budgets: dict | None = None) -> driver.Run:
    """Load the profile's CLIP and the task of the method's default experiment (joining
    torchrun's group if launched by it) and prepare the run through the driver, as a chapter
    does. ``dataset`` chooses a retrieval benchmark (:func:`clipadapt.data.video_sets.for_dataset`);
    it becomes part of the run's profile name (``paper/didemo``), so that a checkpoint of
    another benchmark is refused. ``settings`` and ``budgets``: other than the profile's."""
    spec, variant, prof = choices(method, variant, profile)
    device = profiles.pick_device(device or prof.device)
    device = distributed.init_from_env(device.type) or device
    bench = workbench(spec, prof, dataset, device, data_root, workdir, settings, budgets)
    default = experiments.default(spec.name, variant).under(prof)
    point = bench.points(default)[-1]  # seed 0 and, for a sweep of shot counts, the largest
    for turn in (0, 1):  # rank 0 writes any synthetic data first; the others then read it
        if (distributed.rank() == 0) == (turn == 0):
            task = bench.task(default, seed, point.get("shots"))
        distributed.barrier()
    recipe = experiments.recipe_of(default, prof, bench.budgets)
    if steps is not None:
        recipe = recipe.replace(steps=steps, epochs=0, min_steps=0)
    run = driver.prepare(spec.name, bench.clip, bench.tokenizer, task, variant=variant, recipe=recipe, profile=prof,
                         seed=seed, amp=amp)
    if dataset not in (None, "msrvtt"):
        run.profile = f"{prof.name}/{dataset}"
    return run


def train_and_evaluate(run: driver.Run, out: str | Path, *, resume: bool = False, eval_every: int | None = None,
                       save_every: int | None = None, keep: int = 2, progress: bool = True,
                       say=print) -> dict:
    """Train ``run`` to its last step, evaluating, logging and checkpointing on the way;
    returns the final results (also written to ``out/result.json``)."""
    out = Path(out)
    try:
        history = driver.fit(run, out, resume=resume, eval_every=eval_every, save_every=save_every, keep=keep,
                             progress=progress, say=say, kill_point=_kill_point)
    except runstate.RunFolderError as err:
        raise ReproduceError(str(err)) from err
    metrics = history.evaluations.get(run.steps) or driver.evaluate(run)
    if not distributed.is_main():
        distributed.barrier()
        return {"metrics": metrics}
    if not run.steps:  # nothing trained: the log holds the one evaluation
        out.mkdir(parents=True, exist_ok=True)
        runstate.rewrite_log(out / "metrics.jsonl", [json.dumps({"step": 0, "eval": metrics})])
    result = driver.write_result(run, out, metrics, history.seconds)
    say(format_table(run, result))
    distributed.barrier()
    return result


def format_table(run: driver.Run, result: dict) -> str:
    """The chapter's columns for this run, and the paper's row under them where it has one."""
    spec = registry.get(run.method)
    rows = [{"run": f"{run.label}, {run.profile} (measured)", **run.task.row(result["metrics"]),
             "trainable": result["trainable"], "M multiply-adds": result["macs"] / 1e6,
             "seconds": result["train_seconds"]}]
    paper = dict(spec.paper.get(run.variant) or {}) if "/" not in str(run.profile) else {}  # MSR-VTT's numbers
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


def list_specs(profile=None) -> str:
    """Every experiment of the book, chapter by chapter: name, method (variant), seeds and,
    under ``profile``, the profiles where it does not run."""
    lines = []
    for chapter in experiments.chapters():
        lines.append(chapter)
        for name in experiments.names(chapter):
            spec = experiments.get(name, profiles.get(profile)) if profile else experiments.get(name)
            what = spec.method + (f" ({spec.variant})" if spec.variant else "")
            note = f"  [not under {spec.profile}: {spec.skip}]" if spec.skip else ""
            lines.append(f"  {name:<40} {what:<28} seeds {','.join(map(str, spec.seeds))}{note}")
    return "\n".join(lines)


def spec_points(spec: experiments.Experiment, bench: experiments.Workbench, seed: int | None = None,
                shots: int | None = None) -> list[dict]:
    """The runs of ``spec`` that the command trains (``seed``/``shots``: only those)."""
    points = bench.points(spec)
    chosen = [p for p in points if (seed is None or p["seed"] == seed) and (shots is None or p.get("shots") == shots)]
    if not chosen:
        raise ReproduceError(f"{spec.name} has no run with" + (f" seed {seed}" if seed is not None else "")
                             + (f" {shots} shots" if shots is not None else "") + "; its runs are "
                             + "; ".join(experiments.point_label(p) for p in points))
    return chosen


def point_folder(point: dict) -> str:
    return "-".join(f"{k}-{point[k]}" for k in sorted(point, reverse=True))


def reproduce_spec(name: str, profile, out: str | Path, *, seed: int | None = None, shots: int | None = None,
                   steps: int | None = None, data_root=None, workdir=None, device: str | None = None, amp: bool = True,
                   dataset: str | None = None, resume: bool = False, eval_every: int | None = None,
                   save_every: int | None = None, progress: bool = True, say=print) -> list[dict]:
    """Train the runs of experiment ``name`` under ``profile`` as the chapter does, each into
    its own folder of ``out``; returns their results (``result.json`` of each)."""
    prof = profiles.get(profile)
    try:
        spec = experiments.get(name, prof)
    except experiments.SpecError as err:
        raise ReproduceError(str(err)) from err
    if spec.skip:
        raise ReproduceError(f"{name} does not run under profile {prof.name!r}: {spec.skip}")
    out = Path(out)
    device = profiles.pick_device(device or prof.device)
    device = distributed.init_from_env(device.type) or device
    bench = workbench(registry.get(spec.method), prof, dataset, device, data_root, workdir or out)
    results = []
    for point in spec_points(spec, bench, seed, shots):
        where = out / point_folder(point)
        if resume and (where / "result.json").is_file():  # this run finished before
            done = json.loads((where / "result.json").read_text())
            if done.get("experiment") != name or done.get("point") != point:
                raise ReproduceError(f"{where} holds the result of {done.get('experiment')} "
                                     f"{done.get('point')}, not of {name} {point}; choose another --out")
            results.append(done)
            continue
        for turn in (0, 1):  # rank 0 writes any synthetic data first; the others then read it
            if (distributed.rank() == 0) == (turn == 0):
                run = experiments.prepare(name, point, bench, amp=amp, steps=steps)
            distributed.barrier()
        if dataset not in (None, "msrvtt"):
            run.profile = f"{prof.name}/{dataset}"
        say(f"{name} ({experiments.point_label(point)}) -> {where}")
        result = train_and_evaluate(run, where, resume=resume, eval_every=eval_every, save_every=save_every,
                                    progress=progress, say=say)
        if distributed.is_main():  # which experiment and run this is, beside the results
            result = {**result, "experiment": name, "point": point}
            with atomic_path(where / "result.json") as tmp:
                tmp.write_text(json.dumps(result, indent=1))
        results.append(result)
    if distributed.is_main():
        say(format_spec_table(spec, results))
    return results


def format_spec_table(spec: experiments.Experiment, results: list[dict]) -> str:
    """One line per run (the task's headline metric), then the mean and spread over seeds."""
    def headline(m: dict) -> tuple[str, float]:
        for key, pick in (("accuracy", lambda v: 100 * v), ("text_to_video", lambda v: v["R@1"]),
                          ("mAP", lambda v: v)):
            if key in m:
                return {"accuracy": "accuracy (%)", "text_to_video": "text-to-video R@1",
                        "mAP": "mAP"}[key], pick(m[key])
        return "metric", float("nan")

    lines = [f"{spec.name}: {spec.label} -- {spec.method}" + (f" ({spec.variant})" if spec.variant else "")]
    groups: dict = {}
    for r in results:
        point = r.get("point", {"seed": r.get("seed")})
        label, value = headline(r["metrics"])
        groups.setdefault(point.get("shots"), []).append(value)
        lines.append(f"  seed {r.get('seed')}: {label} {value:.2f}; trainable {r['trainable']:,}"
                     + (f"; {r['macs'] / 1e6:.1f} M multiply-adds" if r.get("macs") else ""))
    for shots, values in groups.items():
        if len(values) > 1:
            d = core_metrics.paired_difference(values, [0.0] * len(values))
            lines.append(f"  {'' if shots is None else f'{shots} shots, '}mean {d['mean']:.2f} over {d['n']} seeds "
                         f"(sd {d['sd']:.2f}, range {d['min']:.2f} to {d['max']:.2f})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clipadapt.reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("method", nargs="?", help="an experiment chNN/NAME (--list prints them), or a method: "
                        + ", ".join(registry.REGISTRY) + " (spaces may be written -)")
    parser.add_argument("--list", action="store_true", help="print every experiment, chapter by chapter, and exit")
    parser.add_argument("--variant", help="the method's variant (default: its first)")
    parser.add_argument("--profile", help="one of: " + ", ".join(profiles.PROFILES))
    parser.add_argument("--dataset", choices=video_sets.DATASETS,
                        help="the retrieval benchmark (default: msrvtt under colab/paper; tiny is synthetic)")
    parser.add_argument("--out", help="output folder (default: runs/NAME-PROFILE[-DATASET])")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    parser.add_argument("--seed", type=int, help="an experiment: only this seed's run (default: all of them); "
                        "a method: the seed (default 0)")
    parser.add_argument("--shots", type=int, help="an experiment that lists shot counts: only this count's runs")
    parser.add_argument("--steps", type=int, help="override the recipe's budget (a quick look; part of the run's identity)")
    parser.add_argument("--eval-every", type=int, help="steps between evaluations (default: a quarter of the run)")
    parser.add_argument("--save-every", type=int, help="steps between checkpoints (default: a tenth, at most 500)")
    parser.add_argument("--data-root", help="where real datasets live (colab/paper); default $CLIPADAPT_DATA or ./data")
    parser.add_argument("--workdir", help="where synthetic data are written and reused (default: --out)")
    parser.add_argument("--device", help="cpu or cuda (default: the profile's, when there is one)")
    parser.add_argument("--no-amp", action="store_true",
                        help="train in float32 on CUDA too (no autocast; the official fp16 rows in float32)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--dry-run", action="store_true",
                        help="full size on the CPU, two steps and one evaluation batch: peak memory and a T4 estimate")
    args = parser.parse_args(argv)
    if args.list:
        print(list_specs(args.profile))
        return 0
    if not args.method or not args.profile:
        parser.error("name an experiment (chNN/NAME; --list prints them) or a method, and --profile")
    if "/" in args.method:
        return _main_spec(parser, args)
    if args.shots is not None:
        parser.error("--shots chooses among an experiment's shot counts; a method runs the task's own")
    try:
        spec, variant, prof = choices(args.method, args.variant, args.profile)
        check_dataset(spec, prof, args.dataset)  # refuse a bad combination before loading anything
    except ValueError as err:
        parser.error(str(err))
    seed = 0 if args.seed is None else args.seed
    if args.dry_run:
        m = dryrun.measure(spec.name, variant, prof, dataset=args.dataset)
        print(dryrun.format_rows([(prof.name + (f"/{args.dataset}" if args.dataset else ""), m)]))
        return 0 if m.fits else 1
    name = "-".join(x for x in (spec.name, variant, prof.name, args.dataset) if x).replace(" ", "_").replace("+", "")
    out = Path(args.out or Path("runs") / name)
    if not args.resume and not distributed.launched() and runstate.holds_a_run(out):  # early, before any loading
        print(f"error: {out} already holds a run; pass --resume to continue it or choose another --out",
              file=sys.stderr)
        return 2
    def train() -> None:
        run = prepare(spec.name, variant, prof, seed=seed, steps=args.steps, data_root=args.data_root,
                      workdir=args.workdir or out, device=args.device, amp=not args.no_amp, dataset=args.dataset)
        train_and_evaluate(run, out, resume=args.resume, eval_every=args.eval_every, save_every=args.save_every,
                           progress=not args.no_progress)

    return _exit_code(train)


def _exit_code(train) -> int:
    """Run ``train()``: 0, or 2 with the error printed once; the process group closed either way."""
    try:
        train()
    except ReproduceError as err:
        if distributed.is_main():
            print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        if distributed.active():
            torch.distributed.destroy_process_group()
    return 0


def _main_spec(parser: argparse.ArgumentParser, args) -> int:
    """``main`` for an experiment's name."""
    if args.variant:
        parser.error("an experiment names its own variant; --variant is for the METHOD form")
    try:
        prof = profiles.get(args.profile)
        spec = experiments.get(args.method, prof)
        if spec.skip:
            raise ReproduceError(f"{spec.name} does not run under profile {prof.name!r}: {spec.skip}")
        check_dataset(registry.get(spec.method), prof, args.dataset)
    except (ValueError, ReproduceError) as err:
        parser.error(str(err))
    if args.dry_run:
        recipe = experiments.recipe_of(spec, prof)
        m = dryrun.measure(spec.method, spec.variant, prof, dataset=args.dataset, recipe=recipe)
        print(dryrun.format_rows([(prof.name + (f"/{args.dataset}" if args.dataset else ""), m)]))
        return 0 if m.fits else 1
    folder = "-".join(x for x in (spec.name.replace("/", "-"), prof.name, args.dataset) if x)
    out = Path(args.out or Path("runs") / folder)
    if not args.resume and not distributed.launched() and out.is_dir() and any(
            runstate.holds_a_run(p) for p in out.iterdir() if p.is_dir()):
        print(f"error: {out} already holds runs; pass --resume to continue them or choose another --out",
              file=sys.stderr)
        return 2
    return _exit_code(lambda: reproduce_spec(
        spec.name, prof, out, seed=args.seed, shots=args.shots, steps=args.steps, data_root=args.data_root,
        workdir=args.workdir, device=args.device, amp=not args.no_amp, dataset=args.dataset, resume=args.resume,
        eval_every=args.eval_every, save_every=args.save_every, progress=not args.no_progress))


if __name__ == "__main__":
    sys.exit(main())
