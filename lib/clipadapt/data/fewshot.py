"""Few-shot classification tasks: synthetic ones made from the image world, and real
datasets in CoOp's split format.

Both kinds give the same thing to a chapter: ``classnames``, a prompt ``template``,
``train_set(shots)`` with exactly ``shots`` examples per class (the smaller sets are
subsets of the larger ones, drawn once from a seed), and ``test_set()``; images come
back as model-ready tensors (CLIP-normalised).

Synthetic tasks shift the picture away from pre-training so that the tiny CLIP does *not*
solve them zero-shot: shapes drawn as outlines, or on light backgrounds.

Real tasks read CoOp's files (Zhou et al.): a JSON split ``split_zhou_<Name>.json`` with
``"train"``, ``"val"`` and ``"test"`` lists of ``[relative image path, label, class name]``,
the paths relative to the dataset's image folder (for EuroSAT: ``eurosat/2750``). A real task's
``classnames`` are the prompt text CoOp's trainers make of the file's names
(:func:`clipadapt.data.names.prompt_name`: ``american_bulldog`` -> ``american bulldog``);
``raw_classnames`` are the names as the file writes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from ..core.pixels import normalize
from . import worlds
from .fetch import download
from .fetch.resources import DATASETS
from .names import prompt_names


@dataclass(frozen=True)
class SyntheticTask:
    """Classify ``attribute`` of one-object pictures drawn in a shifted style."""

    name: str
    attribute: str = "shape"
    fill: str = "outline"
    background: str = "dark"
    image_size: int = 64
    seed: int = 0
    pool: int = 16  # the largest number of shots
    template: str = "a photo of a {}."

    @property
    def classnames(self) -> list[str]:
        return list(worlds.VALUES[self.attribute])

    def world(self) -> worlds.ImageWorld:
        return worlds.ImageWorld(self.image_size, fill=self.fill, background=self.background)

    def _draw(self, per_class: int, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.world()
        images, labels = [], []
        for c in range(len(self.classnames)):
            g = worlds.generator(self.seed, "fewshot", self.name, split, str(c))  # split: "train", "train-2", ...
            scenes = w.sample(per_class, g, **{self.attribute: c})
            images.append(normalize(w.render(scenes)))
            labels.append(torch.full((per_class,), c, dtype=torch.long))
        return torch.stack(images, 1).flatten(0, 1), torch.stack(labels, 1).flatten(0, 1)

    def train_set(self, shots: int, draw: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """``shots`` pictures per class of few-shot draw ``draw`` (a run's seed: each seed
        trains on its own pictures, as CoOp's seeds do); within a draw, the first ``k`` of
        each class for every ``k``."""
        if not 1 <= shots <= self.pool:
            raise ValueError(f"shots must lie in [1, {self.pool}], got {shots}")
        split = "train" if draw == 0 else f"train-{draw}"
        images, labels = self._draw(self.pool, split)  # ordered shot-major: k shots = first k * C
        n = shots * len(self.classnames)
        return images[:n], labels[:n]

    def test_set(self, per_class: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
        return self._draw(per_class, "test")

    def val_set(self, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``per_class`` validation pictures per class, drawn apart from training and test."""
        return self._draw(per_class, "val")


SYNTHETIC_TASKS = {
    "outlines": SyntheticTask("outlines", fill="outline", background="dark"),
    "light": SyntheticTask("light", fill="solid", background="light"),
}


# -- real datasets in CoOp's format ----------------------------------------------------------
class DatasetMissingError(FileNotFoundError):
    pass


@dataclass(frozen=True)
class CoOpDataset:
    """A dataset described by CoOp's split file."""

    name: str
    split_file: str
    image_dir: str
    template: str
    download: str = ""


COOP_DATASETS = {
    "eurosat": CoOpDataset(
        "eurosat", "split_zhou_EuroSAT.json", "2750", "a centered satellite photo of {}.",
        download="the EuroSAT RGB images (EuroSAT.zip, unpacked to eurosat/2750) and CoOp's split_zhou_EuroSAT.json "
                 "(from the CoOp repository's DATASETS.md) into the same eurosat/ folder",
    ),
}


@dataclass
class RealTask:
    root: Path
    dataset: CoOpDataset
    items: dict = field(default_factory=dict)  # split -> list of (path, label, classname)
    preprocess: object = None
    seed: int = 1
    pool: int = 16

    @property
    def template(self) -> str:
        return self.dataset.template

    @property
    def raw_classnames(self) -> list[str]:
        """The class names as the split file writes them, in label order."""
        by_label: dict[int, str] = {}
        for _, label, name in self.items["train"] + self.items["test"]:
            by_label.setdefault(label, name)
        return [by_label[i] for i in range(len(by_label))]

    @property
    def classnames(self) -> list[str]:
        """The class names as prompt text (the official code's renames and spaces)."""
        return prompt_names(self.raw_classnames, self.dataset.name)

    def _load(self, entries) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = [], []
        for path, label, _ in entries:
            try:
                with Image.open(path) as im:
                    images.append(self.preprocess(im.convert("RGB")))
            except (OSError, ValueError) as err:
                raise OSError(f"cannot read image {path}: {err}") from err
            labels.append(label)
        return torch.stack(images), torch.tensor(labels, dtype=torch.long)

    def train_set(self, shots: int, draw: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """``shots`` images per class, CoOp's few-shot draw with seed ``self.seed + draw``
        (a run's seed ``draw`` 0, 1, 2 reads CoOp's seeds 1, 2, 3)."""
        if not 1 <= shots <= self.pool:
            raise ValueError(f"shots must lie in [1, {self.pool}], got {shots}")
        g = torch.Generator().manual_seed(self.seed + draw)
        by_class: dict[int, list] = {}
        for entry in self.items["train"]:
            by_class.setdefault(entry[1], []).append(entry)
        chosen = []
        for label in sorted(by_class):
            entries = by_class[label]
            if len(entries) < shots:
                raise ValueError(f"class {label} ({entries[0][2]}) has only {len(entries)} training images, "
                                 f"fewer than {shots} shots")
            order = torch.randperm(len(entries), generator=g)[: self.pool].tolist()
            chosen.extend(entries[i] for i in order[:shots])
        return self._load(chosen)

    def val_set(self, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``per_class`` pictures per class of the split file's ``"val"`` list, drawn from the
        task's seed (the official probe draws its own per run: lpclip/linear_probe.py:43-51)."""
        g = torch.Generator().manual_seed(self.seed)
        by_class: dict[int, list] = {}
        for entry in self.items["val"]:
            by_class.setdefault(entry[1], []).append(entry)
        chosen = []
        for label in sorted(by_class):
            entries = by_class[label]
            if len(entries) < per_class:
                raise ValueError(f"class {label} ({entries[0][2]}) has only {len(entries)} validation images, "
                                 f"fewer than {per_class}")
            chosen.extend(entries[i] for i in torch.randperm(len(entries), generator=g)[:per_class].tolist())
        return self._load(chosen)

    def test_set(self, per_class: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        entries = self.items["test"]
        if per_class is not None:
            seen: dict[int, int] = {}
            kept = []
            for e in entries:
                if seen.get(e[1], 0) < per_class:
                    kept.append(e)
                    seen[e[1]] = seen.get(e[1], 0) + 1
            entries = kept
        return self._load(entries)


def fetch_hint(root: str | Path) -> str:
    """The command that fetches the dataset in folder ``root`` (named by its folder), if any."""
    name = Path(root).name
    return f" `python -m clipadapt.data.fetch {name}` fetches it." if name in DATASETS else ""


def load_coop_dataset(root: str | Path, name: str | CoOpDataset, preprocess, seed: int = 1) -> RealTask:
    """Read a dataset in CoOp's layout: ``root/<split file>`` and images under
    ``root/<image dir>``. Missing files give an error that says what to download.
    ``name`` is a key of :data:`COOP_DATASETS` or a :class:`CoOpDataset` itself."""
    if isinstance(name, CoOpDataset):
        ds, name = name, name.name
    elif name not in COOP_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(COOP_DATASETS)}")
    else:
        ds = COOP_DATASETS[name]
    root = Path(root)
    split = root / ds.split_file
    images = root / ds.image_dir
    if not split.is_file() or not images.is_dir():
        raise DatasetMissingError(
            f"{name}: expected {split} and the folder {images}. Download {ds.download}.{fetch_hint(root)} "
            f"Without the data, use the 'tiny' profile, which needs nothing from the internet.")
    try:
        raw = json.loads(split.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{split} is not valid JSON ({err})") from err
    items = {}
    for key in ("train", "val", "test"):
        if key not in raw:
            raise ValueError(f"{split} has no {key!r} list; CoOp split files hold 'train', 'val' and 'test'")
        rows = []
        for i, row in enumerate(raw[key]):
            if not (isinstance(row, list) and len(row) == 3 and isinstance(row[1], int)):
                raise ValueError(f"{split}: entry {i} of {key!r} is {row!r}; expected [path, integer label, class name]")
            rows.append((images / row[0], row[1], row[2]))
        items[key] = rows
    return RealTask(root, ds, items, preprocess, seed)


def load_task(dataset: str, preprocess=None, data_root: str | Path | None = None):
    """The few-shot task called ``dataset``: a synthetic one (:data:`SYNTHETIC_TASKS`), or a
    dataset in CoOp's split format, fetched into the data root on first use (see
    :mod:`clipadapt.data.fetch.download`)."""
    if dataset in SYNTHETIC_TASKS:
        return SYNTHETIC_TASKS[dataset]
    if preprocess is None:
        raise ValueError("a real dataset needs the model's preprocess transform")
    root = download.data_root(data_root) / dataset
    if dataset in download.DATASETS:  # at once when the images and the split file are there
        download.ensure(dataset, data_root)
    return load_coop_dataset(root, dataset, preprocess)
