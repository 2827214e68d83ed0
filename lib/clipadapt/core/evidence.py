"""How a chapter states a comparison: over seeds, paired, with its spread, and a tie where
the seeds disagree.

Two arms run on the same seeds (for each seed the same data, batches and, where the shapes
match, the same initial weights), so each seed gives one difference ``a - b``
(:func:`clipadapt.core.metrics.paired_difference`). A difference is *settled* when at least
:data:`MIN_SEEDS` seeds ran and every one of them has the same sign; otherwise the chapter
calls it a tie. :func:`glue` hands the prose the mean difference and everything a reader
needs to judge it, under one name:

* ``NAME`` the mean difference, ``NAME_sd`` its standard deviation over seeds,
* ``NAME_agree`` "k of n" (seeds with ``a > b``), ``NAME_n`` the number of seeds,
* ``NAME_says`` the verdict in words ("LoRA ahead on all 3 seeds" or "a tie: ..."); where
  it names a variant (``VoP^C``), as Markdown typeset as the prose writes it (VoP<sup>C</sup>),
  which the prose quotes with ``{glue:md}``,
* and a hidden JSON record ``paired:NAME`` that ``tests/test_book.py`` reads.

Naming rule (the book test enforces it): a glued value whose name contains ``_vs_`` is a
comparison, and must be glued through :func:`glue`.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Sequence

from IPython.display import Markdown

from .. import viz
from .metrics import paired_difference

MIN_SEEDS = 3  # fewer seeds than this: no verdict
RECORD = "paired:"  # the prefix of the hidden records


def settled(d: dict) -> bool:
    """Whether the paired difference ``d`` has enough seeds, all of one sign."""
    return d["n"] >= MIN_SEEDS and (d["min"] > 0 or d["max"] < 0)


def verdict(d: dict, a: str, b: str, unit: str = "points", behind: int | None = None) -> str:
    """``d`` (``a`` minus ``b``) in words, the numbers it rests on included; ``behind``: the
    seeds with ``a < b`` (where some seeds are level, the rest of ``n - agree``)."""
    spread = f"{d['mean']:+.1f} {unit} on average, sd {d['sd']:.1f}"
    if d["n"] < MIN_SEEDS:
        return f"one draw, not a verdict ({a} minus {b}: {spread}, {d['n']} seed{'s' * (d['n'] != 1)})"
    if settled(d):
        win = a if d["mean"] > 0 else b
        return f"{win} ahead on all {d['n']} seeds ({a} minus {b}: {spread})"
    behind = d["n"] - d["agree"] if behind is None else behind
    level = d["n"] - d["agree"] - behind
    split = f"{a} ahead on {d['agree']} of {d['n']} seeds, behind on {behind}" + (f", level on {level}" if level
                                                                                 else "")
    return f"a tie: {split} ({spread})"


def compare(a: Sequence[float], b: Sequence[float], a_label: str, b_label: str, unit: str = "points") -> dict:
    """The paired difference of two arms' scores (one per seed, same seed order) with its
    labels and verdict: what :func:`glue` glues and a chapter's table shows."""
    d = paired_difference(a, b)
    per_seed = [x - y for x, y in zip(a, b)]
    behind = sum(x < y for x, y in zip(a, b))
    return {**d, "a": a_label, "b": b_label, "unit": unit, "settled": settled(d),
            "says": verdict(d, a_label, b_label, unit, behind), "per_seed": per_seed}


def glue(name: str, comparison: dict) -> dict:
    """Glue ``comparison`` (from :func:`compare`) under ``name`` (see the module's docstring)."""
    c = comparison
    viz.glue(name, c["mean"])
    viz.glue(f"{name}_sd", c["sd"])
    viz.glue(f"{name}_agree", f"{c['agree']} of {c['n']}")
    viz.glue(f"{name}_n", c["n"])
    says = viz.typeset(c["says"])
    viz.glue(f"{name}_says", c["says"] if says == c["says"] else Markdown(says))
    viz.glue(RECORD + name, json.dumps({k: c[k] for k in ("mean", "sd", "min", "max", "agree", "n", "a", "b",
                                                          "settled")}))
    return c


def row(c: dict) -> dict:
    """One line of a chapter's table of comparisons."""
    return {"comparison": f"{c['a']} - {c['b']}", f"mean ({c['unit']})": c["mean"], "sd": c["sd"],
            "per seed": " ".join(f"{x:+.1f}" for x in c["per_seed"]), "verdict": _short(c)}


def _short(c: dict) -> str:
    if c["n"] < MIN_SEEDS:
        return f"{c['n']} seed{'s' * (c['n'] != 1)}: no verdict"
    if c["settled"]:
        return f"{c['a'] if c['mean'] > 0 else c['b']}, {c['n']} of {c['n']} seeds"
    return f"tie ({c['agree']} of {c['n']})"


PARTS = ("_sd", "_agree", "_n", "_says")
QUOTE = re.compile(r"\{glue:(?:text|md)\}`([^`:]+)(?::[^`]*)?`")


def unbacked(glued: dict[str, str], cells: list[str]) -> list[str]:
    """What a chapter states without its evidence: ``glued`` holds every value the executed
    chapter glued (name -> text), ``cells`` its markdown cells. A problem is a comparison
    (a glued name with ``_vs_``) glued without its paired record, or on fewer than
    :data:`MIN_SEEDS` seeds, or a markdown cell that quotes a comparison's mean without its
    spread or verdict (``NAME_sd``, ``NAME_agree`` or ``NAME_says`` in the same cell)."""
    problems = []
    comparisons = {n for n in glued if "_vs_" in n and not n.startswith(RECORD) and not n.endswith(PARTS)}
    for name in sorted(comparisons):
        raw = glued.get(RECORD + name)
        if raw is None:
            problems.append(f"{name}: a comparison glued without its seeds (use clipadapt.core.evidence.glue)")
            continue
        record = json.loads(ast.literal_eval(raw) if raw[:1] in "'\"" else raw)
        if record["n"] < MIN_SEEDS:
            problems.append(f"{name}: a comparison on {record['n']} seed(s); at least {MIN_SEEDS} are needed")
    for i, text in enumerate(cells):
        quoted = set(QUOTE.findall(text))
        for name in quoted & comparisons:
            if not {name + p for p in ("_sd", "_agree", "_says")} & quoted:
                problems.append(f"markdown cell {i} quotes {name} without its spread or verdict")
    return problems
