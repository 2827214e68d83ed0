"""How an experiment's task is built: one builder per kind of task, from the spec's ``task``
options (:data:`clipadapt.experiments.spec.TASK_KEYS`), the profile's settings (the data the
chapters read: :mod:`clipadapt.experiments.settings`) and the run's seed.

:class:`Workbench` holds what the builders share within one process: the profile, its
settings and budgets, its CLIP, transform and tokenizer, where data live, and a cache of the
data each task is made from (the few-shot task, the video sets, the scene worlds, the suites),
so that a chapter's runs read and encode them once. ``reproduce`` builds a fresh one; a run
does not depend on what else was built before it (the caches hold data and frozen features,
never weights).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from .. import profiles, tasks
from ..data import fewshot, frames, multilabel, multitask, video_sets
from ..methods import scpnet
from ..training import budgets, recipes
from . import settings as settings_of
from .spec import Experiment


class Workbench:
    """The profile's CLIP and data, shared by the experiments of one process."""

    def __init__(self, profile: profiles.Profile, clip, preprocess, tokenizer, data_root=None,
                 workdir: str | Path = ".", settings: settings_of.Settings | None = None):
        self.profile = profiles.need(profile)
        self.settings = settings or settings_of.of(self.profile)
        self.frames = self.profile.video_frames  # frames per video (a benchmark may change them)
        self.budgets: dict[str, int] = {}  # changes to the profile's training budgets
        self.clip, self.preprocess, self.tokenizer = clip, preprocess, tokenizer
        self.data_root, self.workdir = data_root, Path(workdir)
        self.cache: dict[Any, Any] = {}

    def read_dataset(self, name: str, long_frames: int | None = None) -> None:
        """Read retrieval benchmark ``name`` instead of the profile's video sets (``reproduce
        --dataset``), at its frames (``long_frames`` on long videos, where the settings allow)."""
        videos, self.frames = video_sets.for_dataset(self.settings.videos, name, self.frames, long_frames)
        self.settings = self.settings.replace(videos=videos)
        self.cache.pop("videos", None)

    def once(self, key, make: Callable[[], Any]):
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    def task(self, spec: Experiment, seed: int, shots: int | None = None) -> tasks.Task:
        """The task of ``spec``'s run with ``seed`` (and ``shots``, for a list of counts).
        A retrieval task samples frames by the rule of the spec's recipe (its option
        ``frames``, :mod:`clipadapt.data.frames`; ``"segments"`` where it names none)."""
        opts = spec.task
        if opts["kind"] == "retrieval":
            recipe = spec.apply(recipes.get(spec.method, self.profile, spec.variant, self.budgets))
            opts = {**opts, "frames": recipe.options.get("frames", frames.DEFAULT)}
        return BUILDERS[opts["kind"]](self, opts, seed, shots)

    def points(self, spec: Experiment) -> list[dict]:
        """The runs of ``spec``: one per seed, and per shot count where the spec lists several."""
        shots = self.shot_counts(spec)
        return [{"seed": s, **({"shots": k} if k is not None else {})} for k in shots for s in spec.seeds]

    # -- the data the tasks are made from (a chapter shows them through these too) ------------
    def fewshot(self):
        """The profile's few-shot classification task (chapter 2's data)."""
        return self.once("fewshot", lambda: fewshot.load_task(self.settings.fewshot.dataset, self.preprocess,
                                                              self.data_root))

    def videos(self) -> dict:
        """Part II's video-caption sets (:func:`clipadapt.data.video_sets.video_data`),
        synthetic ones written to ``workdir/videos``."""
        return self.once("videos", lambda: video_sets.video_data(
            self.settings.videos, self.frames, self.profile.video_size, self.workdir / "videos", self.data_root))

    def scenes(self, hidden: str = ""):
        """The scene world's training and test sets at the CLIP's input size (chapter 6)."""
        size = self.clip.visual.image_size
        size = size if isinstance(size, int) else size[0]
        sizes = ({**budgets.of(self.profile), **self.budgets}["multilabel_train"], self.settings.scenes.test)
        return self.once(("scenes", hidden), lambda: multilabel.scene_sets(sizes, image_size=size,
                                                                           hidden=hidden or None))

    def shot_counts(self, spec: Experiment) -> list[int | None]:
        if spec.task["kind"] != "classification":
            return [None]
        shots = spec.task["shots"]
        if shots == "data":
            return list(self.settings.fewshot.shots)
        return list(shots) if isinstance(shots, list) else [int(shots)]


def _test_per_class(value, bench: Workbench):
    if value == "data":
        return bench.settings.fewshot.test_per_class
    return None if value == "all" else int(value)


def classification(bench: Workbench, opts: dict, seed: int, shots: int | None) -> tasks.Task:
    data = bench.fewshot()
    per_class = _test_per_class(opts["test_per_class"], bench)
    test = bench.once(("fewshot test", per_class), lambda: data.test_set(per_class))
    return tasks.ClassificationTask(data, shots, test, draw=seed)  # each seed its own few-shot pictures


def retrieval(bench: Workbench, opts: dict, seed: int, shots: int | None) -> tasks.Task:
    if opts["batches"] not in ("twin pairs", "random"):
        raise ValueError(f"task.batches is 'twin pairs' or 'random', got {opts['batches']!r}")
    data = bench.videos()
    partners = data["partners"] if opts["batches"] == "twin pairs" else None
    rule = opts.get("frames", frames.DEFAULT)  # the recipe's frame rule (Workbench.task)
    return tasks.RetrievalTask(data["train"].with_rule(rule), data["test"].with_rule(rule), bench.tokenizer,
                               partners=partners, twins=data["twins"], max_tokens=data["max_tokens"])


def multilabel_task(bench: Workbench, opts: dict, seed: int, shots: int | None) -> tasks.Task:
    hidden = opts["hidden"]
    train, test = bench.scenes(hidden)
    report = None
    if opts["report_hidden"]:
        if not hidden:
            raise ValueError("task.report_hidden needs task.hidden, the shape whose classes are reported")
        report = torch.tensor([n.endswith(hidden) for n in train.classnames])
    # one task per world holds the stored features; each run relabels it (features shared)
    base = bench.once(("scene task", hidden), lambda: tasks.MultiLabelTask(
        train, multilabel.observe(train.targets, 0.1, seed=0), test, report=report))
    task = base.relabel(multilabel.observe(train.targets, opts["labels"], seed=seed))
    prior = opts["prior"]
    if prior == "clip":
        relation = bench.once(("relation", hidden), lambda: scpnet.class_similarities(
            bench.clip, bench.tokenizer, list(train.classnames)))
    elif prior == "shuffled":
        relation = scpnet.shuffled(bench.once(("relation", hidden), lambda: scpnet.class_similarities(
            bench.clip, bench.tokenizer, list(train.classnames))), seed)
    elif prior == "oracle":  # P(j | i) of the full training labels: a ceiling no run can see
        y = train.targets.float()
        relation = (y.t() @ y) / y.sum(0).clamp(min=1)[:, None]
    else:
        raise ValueError(f"task.prior is 'clip', 'shuffled' or 'oracle', got {prior!r}")
    task.context["relation"] = relation
    return task


def _suite(bench: Workbench, opts: dict, seed: int):
    if opts["suite"] == "label":
        suite = bench.once(("label suite", seed), lambda: multitask.label_suite(4, classes=3, seed=seed))
    elif opts["suite"] == "data":
        s = bench.settings
        synthetic = s.fewshot.dataset in fewshot.SYNTHETIC_TASKS
        suite = bench.once(("suite", seed), lambda: multitask.suite_for(
            synthetic, s.suites.datasets, s.suites.classes, bench.preprocess, bench.data_root, seed=seed))
    else:
        raise ValueError(f"task.suite is 'data' or 'label', got {opts['suite']!r}")
    if opts["names"] == "shuffled":
        return multitask.shuffled_names(suite, seed=seed)
    if opts["names"] != "true":
        raise ValueError(f"task.names is 'true' or 'shuffled', got {opts['names']!r}")
    return suite


def multitask_task(bench: Workbench, opts: dict, seed: int, shots: int | None) -> tasks.Task:
    shots, k = bench.settings.fewshot.shots, opts["shots"]
    k = min(shots) if k == "smallest" else max(shots) if k == "largest" else int(k)
    cache = bench.once("multitask cache", dict)  # pictures and frozen features, shared by every run
    return tasks.MultiTaskClassificationTask(_suite(bench, opts, seed), k, _test_per_class(opts["test_per_class"],
                                                                                          bench), cache=cache)


BUILDERS: dict[str, Callable[[Workbench, dict, int, int | None], tasks.Task]] = {
    "classification": classification, "retrieval": retrieval, "multilabel": multilabel_task,
    "multitask": multitask_task}
