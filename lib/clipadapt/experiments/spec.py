"""Experiments as data: every run a chapter shows is a named spec in ``experiments/chNN.toml``.

A chapter's file holds its experiments, each a table under ``[experiments.NAME]``::

    [experiments.mean-pooling-lora]
    method = "mean pooling"          # a name of clipadapt.methods.registry
    variant = "lora"                 # one of the method's variants (omit: its default)
    label = "LoRA r=8"               # what the chapter's tables call it
    seeds = [0]                      # one run per seed (paired comparisons share them)
    task = { kind = "retrieval", batches = "twin pairs" }   # how the task is built
    recipe."options.rank" = { value = 8, why = "..." }      # overrides, each with its reason
    profiles.colab-smoke = { seeds = [0], why = "..." }     # what a profile changes, and why

``[defaults]`` is merged under every experiment of the file (tables key by key). The name
of an experiment is ``chNN/NAME`` (``ch03/mean-pooling-lora``). :func:`load_file` refuses a
bad file with an error that names the file and the key: an unknown key, method, variant,
task option or profile, an override or a profile change without a reason.

:meth:`Experiment.under` resolves a spec for one profile: the profile's changes applied
(``colab-smoke`` takes ``colab``'s changes first, as its profile is colab's at CI scale).
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .. import profiles
from ..methods import registry
from ..training.recipe import Recipe

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

FOLDER = Path(__file__).parent

# what each kind of task may be told (clipadapt.experiments.build reads them), with the
# value it takes when the spec is silent: "data" means "as the profile's settings say"
# (experiments/_settings.toml: the shots, test pictures and suite every chapter reads)
TASK_KEYS: dict[str, dict[str, Any]] = {
    # few-shot classification (Part I): shots per class (a number, or a list: one run per
    # count), test pictures per class ("data": the settings'; "all": the whole split)
    "classification": {"shots": "data", "test_per_class": "data"},
    # text-video retrieval (Part II): "twin pairs" draws each video with its reversal twin
    # where the data has twins; "random" draws single pairs
    "retrieval": {"batches": "twin pairs"},
    # multi-label scenes (chapter 6): the hidden shape, the labels kept ("single" or a
    # proportion, drawn with the run's seed), the prior ("clip": CLIP's cosines; "shuffled":
    # them permuted with the run's seed; "oracle": the training labels' true co-occurrence)
    # and whether the AP of the hidden shape's classes is reported
    "multilabel": {"hidden": "", "labels": 0.1, "prior": "clip", "report_hidden": False},
    # many few-shot tasks (chapter 7): the suite ("data": the settings'; "label": the
    # label world, drawn with the run's seed), its task names ("true" or "shuffled" with
    # the run's seed), shots ("smallest", "largest" of the profile's, or a number), test
    # pictures per class
    "multitask": {"suite": "data", "names": "true", "shots": "largest", "test_per_class": "data"},
}
EXPERIMENT_KEYS = {"method", "variant", "label", "about", "seeds", "task", "recipe", "profiles", "count_macs"}
PROFILE_KEYS = {"why", "skip", "seeds", "task", "recipe"}
RECIPE_FIELDS = {f.name for f in dataclasses.fields(Recipe)} - {"sources", "options"}


class SpecError(ValueError):
    """A spec file that cannot be read as experiments: the message names the file and key."""


@dataclass(frozen=True)
class Override:
    """One change of a recipe: ``key`` is a field of :class:`Recipe` or ``options.NAME``."""

    key: str
    value: Any
    why: str


@dataclass(frozen=True)
class Experiment:
    name: str  # "ch03/mean-pooling-lora"
    method: str
    variant: str | None
    label: str
    seeds: tuple[int, ...]
    task: Mapping[str, Any]  # kind and its options (TASK_KEYS), defaults filled in
    recipe: tuple[Override, ...] = ()
    count_macs: bool = True
    about: str = ""
    profiles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # as written, checked
    profile: str | None = None  # the profile resolved for (None: not yet)
    skip: str = ""  # why it does not run under ``profile`` ("" : it runs)

    @property
    def chapter(self) -> str:
        return self.name.split("/")[0]

    def under(self, profile: profiles.Profile) -> "Experiment":
        """This spec as it runs under ``profile`` (resolved by the caller)."""
        prof = profiles.need(profile)
        p, spec = prof.name, self
        for name in profiles.lineage(prof):
            change = self.profiles.get(name) if name else None
            if not change:
                continue
            if change.get("skip"):
                return dataclasses.replace(spec, profile=p, skip=change["why"])
            recipe = {o.key: o for o in spec.recipe}
            recipe.update({o.key: o for o in _overrides(change.get("recipe", {}), "", "")})
            spec = dataclasses.replace(spec, seeds=tuple(change.get("seeds", spec.seeds)),
                                       task={**spec.task, **change.get("task", {})}, recipe=tuple(recipe.values()))
        return dataclasses.replace(spec, profile=p)

    def apply(self, recipe: Recipe) -> Recipe:
        """``recipe`` with this spec's overrides, each reason on the recipe's card."""
        changes, options, reasons = {}, dict(recipe.options), {}
        for o in self.recipe:
            if o.key.startswith("options."):
                options[o.key[len("options."):]] = o.value
            else:
                changes[o.key] = o.value
            reasons[_card_key(o.key)] = f"{self.name}: {o.why}"
        if "steps" in changes:  # a fixed budget replaces an epoch count
            changes.setdefault("epochs", 0)
            changes.setdefault("min_steps", 0)
        if options != dict(recipe.options):
            changes["options"] = options
        return recipe.deviate(reasons, **changes) if changes else recipe


def _card_key(key: str) -> str:
    """The recipe card's row for a recipe field (``steps`` and ``epochs`` are the budget)."""
    if key in ("steps", "epochs", "min_steps", "full_batch"):
        return "budget"
    if key in ("optimizer_kwargs", "decay_rule"):
        return "optimizer"
    if key in ("warmup_kind", "warmup_lr", "warmup_fraction"):
        return "warmup"
    if key in ("min_lr", "cosine_span", "pct_start", "schedule_length", "schedule_unit"):
        return "schedule"
    if key == "cache_features":
        return "augment"
    return key


def _overrides(table: Mapping, path: str, where: str) -> list[Override]:
    out = []
    for key, entry in table.items():
        if not (key.startswith("options.") or key in RECIPE_FIELDS):
            raise SpecError(f"{where}: {path}recipe.{key}: not a recipe field; the fields are "
                            f"{', '.join(sorted(RECIPE_FIELDS))} and options.NAME")
        if not isinstance(entry, Mapping) or set(entry) != {"value", "why"} or not str(entry["why"]).strip():
            raise SpecError(f"{where}: {path}recipe.{key}: an override is {{ value = ..., why = \"...\" }} "
                            f"with its reason; got {entry!r}")
        out.append(Override(key, entry["value"], str(entry["why"])))
    return out


def _merge(base: Mapping, top: Mapping) -> dict:
    """``top`` over ``base``, tables merged key by key."""
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def _check_task(task: Mapping, kind: str, path: str, where: str) -> None:
    unknown = set(task) - set(TASK_KEYS[kind]) - {"kind"}
    if unknown:
        raise SpecError(f"{where}: {path}task.{sorted(unknown)[0]}: not an option of a {kind} task; "
                        f"the options are {', '.join(TASK_KEYS[kind])}")


def _seeds(value, path: str, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(s, int) for s in value):
        raise SpecError(f"{where}: {path}seeds: a non-empty list of integers, got {value!r}")
    return tuple(value)


def experiment(chapter: str, name: str, body: Mapping, where: str) -> Experiment:
    """One experiment of a file, checked (see the module's docstring)."""
    path = f"experiments.{name}."
    unknown = set(body) - EXPERIMENT_KEYS
    if unknown:
        raise SpecError(f"{where}: {path}{sorted(unknown)[0]}: unknown key; an experiment has "
                        f"{', '.join(sorted(EXPERIMENT_KEYS))}")
    if "method" not in body:
        raise SpecError(f"{where}: {path}method: missing")
    try:
        spec = registry.get(body["method"])
    except ValueError as err:
        raise SpecError(f"{where}: {path}method: {err}") from None
    try:
        variant = spec.variant(body.get("variant"))
    except ValueError as err:
        raise SpecError(f"{where}: {path}variant: {err}") from None
    task = dict(body.get("task", {}))
    kind = task.get("kind", spec.task)
    if kind != spec.task:
        raise SpecError(f"{where}: {path}task.kind: {body['method']!r} solves {spec.task}, not {kind}")
    _check_task(task, kind, path, where)
    task = {**TASK_KEYS[kind], **task, "kind": kind}
    recipe = tuple(_overrides(body.get("recipe", {}), path, where))
    changes = body.get("profiles", {})
    for prof, change in changes.items():
        ppath = f"{path}profiles.{prof}."
        if prof not in profiles.PROFILES:
            raise SpecError(f"{where}: {ppath[:-1]}: unknown profile; profiles are {', '.join(profiles.PROFILES)}")
        if not isinstance(change, Mapping) or set(change) - PROFILE_KEYS:
            bad = sorted(set(change) - PROFILE_KEYS)[0] if isinstance(change, Mapping) else "(table)"
            raise SpecError(f"{where}: {ppath}{bad}: a profile change has {', '.join(sorted(PROFILE_KEYS))}")
        if not str(change.get("why", "")).strip():
            raise SpecError(f"{where}: {ppath}why: every profile change says why")
        if "seeds" in change:
            _seeds(change["seeds"], ppath, where)
        _check_task(change.get("task", {}), kind, ppath, where)
        _overrides(change.get("recipe", {}), ppath, where)
    return Experiment(name=f"{chapter}/{name}", method=spec.name, variant=variant,
                      label=str(body.get("label", name)), seeds=_seeds(body.get("seeds"), path, where),
                      task=task, recipe=recipe, count_macs=bool(body.get("count_macs", True)),
                      about=str(body.get("about", "")), profiles=changes)


def load_file(path: str | Path) -> dict[str, Experiment]:
    """The experiments of one chapter's file, by name, in the file's order."""
    path = Path(path)
    where = str(path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise SpecError(f"{where}: cannot be read as TOML: {err}") from None
    unknown = set(data) - {"about", "defaults", "experiments"}
    if unknown:
        raise SpecError(f"{where}: {sorted(unknown)[0]}: unknown key; a file has about, defaults and experiments")
    defaults = data.get("defaults", {})
    bad = set(defaults) - EXPERIMENT_KEYS
    if bad:
        raise SpecError(f"{where}: defaults.{sorted(bad)[0]}: unknown key")
    chapter = path.stem
    out = {}
    for name, body in data.get("experiments", {}).items():
        base = dict(defaults)
        if body.get("task", {}).get("kind", base.get("task", {}).get("kind")) != base.get("task", {}).get("kind"):
            base.pop("task", None)  # another kind of task: the defaults' options do not apply
        out[f"{chapter}/{name}"] = experiment(chapter, name, _merge(base, body), where)
    return out


def load_all(folder: Path = FOLDER) -> dict[str, Experiment]:
    """Every chapter's experiments (``ch*.toml`` in ``folder``), chapter by chapter."""
    out: dict[str, Experiment] = {}
    for path in sorted(folder.glob("ch*.toml")):
        out.update(load_file(path))
    return out
