"""The training budgets of the chapters' runs, per profile: ``[budgets.<profile>]`` of
``clipadapt/recipes/_shared.toml``.

A budget is a count a recipe's rule reads (``{ budget = "video_steps" }``) or a reason names
(``{video_steps}``): the few-shot runs' epochs and least steps, Part II's steps and batch, the
scene world's training pictures and steps, chapter 7's joint steps. Each is written once per
profile; a profile built from another (``colab-smoke`` from ``colab``) changes that one's
table key by key (:func:`clipadapt.profiles.lineage`). A key a profile leaves out is unset
there, and a row whose rule reads it is refused by :mod:`clipadapt.training.recipes`.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from .. import profiles

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

FILE = Path(__file__).resolve().parents[1] / "recipes" / "_shared.toml"
BUDGETS = ("fewshot_epochs", "fewshot_min_steps", "video_steps", "video_batch", "multilabel_train",
           "multilabel_steps", "multitask_steps")


class BudgetError(ValueError):
    """A budget table that breaks the rules: the message names the file and the key."""


@functools.cache
def tables(path: Path = FILE) -> dict[str, dict[str, int]]:
    """``[budgets.<profile>]`` of ``path``, checked: positive counts of known names."""
    try:
        out = tomllib.loads(Path(path).read_text(encoding="utf-8")).get("budgets", {})
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise BudgetError(f"{path}: not readable TOML: {err}") from None
    for name, table in out.items():
        if not isinstance(table, dict):
            raise BudgetError(f"{path}: budgets.{name}: expected a table, got {table!r}")
        for k, v in table.items():
            if k not in BUDGETS:
                raise BudgetError(f"{path}: budgets.{name}.{k}: unknown budget; the budgets are {', '.join(BUDGETS)}")
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise BudgetError(f"{path}: budgets.{name}.{k}: expected a positive count, got {v!r}")
    return out


def of(profile: profiles.Profile, path: Path = FILE) -> dict[str, int]:
    """The budgets of ``profile``: its table over those of the profiles it is built from."""
    out = profiles.merged(tables(Path(path)), profiles.need(profile))
    if out is None:
        raise BudgetError(f"{path}: budgets.{profile.name}: missing; every profile has its budgets")
    return out
