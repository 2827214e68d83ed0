"""Every method of the book, by name.

Each method file declares its methods beside its code (``register(MethodSpec(...))``, from
:mod:`clipadapt.methods.spec`); importing this module imports every method file, so that all
of them have registered, and puts :data:`REGISTRY` in the book's order: the order of the
files in :data:`BOOK_ORDER`, then the order each file declares its methods in. The chapters
list a task's methods in that order (:func:`methods`).

A new method is one file under ``methods/`` (its module, a :class:`~clipadapt.methods.protocol.Method`
with the interface of its task kind, and its ``register(MethodSpec(...))``: every file of the
package is imported here, so nothing else names it) and its recipe file,
``clipadapt/recipes/<name>.toml`` (:mod:`clipadapt.training.recipes`); ``driver.run("<name>",
clip, tokenizer, task)`` and ``python -m clipadapt.reproduce <name>`` then train and measure
it. Its place in :data:`BOOK_ORDER` matters only for the book's tables.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from . import baselines, coop, finetune, mean_pool, scpnet, softcpt, tempme, vop, vpt
from .spec import REGISTRY, MethodSpec, register, unregister

__all__ = ["BOOK_ORDER", "REGISTRY", "MethodSpec", "get", "methods", "register", "unregister"]

#: The method files in the order the book teaches their methods.
BOOK_ORDER = (baselines, coop, vpt, finetune, mean_pool, vop, tempme, softcpt, scpnet)


def _in_book_order() -> None:
    """Reorder :data:`REGISTRY` in place (others hold the same dict): by the file that
    declared each method (its builder's module), then by declaration; others last."""
    rank = {module.__name__: i for i, module in enumerate(BOOK_ORDER)}
    ordered = sorted(REGISTRY.values(), key=lambda s: rank.get(_module_of(s), len(rank)))  # stable
    REGISTRY.clear()
    REGISTRY.update((s.name, s) for s in ordered)


def _module_of(spec: MethodSpec) -> str | None:
    return getattr(spec.build, "__module__", None)


def _import_every_method_file() -> None:
    """Import every module of this package, so that a new method's file registers itself
    without being named anywhere else (its methods come after the book's, by file name)."""
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda i: i.name):
        importlib.import_module(f"{__package__}.{info.name}")


_import_every_method_file()
_in_book_order()


def get(name: str) -> MethodSpec:
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


def methods(task: str | None = None) -> tuple[str, ...]:
    """The methods of ``task`` ("classification", "retrieval", "multitask"; None: all), in book order."""
    return tuple(n for n, s in REGISTRY.items() if task is None or s.task == task)
