"""Multi-task few-shot suites: many related classification tasks, each with a name that
says what it is (SoftCPT, chapter 7).

A :class:`Suite` is a list of ``(task name, few-shot task)`` pairs. Each task is one of
Part I's few-shot tasks (:mod:`clipadapt.data.fewshot`): ``classnames``, a prompt
``template``, nested ``train_set(shots)`` (the k-shot set lies inside the 2k-shot set)
and ``test_set()``. Three kinds:

* :func:`world_suite` -- synthetic tasks drawn by the image world, in a few *domains*:
  the attribute asked for (shape, colour, position). The tasks of a domain differ in what
  the pictures have in common and in which values they tell apart ("red objects: circle,
  square or triangle", "small objects: square, triangle or diamond"), so related tasks get
  related names; each domain draws its pictures in its own style. The class names already
  say what is asked, so the names add little (chapter 7's original setting);
* :func:`label_suite` -- synthetic tasks whose names say what matters: classes named by a
  colour and a shape ("red circle"), labelled by one of them, the same class names in
  both domains, few and often misleading shots; only the task name ("circle, triangle or
  cross") says which half of a class name counts.
* :func:`load_suite` -- real datasets in CoOp's format (split json + image folder, or the
  FGVC-Aircraft variant files), e.g. :data:`GENERAL10`, the ten datasets of SoftCPT's
  General-10 suite (1,191 classes).

:func:`shuffled_names` is the control: the same tasks under each other's names.

Every task also says how its accuracy is measured, as SoftCPT's evaluator does:
``"accuracy"`` (top-1 over the test set) or ``"mean_per_class"`` (the mean of the
per-class accuracies).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.pixels import normalize
from . import fewshot, worlds
from .fetch import download
from .names import prompt_names

METRICS = ("accuracy", "mean_per_class")


@dataclass(frozen=True)
class Suite:
    names: tuple[str, ...]  # what each task is, in words: the meta network reads these
    tasks: tuple  # few-shot tasks (classnames, template, train_set(shots), test_set())
    domains: tuple[str, ...] = ()  # the domain of each task (for figures); may be empty
    metrics: tuple[str, ...] = ()  # "accuracy" or "mean_per_class" per task (default: accuracy)

    def __post_init__(self):
        if not self.tasks or len(self.names) != len(self.tasks):
            raise ValueError(f"a suite needs one name per task, got {len(self.names)} names and "
                             f"{len(self.tasks)} tasks")
        for field_name in ("domains", "metrics"):
            value = getattr(self, field_name)
            if value and len(value) != len(self.tasks):
                raise ValueError(f"{field_name} must give one entry per task ({len(self.tasks)}), got {len(value)}")
        bad = [m for m in self.metrics if m not in METRICS]
        if bad:
            raise ValueError(f"unknown task metrics {bad}; expected one of {METRICS}")

    def __len__(self) -> int:
        return len(self.tasks)

    def metric(self, i: int) -> str:
        return self.metrics[i] if self.metrics else "accuracy"

    @property
    def n_classes(self) -> int:
        return sum(len(t.classnames) for t in self.tasks)

    def subset(self, indices) -> "Suite":
        idx = list(indices)
        pick = lambda xs: tuple(xs[i] for i in idx) if xs else ()  # noqa: E731
        return Suite(pick(self.names), pick(self.tasks), pick(self.domains), pick(self.metrics))


# -- the synthetic world --------------------------------------------------------------------
# what a domain asks and how its pictures are drawn
DOMAINS = {
    "shape": {"fill": "outline", "background": "dark"},
    "colour": {"fill": "outline", "background": "light"},
    "position": {"fill": "outline", "background": "dark"},
}


def _condition_phrase(attribute: str, value: int) -> str:
    word = worlds.VALUES[attribute][value]
    if attribute == "shape":
        return f"{word}s"
    if attribute == "position":
        return f"objects {worlds.POSITION_PHRASES[word]}"
    return f"{word} objects"  # colour, size


def conditions(domain: str) -> list[tuple[str, int]]:
    """The conditions a task of ``domain`` may fix, interleaving the other attributes so
    that the first few differ in kind: (colour, 0), (size, 0), (position, 0), (colour, 1), ..."""
    others = [a for a in ("colour", "shape", "size", "position") if a != domain]
    columns = [[(a, v) for v in range(len(worlds.VALUES[a]))] for a in others]
    longest = max(len(col) for col in columns)
    return [c for row in zip(*[col + [None] * (longest - len(col)) for col in columns]) for c in row if c]


@dataclass(frozen=True)
class WorldTask(fewshot.SyntheticTask):
    """A few-shot task of the world: classify ``attribute`` of pictures that share a
    ``condition`` (an attribute fixed to a value). Training pictures are drawn from
    ``seed``; test pictures from ``test_seed``, the same for every seed."""

    condition: tuple[str, int] | None = None
    values: tuple[int, ...] = ()  # the attribute's values that are the classes (empty: all)
    test_seed: int = 0

    @property
    def classes(self) -> tuple[int, ...]:
        return self.values or tuple(range(len(worlds.VALUES[self.attribute])))

    @property
    def classnames(self) -> list[str]:
        words = [worlds.VALUES[self.attribute][v] for v in self.classes]
        return [worlds.POSITION_PHRASES[w] for w in words] if self.attribute == "position" else words

    def _draw(self, per_class: int, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.world()
        seed = self.test_seed if split == "test" else self.seed
        fixed = dict([self.condition]) if self.condition else {}
        images, labels = [], []
        for c in range(len(self.classnames)):
            g = worlds.generator(seed, "multitask", self.name, split, str(c))
            scenes = w.sample(per_class, g, **{**fixed, self.attribute: self.classes[c]})
            images.append(normalize(w.render(scenes)))
            labels.append(torch.full((per_class,), c, dtype=torch.long))
        return torch.stack(images, 1).flatten(0, 1), torch.stack(labels, 1).flatten(0, 1)


def world_suite(tasks_per_domain: int = 6, domains=tuple(DOMAINS), classes: int | None = None, seed: int = 0,
                image_size: int = 64, pool: int = 16) -> Suite:
    """``tasks_per_domain`` tasks in each of ``domains``. Each task has ``classes`` of its
    attribute's values (None: all of them); task ``k`` of a domain starts ``k`` values
    further on, so related tasks share some classes. A task's name says what its pictures
    share and what it asks, in words the tiny CLIP was pre-trained on (it never saw "shape"
    or "colour"): "red objects: circle, square or triangle"."""
    names, tasks, doms = [], [], []
    for d in domains:
        if d not in DOMAINS:
            raise ValueError(f"unknown domain {d!r}; expected some of {tuple(DOMAINS)}")
        conds = conditions(d)
        if not 1 <= tasks_per_domain <= len(conds):
            raise ValueError(f"the {d} domain has 1 to {len(conds)} tasks, asked for {tasks_per_domain}")
        style = DOMAINS[d]
        template = worlds.ZERO_SHOT_PROMPTS[d][0]
        n_values = len(worlds.VALUES[d])
        if classes is not None and not 2 <= classes <= n_values:
            raise ValueError(f"a {d} task has 2 to {n_values} classes, asked for {classes}")
        for k, (attr, value) in enumerate(conds[:tasks_per_domain]):
            values = () if classes is None else tuple((k + j) % n_values for j in range(classes))
            task = WorldTask(f"{d}|{attr}={value}", attribute=d, fill=style["fill"],
                                   background=style["background"], image_size=image_size, seed=seed, pool=pool,
                             template=template, condition=(attr, value), values=values)
            words = task.classnames
            names.append(f"{_condition_phrase(attr, value)}: {', '.join(words[:-1])} or {words[-1]}")
            tasks.append(task)
            doms.append(d)
    return Suite(tuple(names), tuple(tasks), tuple(doms))


@dataclass(frozen=True)
class LabelTask(fewshot.SyntheticTask):
    """A task whose classes are named by a colour and a shape ("red circle"), while only
    ``attribute`` decides the label: in a shape task a "red circle" is any circle. Its
    test pictures always pair the class's value with *another* class's value of the other
    attribute (a blue circle), so only a prompt that reads the right attribute scores; its
    few training pictures show the class's own pair with probability ``coherent`` (a red
    circle), so that the shots alone often cannot say which attribute the labels mean."""

    pairs: tuple[tuple[int, int], ...] = ()  # (shape, colour) of each class
    coherent: float = 0.75
    test_seed: int = 0

    @property
    def classnames(self) -> list[str]:
        return [f"{worlds.COLOURS[c]} {worlds.SHAPES[s]}" for s, c in self.pairs]

    def scenes(self, c: int, per_class: int, split: str) -> worlds.Scenes:
        """``per_class`` scenes of class ``c``: its value of ``attribute``, and of the other
        attribute another class's value (every test scene) or, in training, its own with
        probability ``coherent``."""
        k, seed = len(self.pairs), self.test_seed if split == "test" else self.seed
        other = "colour" if self.attribute == "shape" else "shape"
        values = {a: torch.tensor([p[i] for p in self.pairs]) for i, a in enumerate(("shape", "colour"))}
        g = worlds.generator(seed, "labels", self.name, split, str(c))
        shift = torch.randint(1, k, (per_class,), generator=g)  # another class's value ...
        if split == "train":  # ... or the class's own
            shift = torch.where(torch.rand(per_class, generator=g) < self.coherent, 0, shift)
        return self.world().sample(per_class, g, **{self.attribute: int(values[self.attribute][c]),
                                                   other: values[other][(c + shift) % k]})

    def _draw(self, per_class: int, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        w, images, labels = self.world(), [], []
        for c in range(len(self.pairs)):
            images.append(normalize(w.render(self.scenes(c, per_class, split))))
            labels.append(torch.full((per_class,), c, dtype=torch.long))
        return torch.stack(images, 1).flatten(0, 1), torch.stack(labels, 1).flatten(0, 1)


def label_suite(tasks_per_domain: int = 4, classes: int = 3, seed: int = 0, coherent: float = 0.75,
                image_size: int = 64, pool: int = 16) -> Suite:
    """Tasks whose *names* say what matters. Every class is named by a colour and a shape;
    in the shape domain the label is the shape, in the colour domain the colour, and task
    ``k`` of both domains has the same class names ("red circle", "orange triangle", ...).
    A task's name lists the values it tells apart, "circle, triangle or cross" or "red,
    orange or yellow": the one place that says which half of a class name counts. The
    pictures are drawn as in pre-training (solid, dark background)."""
    if not 2 <= classes <= 5 or not 1 <= tasks_per_domain <= 5:
        raise ValueError(f"a label suite has 2 to 5 classes and 1 to 5 tasks per domain, asked for "
                         f"{classes} classes and {tasks_per_domain} tasks")
    if not 0.0 <= coherent < 1.0:
        raise ValueError(f"coherent must lie in [0, 1), got {coherent}")
    names, tasks, doms = [], [], []
    for d in ("shape", "colour"):
        for k in range(tasks_per_domain):
            pairs = tuple(((k + 2 * j) % 5, (k + j) % 6) for j in range(classes))
            words = [worlds.SHAPES[s] if d == "shape" else worlds.COLOURS[c] for s, c in pairs]
            names.append(f"{', '.join(words[:-1])} or {words[-1]}")
            tasks.append(LabelTask(f"{d}|{k}", attribute=d, fill="solid", background="dark",
                                   image_size=image_size, seed=seed, pool=pool, pairs=pairs,
                                   coherent=coherent))
            doms.append(d)
    return Suite(tuple(names), tuple(tasks), tuple(doms))


def shuffled_names(suite: Suite, seed: int = 0) -> Suite:
    """The control: the same tasks, each under another task's name (a random derangement;
    the names of the domains are mixed too)."""
    n = len(suite)
    if n < 2:
        raise ValueError("shuffling the names needs at least two tasks")
    g = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(n, generator=g).tolist()
        if all(p != i for i, p in enumerate(perm)):
            break
    return dataclasses.replace(suite, names=tuple(suite.names[p] for p in perm))


# -- real suites in CoOp's formats ------------------------------------------------------------
def _coop(name, split, images, template, source):
    return fewshot.CoOpDataset(name, split, images, template,
                               download=f"{source} and CoOp's {split or 'variant files'} (see CoOp's DATASETS.md)")


@dataclass(frozen=True)
class SuiteEntry:
    task_name: str  # ours: SoftCPT's task-name files are not published
    folder: str  # the dataset's folder under the data root (CoOp's names)
    dataset: fewshot.CoOpDataset
    n_classes: int
    metric: str  # as SoftCPT's evaluator measures the dataset


# SoftCPT's General-10 (class counts from its code; split files and image folders from CoOp)
GENERAL10 = (
    SuiteEntry("generic objects", "caltech-101", _coop(
        "caltech101", "split_zhou_Caltech101.json", "101_ObjectCategories", "a photo of a {}.",
        "101_ObjectCategories from the Caltech-101 site"), 100, "mean_per_class"),
    SuiteEntry("describable textures", "dtd", _coop(
        "dtd", "split_zhou_DescribableTextures.json", "images", "{} texture.", "the DTD images"), 47, "accuracy"),
    SuiteEntry("satellite land use", "eurosat", _coop(
        "eurosat", "split_zhou_EuroSAT.json", "2750", "a centered satellite photo of {}.",
        "the EuroSAT RGB images (2750/)"), 10, "accuracy"),
    SuiteEntry("aircraft models", "fgvc_aircraft", _coop(
        "fgvc_aircraft", "", "images", "a photo of a {}, a type of aircraft.",
        "FGVC-Aircraft's images/ and data/ files (variants.txt, images_variant_*.txt)"), 100, "mean_per_class"),
    SuiteEntry("food dishes", "food-101", _coop(
        "food101", "split_zhou_Food101.json", "images", "a photo of {}, a type of food.", "the Food-101 images"),
        101, "accuracy"),
    SuiteEntry("flower species", "oxford_flowers", _coop(
        "oxford_flowers", "split_zhou_OxfordFlowers.json", "jpg", "a photo of a {}, a type of flower.",
        "the Oxford Flowers jpg/ folder"), 102, "mean_per_class"),
    SuiteEntry("pet breeds", "oxford_pets", _coop(
        "oxford_pets", "split_zhou_OxfordPets.json", "images", "a photo of a {}, a type of pet.",
        "the Oxford-IIIT Pets images"), 37, "mean_per_class"),
    SuiteEntry("car models", "stanford_cars", _coop(
        "stanford_cars", "split_zhou_StanfordCars.json", ".", "a photo of a {}.",
        "the Stanford Cars cars_train/ and cars_test/ folders"), 196, "accuracy"),
    SuiteEntry("scene categories", "sun397", _coop(
        "sun397", "split_zhou_SUN397.json", "SUN397", "a photo of a {}.", "the SUN397 images"), 397, "accuracy"),
    SuiteEntry("human actions", "ucf101", _coop(
        "ucf101", "split_zhou_UCF101.json", "UCF-101-midframes", "a photo of a person doing {}.",
        "CoOp's UCF-101-midframes"), 101, "accuracy"),
)


def _read_variant_files(root: Path, ds: fewshot.CoOpDataset, preprocess, seed: int) -> fewshot.RealTask:
    """FGVC-Aircraft as CoOp reads it: ``variants.txt`` (one class per line) and
    ``images_variant_{train,val,test}.txt`` (``<image id> <class name>`` per line), images
    under ``images/<image id>.jpg``."""
    variants, images = root / "variants.txt", root / ds.image_dir
    if not variants.is_file() or not images.is_dir():
        raise fewshot.DatasetMissingError(f"{ds.name}: expected {variants} and the folder {images}. "
                                          f"Download {ds.download}.{fewshot.fetch_hint(root)}")
    classes = [line.strip() for line in variants.read_text().splitlines() if line.strip()]
    label = {c: i for i, c in enumerate(classes)}
    items = {}
    for split in ("train", "val", "test"):
        path = root / f"images_variant_{split}.txt"
        if not path.is_file():
            raise fewshot.DatasetMissingError(f"{ds.name}: expected {path}. Download {ds.download}."
                                              f"{fewshot.fetch_hint(root)}")
        rows = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            image, _, name = line.strip().partition(" ")
            if name not in label:
                raise ValueError(f"{path}:{n}: class {name!r} is not in {variants}")
            rows.append((images / f"{image}.jpg", label[name], name))
        items[split] = rows
    return fewshot.RealTask(root, ds, items, preprocess, seed)


def first_classes(task: fewshot.RealTask, n: int) -> fewshot.RealTask:
    """``task`` restricted to its first ``n`` classes (labels ``0 .. n-1``)."""
    return dataclasses.replace(task, items={k: [row for row in rows if row[1] < n] for k, rows in task.items.items()})


def load_suite(root: str | Path, entries=GENERAL10, preprocess=None, seed: int = 1, classes: int | None = None) -> Suite:
    """Read each entry's dataset from ``root/<folder>``; missing data raise
    :class:`clipadapt.data.fewshot.DatasetMissingError` naming what to download. ``classes``
    keeps each task's first classes only (checked against the whole dataset first)."""
    root = Path(root)
    tasks = []
    for e in entries:
        folder = root / e.folder
        task = (_read_variant_files(folder, e.dataset, preprocess, seed) if not e.dataset.split_file
                else fewshot.load_coop_dataset(folder, e.dataset, preprocess, seed))
        if len(task.classnames) != e.n_classes:
            raise ValueError(f"{folder}: expected {e.n_classes} classes for {e.task_name!r}, "
                             f"found {len(task.classnames)}")
        tasks.append(first_classes(task, classes) if classes else task)
    return Suite(tuple(prompt_names(e.task_name for e in entries)), tuple(tasks), tuple(e.folder for e in entries),
                 tuple(e.metric for e in entries))


def suite_for(synthetic: bool, datasets: tuple[str, ...] = (), classes: int | None = None, preprocess=None,
              data_root: str | Path | None = None, seed: int = 0) -> Suite:
    """Chapter 7's suite: with ``synthetic`` (a profile whose few-shot data are synthetic) the
    world, 4 tasks in each domain, 3 classes each; otherwise ``datasets`` of General-10 (empty:
    all ten) from the data root, each fetched by :mod:`clipadapt.data.fetch.download` when
    absent, ``classes`` kept of each (None: all)."""
    if synthetic:
        return world_suite(4, classes=3, seed=seed)
    wanted = tuple(datasets)
    unknown = set(wanted) - {e.folder for e in GENERAL10}
    if unknown:
        raise ValueError(f"datasets: {sorted(unknown)} are not General-10 folders; "
                         f"expected some of {[e.folder for e in GENERAL10]}")
    entries = tuple(e for e in GENERAL10 if not wanted or e.folder in wanted)
    root = download.data_root(data_root)
    for e in entries:  # each returns at once when the dataset is there
        download.ensure(e.folder, data_root)
    return load_suite(root, entries, preprocess, seed + 1, classes=classes)
