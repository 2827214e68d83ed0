"""Recipes: how each method trains under each profile, read from data files.

Every method has one file, ``clipadapt/recipes/<method>.toml`` (``"mean pooling"`` is
``mean-pooling.toml``). It holds the method's official recipe, every value with its
source (a paper's section, or an official repository's file and line), and, per profile,
the row that profile runs, every change with its reason. This module is the one reader of
those files; :func:`get` and :func:`official` return :class:`~clipadapt.training.recipe.Recipe`
rows and :func:`card` prints them side by side.

A file, key by key (``variants = [...]`` puts every section below under ``[<variant>]``)::

    method = "CoOp"            # its name in clipadapt.methods.registry
    backbone = "ViT-B/32"      # the CLIP the paper's numbers come from
    notes = ["..."]            # what the official code does that no field holds (optional)

    [official.lr]              # one table per key of recipe.KEYS, holding that key's fields
    lr = 0.002                 #   (recipe.GROUPS); a field left out keeps Recipe's default
    source = "..."             # where the value is written
    [official.options.n_ctx]   # one table per method setting
    value = 16
    source = "..."

    [tiny.budget]              # the tiny CLIP's row: a recipe of its own, built from Recipe's
    epochs = { budget = "fewshot_epochs" }    # defaults; its reasons are _shared.toml's [tiny]

    [colab.lr]                 # colab and paper: changes to the official row, each with
    lr = 1e-3                  # its reason (written "ours: <reason>" into the row's sources)
    reason = "..."

* ``by_shots = { 1 = { epochs = 50 }, 2 = { epochs = 100 } }``: the budget by the shot count
  (``Recipe.at_shots``); ``by_shots = {}`` in a profile's row: one budget for every count.
* TOML has no null: ``none = ["lr"]`` in a table sets the fields it lists to None (an
  option's table: ``none = ["value"]``). ``[official] source = "..."`` is the source of every
  key that names none of its own (a row that trains nothing).
* A reason may name ``{<text>}`` of ``_shared.toml``'s ``[texts]``, ``{<field>}`` of the profile
  and ``{<budget>}`` (:mod:`~clipadapt.training.budgets`). A value may be a rule: ``{ budget =
  "video_steps" }``, ``{ profile = "clip_model" }``, or ``{ ema_keep =
  0.82, epoch_of = "multilabel_train" }``: the moving-average decay keeping 0.82 after one
  epoch of that many examples at the row's batch (:func:`ema_decay`, SCPNet's rule).
* A profile on a tiny CLIP (``core.models.TINY_MODELS``) reads ``tiny``; ``paper`` and the
  profiles built from it read ``paper``; every other reads ``colab``, its values going through
  the rules (``colab-smoke`` thus keeps colab's rows at its small budgets).

A file that breaks these rules is refused with an error naming the file and the key.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
import string
import sys
import typing
from pathlib import Path
from typing import NamedTuple

from .. import profiles
from ..core.ema import ema_decay
from ..core.models import TINY_MODELS
from ..methods import registry
from . import datacut
from .budgets import BUDGETS, of as budgets_of
from .recipe import (BY_SHOTS, GROUPS, HINTS, KEYS, Recipe, budgets_by_shots, cast, fits, kinds,  # noqa: F401
                     render_card, show)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

FOLDER = Path(__file__).resolve().parents[1] / "recipes"
SHARED = "_shared.toml"
SECTIONS = ("official", "tiny", "colab", "paper")
OURS = "ours: "


class RecipeFileError(ValueError):
    """A recipe file that breaks the rules: its message names the file and the key."""

    def __init__(self, path: Path | str, key: str, problem: str):
        super().__init__(f"{path}: {key}: {problem}")


def _toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise RecipeFileError(path, "(file)", f"not readable TOML: {e}") from None


def slug(method: str) -> str:
    """The file name of ``method``'s recipes, without ``.toml``."""
    return method.lower().replace(" ", "-")


def section_of(profile: profiles.Profile) -> str:
    """The section of a recipe file that ``profile`` reads: ``tiny``, ``colab`` or ``paper``."""
    return "tiny" if profile.clip_model in TINY_MODELS else "paper" if "paper" in profiles.lineage(profile) else "colab"


# -- the rules a value may be -------------------------------------------------------------------
_PROFILE_FIELDS = tuple(f.name for f in dataclasses.fields(profiles.Profile))


def _is_rule(value) -> bool:
    return isinstance(value, dict) and set(value) in ({"profile"}, {"budget"}, {"ema_keep", "epoch_of"})


def _reads(rule: dict) -> tuple[str, str]:
    """What a rule reads: ``("profile", field)`` or ``("budget", name)``."""
    return ("profile", rule["profile"]) if "profile" in rule else ("budget", rule.get("budget", rule.get("epoch_of")))


class Entry(NamedTuple):
    """One table of a section: a key of KEYS (its fields) or ``options.<name>`` (field ``value``)."""

    key: str
    at: str  # where it is written, for errors: "colab.budget", "full.official.options.rank"
    values: dict  # field -> the TOML value (a rule, for profile rows), None for those of ``none``
    note: str | None  # the source (official) or the reason (the other sections)


class RecipeFile:
    """One method's recipe file, checked as it is read; :meth:`official` and :meth:`row`
    build its rows. ``variants`` is ``(None,)`` where one row serves every variant."""

    def __init__(self, path: str | Path, texts: dict[str, str], tiny: dict[str, str]):
        self.path, self.texts, self.tiny = Path(path), texts, tiny
        data = _toml(self.path)
        self.method = self._need(data, "method", str)
        self.backbone = self._need(data, "backbone", str)
        self.notes = data.get("notes", [])
        if not (isinstance(self.notes, list) and all(isinstance(n, str) for n in self.notes)):
            raise RecipeFileError(path, "notes", "expected a list of strings")
        if self.path.stem != slug(self.method):
            raise RecipeFileError(path, "method", f"{self.method!r} belongs in {slug(self.method)}.toml")
        meta = {"method", "backbone", "notes", "variants"}
        variants = data.get("variants", [None])
        if "variants" in data and not (isinstance(variants, list) and variants
                                       and all(isinstance(v, str) for v in variants)):
            raise RecipeFileError(path, "variants", "expected a non-empty list of variant names")
        rows = {None: {k: v for k, v in data.items() if k not in meta}} if "variants" not in data else \
            {v: self._need(data, v, dict) for v in variants}
        allowed = meta | (set(SECTIONS) if "variants" not in data else set(variants))
        for key in data:
            if key not in allowed:
                raise RecipeFileError(path, key, f"unknown key; this file may hold {', '.join(sorted(allowed))}")
        self.entries: dict[tuple[str | None, str], list[Entry]] = {}
        self.default_source: dict[str | None, str | None] = {}  # the official row's source of every key
        for v, row in rows.items():
            where = "" if v is None else f"{v}."
            for key in row:
                if key not in SECTIONS:
                    raise RecipeFileError(path, where + key, f"unknown key; a row holds {', '.join(SECTIONS)}")
            for name in SECTIONS:
                self.entries[v, name] = self._section(where + name, name, self._need(row, name, dict, where))
            self.default_source[v] = row["official"].get("source")

    @property
    def variants(self) -> tuple[str | None, ...]:
        return tuple(self.default_source)

    # -- reading and checking ---------------------------------------------------------------------
    def _need(self, table: dict, key: str, kind: type, where: str = ""):
        if key not in table:
            raise RecipeFileError(self.path, where + key, "missing")
        if not isinstance(table[key], kind):
            raise RecipeFileError(self.path, where + key, f"expected a {kind.__name__}, got {table[key]!r}")
        return table[key]

    def _section(self, where: str, name: str, section: dict) -> list[Entry]:
        note = "source" if name == "official" else "reason"
        entries = []
        for key, table in section.items():
            if key == "source" and name == "official":
                self._need(section, key, str, where + ".")
            elif key == "options":
                for opt, t in self._need(section, key, dict, where + ".").items():
                    entries.append(self._entry(f"options.{opt}", f"{where}.options.{opt}", t, ("value",), note, name))
            elif key in GROUPS:
                entries.append(self._entry(key, f"{where}.{key}", table, GROUPS[key], note, name))
            else:
                raise RecipeFileError(self.path, f"{where}.{key}", f"unknown key; a section holds {', '.join(KEYS)}, "
                                      "options" + (", source" if name == "official" else ""))
        if name == "official" and "source" not in section:
            given = {e.key for e in entries if e.note}
            for key in (*KEYS, *(e.key for e in entries)):
                if key not in given:
                    raise RecipeFileError(self.path, f"{where}.{key}", "an official value without a source")
        return entries

    def _entry(self, key: str, where: str, table, fields: tuple[str, ...], note: str, section: str) -> Entry:
        if not isinstance(table, dict):
            raise RecipeFileError(self.path, where, f"expected a table, got {table!r}")
        nullable = [f for f in fields if f == "value" or type(None) in typing.get_args(HINTS[f])]
        values = {}
        for field, value in table.items():
            at = f"{where}.{field}"
            if field == note:
                if not isinstance(value, str) or not value.strip():
                    raise RecipeFileError(self.path, at, "expected a non-empty string")
                for _, name, _, _ in string.Formatter().parse(value) if note == "reason" else ():
                    if name is not None and name not in self.texts and name not in BUDGETS + _PROFILE_FIELDS:
                        raise RecipeFileError(self.path, at, f"{{{name}}} is neither a text of {SHARED}, a budget "
                                              f"({', '.join(BUDGETS)}) nor a field of profiles.Profile")
            elif field == "none":
                if not (isinstance(value, list) and all(f in nullable for f in value)):
                    raise RecipeFileError(self.path, at, f"expected a list of fields that may be None: {nullable}")
                values.update(dict.fromkeys(value))
            elif field not in fields:
                raise RecipeFileError(self.path, at, f"unknown key; this table holds {', '.join(fields)}, none, {note}")
            elif _is_rule(value):
                if section == "official":
                    raise RecipeFileError(self.path, at, "an official value is a number, not a rule of the profile")
                kind, read = _reads(value)
                if read not in (_PROFILE_FIELDS if kind == "profile" else BUDGETS):
                    raise RecipeFileError(self.path, at, f"the rule reads {read!r}, no " + (
                        "field of profiles.Profile" if kind == "profile" else f"budget ({', '.join(BUDGETS)})"))
                if not all(fits(value[k], (int, float)) for k in ("ema_keep",) if k in value):
                    raise RecipeFileError(self.path, at, f"expected a number in the rule, got {value!r}")
                values[field] = value
            elif field == "by_shots" and not budgets_by_shots(value):
                raise RecipeFileError(self.path, at, "expected a table of shot counts (\"1\", \"2\", ...) to tables of "
                                      f"{', '.join(BY_SHOTS)} given as positive counts, got {value!r}")
            elif field != "value" and not fits(value, kinds(field)):
                raise RecipeFileError(self.path, at, f"expected {HINTS[field]}, got {value!r}")
            else:
                values[field] = value
        if section in ("colab", "paper") and note not in table:
            raise RecipeFileError(self.path, where, "a change without a reason")
        return Entry(key, where, values, table.get(note))

    # -- building rows ----------------------------------------------------------------------------
    def _entries(self, variant: str | None, name: str) -> list[Entry]:
        if variant not in self.default_source:
            raise ValueError(f"no recipe for {self.method!r} variant {variant!r}; variants with recipes: "
                             f"{', '.join(str(v) for v in self.variants)}")
        return self.entries[variant, name]

    def official(self, variant: str | None = None) -> Recipe:
        """The official row: every value with its source."""
        entries = self._entries(variant, "official")
        fields, options = self._values(entries, None, 0)
        keys = (*KEYS, *(f"options.{k}" for k in options))
        sources = {**dict.fromkeys(keys, self.default_source[variant]), **{e.key: e.note for e in entries if e.note}}
        return Recipe(**fields, options=options, sources=sources)

    def row(self, variant: str | None, profile: profiles.Profile, budgets: dict | None = None) -> Recipe:
        """The row ``profile`` runs (the module says which section it reads)."""
        name = section_of(profile)
        entries = self._entries(variant, name)
        budgets = {**budgets_of(profile), **(budgets or {})}
        # a budget the profile leaves unset reads "(unset)" here; a rule reading it is refused below
        words = collections.defaultdict(lambda: "(unset)", {**self.texts, **dataclasses.asdict(profile), **budgets})
        reasons = {e.key: e.note.format_map(words) for e in entries if e.note}
        if name == "tiny":
            base = Recipe(sources={**{k: self.tiny[k] for k in KEYS}, **reasons, **{
                e.key: reasons.get(e.key, self.tiny["options"]) for e in entries if e.key.startswith("options.")}})
        else:
            base = self.official(variant)
            base = base.replace(sources={**base.sources, **{k: OURS + why for k, why in reasons.items()}})
        fields, options = self._values(entries, (profile, budgets), 0)
        row = base.replace(**fields, options={**base.options, **options})
        # the rules that need the finished row (a moving average's decay reads its batch size)
        fields, options = self._values(entries, (profile, budgets), row.batch_size)
        row = row.replace(**fields, options={**row.options, **options})
        official = self.official(variant).options
        for e in entries:  # a setting keeps the official value's type (an int may stand for a float)
            was, now = official.get(e.key[len("options."):]), row.options.get(e.key[len("options."):])
            if e.key.startswith("options.") and None not in (was, now) and not fits(
                    now, (int, float) if isinstance(was, float) else (type(was),)):
                raise RecipeFileError(self.path, e.at, f"expected {type(was).__name__}, as the official {was!r}, "
                                      f"got {now!r}")
        return row

    def _values(self, entries: list[Entry], profile, batch: int) -> tuple[dict, dict]:
        """The fields and options that ``entries`` set, rules evaluated against ``profile``;
        with ``batch`` 0 the rules of the moving-average decay are left out, else only they."""
        fields, options = {}, {}
        for e in entries:
            for field, value in e.values.items():
                if (_is_rule(value) and "ema_keep" in value) != bool(batch):
                    continue
                at = e.at if field == "value" else f"{e.at}.{field}"
                value = self._evaluate(at, value, profile, batch) if _is_rule(value) else value
                if field == "value":
                    options[e.key[len("options."):]] = value
                elif value is None or fits(value, kinds(field)):
                    fields[field] = cast(field, value) if value is not None else None
                else:
                    raise RecipeFileError(self.path, at, f"expected {HINTS[field]}, the rule gives {value!r}")
        return fields, options

    def _evaluate(self, at: str, rule: dict, against: tuple, batch: int):
        """``rule``'s value for ``against`` = (profile, its budgets)."""
        profile, budgets = against
        kind, read = _reads(rule)
        got = getattr(profile, read) if kind == "profile" else budgets.get(read)
        if got is None:
            raise RecipeFileError(self.path, at, f"the rule reads the {kind} {read}, which profile {profile.name!r} "
                                  f"leaves unset ({SHARED}, budgets.{profile.name})")
        if "ema_keep" in rule:
            if not isinstance(got, int) or isinstance(got, bool):
                raise RecipeFileError(self.path, at, f"the budget {read} is no count: {got!r}")
            return ema_decay(math.ceil(got / batch), rule["ema_keep"])
        return got


# -- every file ------------------------------------------------------------------------------------
@functools.cache
def _shared(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The texts reasons name, and the tiny rows' reasons, of the shared file ``path``."""
    data = _toml(path)
    for key in {*data, "texts", "tiny"}:
        if key not in ("texts", "tiny", "budgets") or not isinstance(data.get(key), dict):
            raise RecipeFileError(path, key, "the shared file holds three tables, texts, tiny and budgets")
        if key == "budgets":
            continue
        for k, v in data[key].items():
            if not isinstance(v, str) or not v.strip():
                raise RecipeFileError(path, f"{key}.{k}", "expected a non-empty string")
    missing = [k for k in (*KEYS, "options") if k not in data["tiny"]]
    if missing:
        raise RecipeFileError(path, f"tiny.{missing[0]}", "missing: every tiny row gives this reason")
    return data["texts"], data["tiny"]


def read(path: str | Path, shared: str | Path | None = None) -> RecipeFile:
    """Read and check one recipe file; ``shared``: the file of texts and tiny reasons (default:
    the ``_shared.toml`` beside it, else the package's)."""
    path = Path(path)
    if shared is None:
        shared = path.parent / SHARED if (path.parent / SHARED).exists() else FOLDER / SHARED
    return RecipeFile(path, *_shared(Path(shared)))


@functools.cache
def files(folder: Path = FOLDER) -> dict[str, RecipeFile]:
    """Every method's recipe file in ``folder``, read and checked against the registry, in its order."""
    out = {}
    for path in sorted(folder.glob("*.toml")):
        if path.name == SHARED:
            continue
        f = read(path, folder / SHARED)
        spec = registry.REGISTRY.get(f.method)
        if spec is None:
            raise RecipeFileError(path, "method", f"unknown method {f.method!r}; choose one of "
                                  + ", ".join(registry.REGISTRY))
        for v in f.variants:
            if v is not None and v not in spec.variants:
                raise RecipeFileError(path, v, f"unknown variant of {f.method!r}; choose one of {spec.variants}")
        out[f.method] = f
    order = list(registry.REGISTRY)
    return dict(sorted(out.items(), key=lambda kv: order.index(kv[0])))


def methods() -> tuple[str, ...]:
    """The methods that have a recipe file, in the registry's order."""
    return tuple(files())


def get(method: str, profile: profiles.Profile, variant: str | None = None, budgets: dict | None = None) -> Recipe:
    """The recipe of ``method`` (and ``variant``) under ``profile`` (resolved by the caller:
    :func:`clipadapt.profiles.get`); ``budgets`` changes some of the profile's budgets (a
    benchmark's own epochs: :func:`clipadapt.data.video_sets.for_dataset`)."""
    p = profiles.need(profile)
    if method not in files():
        raise ValueError(f"no recipe for method {method!r}; methods with recipes: {', '.join(files())}")
    f = files()[method]
    if variant in f.variants:
        return f.row(variant, p, budgets)
    if None in f.variants:
        return f.row(None, p, budgets)
    raise ValueError(f"no recipe for {method!r} variant {variant!r}; variants with recipes: "
                     f"{', '.join(str(v) for v in f.variants)}")


def _file(method: str) -> RecipeFile:
    if method not in files():
        raise ValueError(f"no official recipe for {method!r}; methods: {', '.join(files())}")
    return files()[method]


def official(method: str, variant: str | None = None) -> Recipe:
    """The official recipe of ``method`` (``variant``), each value with its source."""
    f = _file(method)
    return f.official(None if variant not in f.variants and None in f.variants else variant)


def card(method: str, profile: profiles.Profile, variant: str | None = None,
         width: int = 80) -> str:
    """The official recipe of ``method`` beside the one ``profile`` runs (under colab, with the
    data it cuts), then each deviation with its reason, the sources of the official values and the notes."""
    p, f = profiles.need(profile), _file(method)
    name = method if variant is None else f"{method} ({variant})"
    return render_card(name, p.name, p.clip_model, official(method, variant), get(method, p, variant),
                       f.backbone, f.notes, width, datacut.line(registry.REGISTRY[method].task, p))
