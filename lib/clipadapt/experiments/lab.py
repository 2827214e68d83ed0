"""Running named experiments: what a chapter calls (:class:`Lab`) and what ``reproduce`` calls
(:func:`prepare`), both through the same builders, recipes and driver.

A chapter makes one lab after its setup and runs experiments by name::

    lab = experiments.Lab(P, clip, preprocess, tokenizer, data_root=data_root, workdir=".")
    runs = lab.run("ch03/mean-pooling-lora")        # every seed (and shot count) of the spec
    runs.at(seed=0).metrics["text_to_video"]["R@1"]

Each finished run is glued (hidden) into the executed notebook as a JSON record under
``experiment:NAME:POINT`` (:func:`record_name`): its metrics, trainable parameters and
multiply-adds. ``tests/test_book.py`` reads those records from the book's executed
chapters and checks that ``python -m clipadapt.reproduce NAME`` gives the same values, bit
for bit. Each run is also filed in the lab's run store (``workdir/runs``,
:mod:`clipadapt.experiments.store`), and a later chapter reads another chapter's runs from
there with :meth:`Lab.borrow` (chapter 5 chapter 4's VoP; chapter 8's map the runs of
chapters 2 to 5, at their budgets and seeds), running any that are not filed yet.

On the CPU a lab trains an experiment's runs side by side, in forked processes of one
thread each (:func:`workers`: how many), and the chapter prints one line per experiment
instead of each run's progress bar; a run's numbers do not depend on it (the tests compare
the two ways bit for bit, and the book's check compares forked runs with ``reproduce``'s).
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Collection
from dataclasses import dataclass, field

import torch

from .. import viz
from ..core.resident import peak_during
from ..methods import registry
from ..training import budgets, driver, recipes
from ..training.loop import static_output
from . import build
from .store import Store
from .spec import TASK_KEYS, Experiment, SpecError, load_all

_ALL: dict[str, Experiment] | None = None

WORKERS_ENV = "CLIPADAPT_LAB_WORKERS"  # how many runs a lab trains side by side (default: workers())
MAX_WORKERS = 4


def workers(device: torch.device, runs: int) -> int:
    """How many of ``runs`` runs a lab trains side by side, each in a forked process on one
    thread: on the CPU, one per thread torch may use (at most :data:`MAX_WORKERS`), since a
    small model's runs gain more from processes than from threads (measured on the 2-core
    development machine: two one-thread processes did 1.49 times the work of one two-thread
    process) and a run gives the same numbers on one thread as on several; one on a GPU, where
    fork is missing, or where ``CLIPADAPT_LAB_WORKERS`` says so (the tests' workers set 1)."""
    if runs < 2 or device.type != "cpu" or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    told = os.environ.get(WORKERS_ENV)
    if told is not None:
        if not told.strip().isdigit() or int(told) < 1:
            raise ValueError(f"{WORKERS_ENV} must be a whole number of processes, at least 1, got {told!r}")
        n = int(told)
    else:
        n = min(torch.get_num_threads(), MAX_WORKERS)
    return max(1, min(n, runs))


# what forked processes train from, (lab, jobs), set just before the fork (inherited, not pickled)
_FORKED: tuple | None = None


def _train_forked(job: int):
    lab, jobs = _FORKED
    torch.set_num_threads(1)  # one thread each (and OpenMP's pool is not used after the fork)
    spec, point, recipe, keep = jobs[job]
    r = lab._fit(spec, point, recipe, keep, progress=False)
    state = None if r.module is None else r.module.state_dict()
    r.module = None  # modules go back as their weights (LoRA's parametrisations do not pickle)
    return r, state


def all_specs() -> dict[str, Experiment]:
    """Every chapter's experiments, by name (read once)."""
    global _ALL
    if _ALL is None:
        _ALL = load_all()
    return _ALL


def get(name: str, profile=None) -> Experiment:
    """The experiment ``name`` (``chNN/NAME``), resolved for ``profile`` when one is given."""
    specs = all_specs()
    if name not in specs:
        chapter = name.split("/")[0]
        near = [n for n in specs if n.startswith(chapter + "/")]
        raise SpecError(f"no experiment {name!r}; " + (f"{chapter} has: {', '.join(near)}" if near else
                                                        f"chapters with experiments: {', '.join(chapters())}"))
    spec = specs[name]
    return spec.under(profile) if profile is not None else spec


def default(method: str, variant: str | None = None) -> Experiment:
    """The experiment ``reproduce METHOD`` runs: ``method`` (``variant``) on its kind of task as
    a spec that says nothing else builds it (the defaults of :data:`TASK_KEYS`), seed 0, its
    recipe as the recipe file writes it."""
    m = registry.get(method)
    v = m.variant(variant)
    slug = m.name.lower().replace(" ", "-") + (f"-{v}" if v else "")
    return Experiment(name=f"method/{slug}", method=m.name, variant=v, label=m.name + (f" ({v})" if v else ""),
                      seeds=(0,), task={"kind": m.task, **TASK_KEYS[m.task]})


def chapters() -> list[str]:
    return list(dict.fromkeys(n.split("/")[0] for n in all_specs()))


def names(chapter: str | None = None) -> list[str]:
    return [n for n in all_specs() if chapter is None or n.startswith(chapter + "/")]


def point_label(point: dict) -> str:
    """``seed=0`` or ``shots=16,seed=0``."""
    return ",".join(f"{k}={point[k]}" for k in sorted(point, reverse=True))


def record_name(name: str, point: dict) -> str:
    return f"experiment:{name}:{point_label(point)}"


def recipe_of(spec: Experiment, profile, budgets: dict | None = None) -> recipes.Recipe:
    """The recipe ``spec`` trains with under ``profile``: the method's (at the profile's budgets,
    ``budgets`` changing some), with the spec's overrides."""
    return spec.apply(recipes.get(spec.method, profile, spec.variant, budgets))


def record(spec: Experiment, point: dict, metrics: dict, trainable: int, macs: int | None, steps: int) -> dict:
    """What a run leaves for the comparison with ``reproduce`` (JSON; NaN kept)."""
    out = {"name": spec.name, "point": point, "metrics": metrics, "trainable": trainable, "steps": steps}
    if spec.count_macs:
        out["macs"] = macs
    return out


def summary_line(spec: Experiment, results: list[driver.Result], trained: int, seconds: float,
                 at_a_time: int = 1) -> str:
    """One line for an experiment's runs: how many were trained here, their seconds (added
    up; ``at_a_time`` of them ran side by side), and the range of their steps and last
    losses (``CoOp: 15 runs, 40-120 steps, last loss 0.10-1.04, 22 s``)."""
    def span(values, fmt):
        lo, hi = min(values), max(values)
        return format(lo, fmt) if lo == hi else f"{format(lo, fmt)}-{format(hi, fmt)}"

    n = len(results)
    out = f"{spec.label}: {n} run{'s' if n != 1 else ''}"
    steps = [r.steps for r in results]
    if any(steps):
        out += f", {span(steps, 'd')} steps"
    losses = [r.history.loss[-1] for r in results if r.history is not None and r.history.loss]
    if losses:
        out += f", last loss {span(losses, '.3f')}"
    out += f", {seconds:.0f} s" if trained == n else f" ({n - trained} read from the run store), {seconds:.0f} s"
    return out + (f" ({at_a_time} at a time)" if at_a_time > 1 and trained > 1 else "")


@dataclass
class Runs:
    """The runs of one experiment: ``results[i]`` is the run at ``points[i]``."""

    spec: Experiment
    points: list[dict]
    results: list[driver.Result] = field(repr=False)

    def at(self, seed: int | None = None, shots: int | None = None) -> driver.Result:
        """The run with ``seed`` (default: the spec's first) and ``shots`` (default: the largest)."""
        seed = self.spec.seeds[0] if seed is None else seed
        if shots is None and "shots" in self.points[0]:
            shots = max(p["shots"] for p in self.points)
        for p, r in zip(self.points, self.results):
            if p["seed"] == seed and p.get("shots") == shots:
                return r
        raise KeyError(f"{self.spec.name} has no run with seed {seed}" + (f", {shots} shots" if shots else ""))

    def by_seed(self, shots: int | None = None) -> dict[int, driver.Result]:
        return {s: self.at(s, shots) for s in self.spec.seeds}

    def values(self, get, shots: int | None = None) -> list[float]:
        """``get(result)`` of every seed's run, in the spec's seed order (pairs with another
        experiment's values on the same seeds)."""
        return [get(r) for r in self.by_seed(shots).values()]

    def metric(self, *path: str, shots: int | None = None, scale: float = 1.0) -> list[float]:
        """The metric at ``path`` of every seed's run, times ``scale``, in the spec's seed order
        (``runs.metric("text_to_video", "R@1")``; ``runs.metric("reversal", scale=100)``);
        NaN where a run has none (a reversal test on data without reversal twins)."""
        def get(result: driver.Result) -> float:
            value = result.metrics
            for key in path:
                if not isinstance(value, dict) or key not in value:
                    return float("nan")
                value = value[key]
            return scale * value

        return self.values(get, shots)

    @property
    def label(self) -> str:
        return self.spec.label


class Lab:
    """A chapter's experiments under one profile (see the module's docstring)."""

    def __init__(self, profile, clip, preprocess, tokenizer, data_root=None, workdir=".", glue: bool = True,
                 store: bool = True):
        self.bench = build.Workbench(profile, clip, preprocess, tokenizer, data_root, workdir)
        self.profile = self.bench.profile
        self.settings = self.bench.settings  # the data the chapters read (experiments/_settings.toml)
        self.glue = glue
        self.store = Store(self.bench.workdir / "runs") if store else None  # finished runs, by key
        self.done: dict[tuple[str, int | None], Runs] = {}
        # trained by run_many and not yet asked for: (name, point label) -> (result, runs at a time)
        self._fresh: dict[tuple[str, str], tuple[driver.Result, int]] = {}
        self.glued: set[str] = set()

    def spec(self, name: str) -> Experiment:
        return get(name, self.profile)

    @property
    def budgets(self) -> dict[str, int]:
        """The profile's training budgets (:mod:`clipadapt.training.budgets`), as the runs read them."""
        return {**budgets.of(self.profile), **self.bench.budgets}

    # the data the experiments are made from, for a chapter to show (read once)
    def fewshot(self):
        return self.bench.fewshot()

    def videos(self) -> dict:
        return self.bench.videos()

    def scenes(self, hidden: str = ""):
        return self.bench.scenes(hidden)

    def task(self, name: str, seed: int | None = None, shots: int | None = None):
        """The task experiment ``name`` trains on (its first seed unless told)."""
        spec = self.spec(name)
        return self.bench.task(spec, spec.seeds[0] if seed is None else seed, shots)

    def recipe(self, name: str) -> recipes.Recipe:
        spec = self.spec(name)
        return recipe_of(spec, self.profile, self.bench.budgets)

    def runs(self, name: str) -> bool:
        """Whether ``name`` runs under this lab's profile."""
        return not self.spec(name).skip

    def run(self, name: str, keep: bool = False, progress: bool = False, shots: int | None = None) -> Runs:
        """Every run of experiment ``name`` (each seed; each shot count where it lists
        several, or only ``shots``); ``keep`` keeps the trained modules. An experiment runs
        once per lab; a run already in the store is read from it (unless ``keep``)."""
        return self._runs(name, keep, progress, shots, glue=self.glue)

    def run_many(self, names: list[str], keep: bool | Collection[str] = False, progress: bool = False) -> list[Runs]:
        """:meth:`run` of each experiment of ``names``, with the runs of all of them trained
        side by side at once where the lab trains side by side (so that no process waits at
        an experiment's last run). ``keep``: True, or the names whose modules to keep."""
        kept = {n: keep is True or (keep is not False and n in keep) for n in names}
        jobs, where = [], []
        for name in names:
            if self._finished(name, None, kept[name]) is not None:
                continue
            spec, recipe, points = self._plan(name, None)
            for point in points:
                if kept[name] or self.store is None or self.store.get(spec, point, recipe,
                                                                      self.bench.data_root) is None:
                    jobs.append((spec, point, recipe, kept[name]))
                    where.append((name, point_label(point)))
        n = workers(next(self.bench.clip.parameters()).device, len(jobs))
        if n > 1:
            self._fresh.update(zip(where, ((r, n) for r in self._train_side_by_side(jobs, n))))
        return [self._runs(name, kept[name], progress, None, glue=self.glue) for name in names]

    def borrow(self, name: str, shots: int | None = None, progress: bool = False) -> Runs:
        """Another chapter's experiment ``name``, as that chapter ran it (its seeds, budget
        and task), read from the run store where the chapter filed it, else run here. Not
        glued: its records belong to its own chapter's page."""
        return self._runs(name, False, progress, shots, glue=False)

    def _finished(self, name: str, shots: int | None, keep: bool) -> Runs | None:
        """This lab's runs of ``name`` where they answer the call (with modules if ``keep``)."""
        done = self.done.get((name, shots))
        return done if done is not None and (not keep or all(r.module is not None for r in done.results)) else None

    def _plan(self, name: str, shots: int | None) -> tuple[Experiment, recipes.Recipe, list[dict]]:
        spec = self.spec(name)
        if spec.skip:
            raise SpecError(f"{name} does not run under profile {self.profile.name!r}: {spec.skip}")
        recipe = recipe_of(spec, self.profile, self.bench.budgets)
        points = [p for p in self.bench.points(spec) if shots is None or p.get("shots") == shots]
        if not points:
            raise SpecError(f"{name} has no run with {shots} shots; it runs {self.bench.shot_counts(spec)}")
        return spec, recipe, points

    def _runs(self, name: str, keep: bool, progress: bool, shots: int | None, glue: bool) -> Runs:
        done = self._finished(name, shots, keep)
        if done is not None:
            return done
        spec, recipe, points = self._plan(name, shots)
        # the static book (clipadapt.book) prints one line per experiment, not one per run
        summary = progress and static_output()
        fresh = [self._fresh.pop((name, point_label(p)), (None, 1)) for p in points]  # trained by run_many
        at_a_time = max(k for _, k in fresh)
        fresh = [r for r, _ in fresh]
        results = [r if r is not None or keep or self.store is None
                   else self.store.get(spec, point, recipe, self.bench.data_root) for point, r in zip(points, fresh)]
        todo = [i for i, r in enumerate(results) if r is None]
        n = workers(next(self.bench.clip.parameters()).device, len(todo))
        if n > 1:  # side by side, each run on one thread: no progress bars (they would interleave)
            trained = self._train_side_by_side([(spec, points[i], recipe, keep) for i in todo], n)
        else:
            trained = [self._train(spec, points[i], recipe, keep, progress and not summary) for i in todo]
        for i, r in zip(todo, trained):
            results[i] = r
        for point, r in zip(points, results):
            if glue and record_name(name, point) not in self.glued:  # a glue name appears once a page
                self.glued.add(record_name(name, point))
                viz.glue(record_name(name, point), json.dumps(record(spec, point, r.metrics, r.trainable, r.macs,
                                                                     r.steps)))
        mine = [f for f in fresh if f is not None] + trained  # trained for this call
        side_by_side = n > 1 or len(mine) > len(trained)  # (a live kernel then shows no bars either)
        if progress and (summary or side_by_side):
            print(summary_line(spec, results, len(mine), sum(r.seconds for r in mine), max(n, at_a_time)))
        self.done[name, shots] = Runs(spec, points, results)
        return self.done[name, shots]

    def _fit(self, spec: Experiment, point: dict, recipe: recipes.Recipe, keep: bool,
             progress: bool) -> driver.Result:
        """One run through the driver, its peak memory measured."""
        task = self.bench.task(spec, point["seed"], point.get("shots"))
        device = next(self.bench.clip.parameters()).device
        r, peak = peak_during(lambda: driver.run(
            spec.method, self.bench.clip, self.bench.tokenizer, task, variant=spec.variant, recipe=recipe,
            profile=self.profile, seed=point["seed"], progress=progress, keep=keep, count_macs=spec.count_macs),
            device)
        r.peak_bytes = peak
        return r

    def _file(self, spec: Experiment, point: dict, recipe: recipes.Recipe, r: driver.Result) -> None:
        if self.store is not None:
            self.store.put(spec, point, recipe, r, self.bench.data_root)

    def _train(self, spec: Experiment, point: dict, recipe: recipes.Recipe, keep: bool,
               progress: bool) -> driver.Result:
        """One run here, filed in the store."""
        r = self._fit(spec, point, recipe, keep, progress)
        self._file(spec, point, recipe, r)
        return r

    def _train_side_by_side(self, jobs: list[tuple[Experiment, dict, recipes.Recipe, bool]],
                            n: int) -> list[driver.Result]:
        """The runs of ``jobs`` (spec, point, recipe, keep) in ``n`` forked processes, in order, each
        filed in the store; a kept module is built here again (:func:`driver.prepare`, as the
        run started) and given the trained weights."""
        global _FORKED
        for spec, point, _, _ in jobs:  # the data first, here, so that every process inherits it read
            self.bench.task(spec, point["seed"], point.get("shots")).warm()
        _FORKED = (self, jobs)
        try:
            with multiprocessing.get_context("fork").Pool(n) as pool:
                out = pool.map(_train_forked, range(len(jobs)), chunksize=1)
        finally:
            _FORKED = None
        results = []
        for (spec, point, recipe, _), (r, state) in zip(jobs, out):
            if state is not None:
                task = self.bench.task(spec, point["seed"], point.get("shots"))
                run = driver.prepare(spec.method, self.bench.clip, self.bench.tokenizer, task, variant=spec.variant,
                                     recipe=recipe, profile=self.profile, seed=point["seed"])
                run.module.load_state_dict(state)
                r.module = run.module.eval()
            self._file(spec, point, recipe, r)
            results.append(r)
        return results


def prepare(name: str, point: dict, bench: build.Workbench, amp: bool = True,
            steps: int | None = None) -> driver.Run:
    """The run of experiment ``name`` at ``point`` (``{"seed": s}``, with ``"shots"`` where
    the spec lists shot counts), prepared through the driver exactly as :meth:`Lab.run`
    trains it; ``steps`` cuts the budget (a quick look)."""
    spec = get(name, bench.profile)
    if spec.skip:
        raise SpecError(f"{name} does not run under profile {bench.profile.name!r}: {spec.skip}")
    recipe = recipe_of(spec, bench.profile, bench.budgets)
    if steps is not None:
        recipe = recipe.replace(steps=steps, epochs=0, min_steps=0)
    task = bench.task(spec, point["seed"], point.get("shots"))
    return driver.prepare(spec.method, bench.clip, bench.tokenizer, task, variant=spec.variant, recipe=recipe,
                          profile=bench.profile, seed=point["seed"], amp=amp)
