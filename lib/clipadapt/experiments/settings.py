"""What the chapters' experiments are made of under a profile, read from ``_settings.toml``.

A profile (:mod:`clipadapt.profiles`) holds what every chapter shares: the CLIP, the device,
the frames. What the chapters' tasks read -- the few-shot data, Part II's video sets, chapter
6's scene world, chapter 7's suite -- and chapter 1's pre-training are written per profile in
``experiments/_settings.toml`` (one table per concern, one entry per profile; ``all`` is merged
under every entry, and a profile built from another, ``colab-smoke``, changes that one's entry
key by key). :func:`of` returns them for a profile, checked: an unknown or missing key is an
error that names the file and the key. The training budgets are recipe values
(:func:`clipadapt.training.recipes.budget`).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import profiles
from ..data.video_sets import VideoSets
from .spec import SpecError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

FILE = Path(__file__).parent / "_settings.toml"


@dataclass(frozen=True)
class Fewshot:
    """Few-shot classification data (chapter 2; chapter 7 reads whether it is synthetic)."""

    dataset: str  # a synthetic task of clipadapt.data.fewshot, or a CoOp-format dataset
    shots: tuple[int, ...]  # the shot counts a chapter sweeps
    test_per_class: int | None  # None: the whole test split


@dataclass(frozen=True)
class Scenes:
    """Chapter 6's scene world: test pictures (its training pictures are a budget)."""

    test: int


@dataclass(frozen=True)
class Suites:
    """Chapter 7's real suite: General-10 folders (empty: all ten), classes kept (None: all)."""

    datasets: tuple[str, ...]
    classes: int | None


@dataclass(frozen=True)
class Pretrain:
    """How chapter 1's tiny CLIP is pre-trained (the fields the shipped weights record)."""

    steps: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup: int
    seed: int
    p_two_objects: float
    pos_embed_scale: float


@dataclass(frozen=True)
class Chapter1:
    """Chapter 1: the pre-training, how far the chapter trains live, and its evaluation."""

    pretrain: Pretrain
    live_steps: int
    eval_images: int
    retrieval_pairs: int


@dataclass(frozen=True)
class Settings:
    profile: str
    fewshot: Fewshot
    videos: VideoSets
    scenes: Scenes
    suites: Suites
    chapter1: Chapter1

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)


def _fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


# each table of the file, and the keys its entries hold
TABLES = {"fewshot": _fields(Fewshot), "videos": _fields(VideoSets), "scenes": _fields(Scenes),
          "suites": _fields(Suites), "pretrain": _fields(Pretrain) | _fields(Chapter1) - {"pretrain"}}


@functools.cache
def _read(path: Path) -> dict:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise SpecError(f"{path}: not readable TOML: {err}") from None
    for table, body in data.items():
        if table not in TABLES or not isinstance(body, dict):
            raise SpecError(f"{path}: {table}: unknown table; the tables are {', '.join(TABLES)}")
        for entry, values in body.items():
            if entry != "all" and entry not in profiles.PROFILES:
                raise SpecError(f"{path}: {table}.{entry}: not a profile ({', '.join(profiles.PROFILES)}) nor all")
            unknown = set(values) - TABLES[table] if isinstance(values, dict) else {"(not a table)"}
            if unknown:
                raise SpecError(f"{path}: {table}.{entry}.{sorted(unknown)[0]}: unknown key; an entry holds "
                                f"{', '.join(sorted(TABLES[table]))}")
    return data


def _entry(data: dict, table: str, p: profiles.Profile, path: Path) -> dict:
    out = profiles.merged(data.get(table, {}), p)
    if out is None:
        raise SpecError(f"{path}: {table}.{p.name}: missing; every profile has an entry")
    missing = TABLES[table] - set(out)
    if missing:
        raise SpecError(f"{path}: {table}.{p.name}.{sorted(missing)[0]}: missing (nor given under all)")
    return out


def of(profile: profiles.Profile, path: Path = FILE) -> Settings:
    """The settings of ``profile`` (resolved by the caller), checked."""
    p = profiles.need(profile)
    data = _read(Path(path))
    few = _entry(data, "fewshot", p, path)
    per_class = few["test_per_class"]
    if per_class != "all" and not (isinstance(per_class, int) and per_class > 0):
        raise SpecError(f"{path}: fewshot.{p.name}.test_per_class: a positive count or \"all\", got {per_class!r}")
    suites = _entry(data, "suites", p, path)
    pre = _entry(data, "pretrain", p, path)
    return Settings(
        profile=p.name,
        fewshot=Fewshot(few["dataset"], tuple(few["shots"]), None if per_class == "all" else per_class),
        videos=VideoSets(**_entry(data, "videos", p, path)),
        scenes=Scenes(**_entry(data, "scenes", p, path)),
        suites=Suites(tuple(suites["datasets"]), suites["classes"] or None),
        chapter1=Chapter1(Pretrain(**{k: pre[k] for k in _fields(Pretrain)}), pre["live_steps"], pre["eval_images"],
                          pre["retrieval_pairs"]),
    )
