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
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from .. import viz
from ..core.resident import peak_during
from ..methods import registry
from ..training import budgets, driver, recipes
from ..training.loop import static_output
from . import build
from .store import Store
from .spec import TASK_KEYS, Experiment, SpecError, load_all

_ALL: dict[str, Experiment] | None = None


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


def summary_line(spec: Experiment, results: list[driver.Result], trained: int, seconds: float) -> str:
    """One line for an experiment's runs: how many were trained here, in how long, and the
    range of their steps and last losses (``CoOp: 15 runs, 40-120 steps, last loss
    0.10-1.04, 22 s``)."""
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
    return out


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

    def borrow(self, name: str, shots: int | None = None, progress: bool = False) -> Runs:
        """Another chapter's experiment ``name``, as that chapter ran it (its seeds, budget
        and task), read from the run store where the chapter filed it, else run here. Not
        glued: its records belong to its own chapter's page."""
        return self._runs(name, False, progress, shots, glue=False)

    def _runs(self, name: str, keep: bool, progress: bool, shots: int | None, glue: bool) -> Runs:
        done = self.done.get((name, shots))
        if done is not None and (not keep or all(r.module is not None for r in done.results)):
            return done
        spec = self.spec(name)
        if spec.skip:
            raise SpecError(f"{name} does not run under profile {self.profile.name!r}: {spec.skip}")
        recipe = recipe_of(spec, self.profile, self.bench.budgets)
        points = [p for p in self.bench.points(spec) if shots is None or p.get("shots") == shots]
        if not points:
            raise SpecError(f"{name} has no run with {shots} shots; it runs {self.bench.shot_counts(spec)}")
        # the static book (clipadapt.book) prints one line per experiment, not one per run
        summary = progress and static_output()
        results, trained, start = [], 0, time.perf_counter()
        for point in points:
            r = None if keep or self.store is None else self.store.get(spec, point, recipe, self.bench.data_root)
            if r is None:
                r = self._train(spec, point, recipe, keep, progress and not summary)
                trained += 1
            results.append(r)
            if glue and record_name(name, point) not in self.glued:  # a glue name appears once a page
                self.glued.add(record_name(name, point))
                viz.glue(record_name(name, point), json.dumps(record(spec, point, r.metrics, r.trainable, r.macs,
                                                                     r.steps)))
        if summary:
            print(summary_line(spec, results, trained, time.perf_counter() - start))
        self.done[name, shots] = Runs(spec, points, results)
        return self.done[name, shots]

    def _train(self, spec: Experiment, point: dict, recipe: recipes.Recipe, keep: bool,
               progress: bool) -> driver.Result:
        """One run through the driver, its peak memory measured, filed in the store."""
        task = self.bench.task(spec, point["seed"], point.get("shots"))
        device = next(self.bench.clip.parameters()).device
        r, peak = peak_during(lambda: driver.run(
            spec.method, self.bench.clip, self.bench.tokenizer, task, variant=spec.variant, recipe=recipe,
            profile=self.profile, seed=point["seed"], progress=progress, keep=keep, count_macs=spec.count_macs),
            device)
        r.peak_bytes = peak
        if self.store is not None:
            self.store.put(spec, point, recipe, r, self.bench.data_root)
        return r


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
