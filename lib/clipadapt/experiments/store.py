"""Finished runs kept on disk, so that a run one chapter made is read, not made again, by
another: chapter 5 shows chapter 4's VoP, chapter 8 maps the runs of chapters 2 to 5.

A run is filed under a key that changes whenever anything the run depends on can change:
the spec as resolved for the profile (method, variant, task, overrides, seeds), the run's
point, the recipe it trains with, the profile, where the data live, and every file of the
library a run can read (its code, recipes, settings and the tiny CLIP's weights: everything
but :data:`NOT_RUN`, the book's and the benchmarks' own tooling). Change any of them and
the stored run is simply not found; nothing is ever read from a run of other code.

What is kept is what :class:`clipadapt.training.driver.Result` carries except the trained
module: metrics, trainable parameters, multiply-adds, steps, seconds, the loss history and
the peak memory. JSON keeps floats exactly (``repr``), so a stored run reads back bit for
bit. Files are written atomically: a run killed mid-write leaves no half a record.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from ..core.files import atomic_path
from ..training import driver, recipes
from ..training.loop import History
from .spec import Experiment

PACKAGE = Path(__file__).resolve().parents[1]
# what no run reads: the benchmarks, the book's build and kernels, the notebooks' display
# helpers and the command line (a run is prepared, trained and evaluated without them)
NOT_RUN = ("bench", "book.py", "kernels.py", "viz.py", "explorer.py", "quoted.py", "quoted_formats.json",
           "citations.py", "reproduce.py")
_CODE: str | None = None


def code_fingerprint(root: Path = PACKAGE) -> str:
    """A hash of every file of the library a run can read (the package's: once per process)."""
    global _CODE
    if root == PACKAGE and _CODE is not None:
        return _CODE
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                       and p.relative_to(root).parts[0] not in NOT_RUN):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    if root == PACKAGE:
        _CODE = h.hexdigest()
    return h.hexdigest()


def key(spec: Experiment, point: dict, recipe: recipes.Recipe, data_root=None) -> str:
    """The name a run is filed under (see the module's docstring)."""
    what = {"spec": repr(spec), "point": sorted(point.items()), "recipe": repr(recipe),
            "data_root": str(data_root), "code": code_fingerprint()}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:32]


def to_json(result: driver.Result) -> dict:
    h = result.history
    return {"method": result.method, "variant": result.variant, "metrics": result.metrics,
            "trainable": result.trainable, "macs": result.macs, "seconds": result.seconds,
            "train_seconds": result.train_seconds, "steps": result.steps, "peak_bytes": result.peak_bytes,
            "history": None if h is None else {"loss": h.loss, "lr": h.lr, "seconds": h.seconds,
                                               "evaluations": {str(k): v for k, v in h.evaluations.items()}}}


def from_json(data: dict, recipe: recipes.Recipe) -> driver.Result:
    h = data["history"]
    history = None if h is None else History(loss=list(h["loss"]), lr=list(h["lr"]), seconds=h["seconds"],
                                            evaluations={int(k): v for k, v in h["evaluations"].items()})
    return driver.Result(data["method"], data["variant"], data["metrics"], data["trainable"], data["macs"],
                         data["seconds"], data["train_seconds"], data["steps"], recipe, history,
                         peak_bytes=data["peak_bytes"])


@dataclasses.dataclass
class Store:
    """Runs filed under ``folder`` (one JSON file per run)."""

    folder: Path

    def path(self, name: str, point: dict, k: str) -> Path:
        where = name.replace("/", "-") + "-" + "-".join(f"{a}{b}" for a, b in sorted(point.items()))
        return Path(self.folder) / f"{where}-{k}.json"

    def get(self, spec: Experiment, point: dict, recipe: recipes.Recipe, data_root=None) -> driver.Result | None:
        path = self.path(spec.name, point, key(spec, point, recipe, data_root))
        if not path.exists():
            return None
        try:
            return from_json(json.loads(path.read_text()), recipe)
        except (OSError, ValueError, KeyError, TypeError):  # unreadable: made again, and filed anew
            return None

    def put(self, spec: Experiment, point: dict, recipe: recipes.Recipe, result: driver.Result,
            data_root=None) -> Path:
        path = self.path(spec.name, point, key(spec, point, recipe, data_root))
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(to_json(result)))
        return path
