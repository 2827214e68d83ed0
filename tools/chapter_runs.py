"""The runs an executed chapter glued, checked against ``reproduce`` and against another execution.

    python tools/chapter_runs.py check EXECUTED.ipynb [--all-points]
        every experiment the chapter ran: ``python -m clipadapt.reproduce NAME --profile P``
        (the first seed at the largest shot count, or every run with --all-points) must end
        with the glued metrics, trainable parameters and multiply-adds, bit for bit
    python tools/chapter_runs.py diff BEFORE.ipynb AFTER.ipynb
        every glued value (the prose's numbers and the runs' records) of two executions of a
        chapter, side by side where they differ

``tests/test_book.py`` runs the check on every chapter of the tiny book build.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import tempfile
from pathlib import Path

import nbformat

RECORD = "application/papermill.record/"


def glued(nb_file: str | Path) -> dict[str, str]:
    """Every glued value of an executed notebook, by name, as its text (markdown or plain)."""
    nb = nbformat.read(str(nb_file), as_version=4)
    out = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            name = o.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                data = o.get("data", {})
                out[name] = data.get(RECORD + "text/markdown", data.get(RECORD + "text/plain", ""))
    return out


def records(nb_file: str | Path) -> dict[str, dict]:
    """The runs of named experiments the chapter glued (``experiment:NAME:POINT`` -> record)."""
    return {k: json.loads(ast.literal_eval(v)) for k, v in glued(nb_file).items() if k.startswith("experiment:")}


def canon(value) -> str:
    """JSON text, keys sorted: NaN compares equal to NaN as text."""
    return json.dumps(value, sort_keys=True)


def check(name: str, point: dict, record: dict, profile: str, workdir: str | Path, out: str | Path) -> list[str]:
    """Run experiment ``name`` at ``point`` through ``reproduce``; the differences from
    ``record`` (empty: the same run, bit for bit). The command evaluates once, at the end, as
    the chapter's run did: its evaluations on the way change nothing (``tests/test_driver.py``
    checks that on every kind of task) and would only cost time."""
    from clipadapt import experiments, reproduce

    argv = [name, "--profile", profile, "--out", str(out), "--no-progress", "--seed", str(point["seed"]),
            "--workdir", str(workdir)]
    if record["steps"]:  # no evaluation nor checkpoint before the last step
        argv += ["--eval-every", str(record["steps"]), "--save-every", str(record["steps"])]
    if "shots" in point:
        argv += ["--shots", str(point["shots"])]
    code = reproduce.main(argv)
    if code:
        return [f"{name}: reproduce exited with {code}"]
    result = json.loads((Path(out) / reproduce.point_folder(point) / "result.json").read_text())
    wrong = []
    for key in ("metrics", "trainable", "steps") + (("macs",) if experiments.get(name).count_macs else ()):
        if canon(result[key]) != canon(record[key]):
            wrong.append(f"{name} {experiments.point_label(point)}: {key}: reproduce {canon(result[key])[:300]} "
                         f"!= chapter {canon(record[key])[:300]}")
    return wrong


def chosen(recs: dict[str, dict], all_points: bool = False) -> list[tuple[str, dict, dict]]:
    """(name, point, record) to check: each experiment's first seed at its largest shot count."""
    from clipadapt import experiments

    by_name: dict[str, list[dict]] = {}
    for r in recs.values():
        by_name.setdefault(r["name"], []).append(r)
    out = []
    for name, rs in by_name.items():
        if not all_points:
            first = experiments.get(name).seeds[0]
            rs = [max((r for r in rs if r["point"]["seed"] == first), key=lambda r: r["point"].get("shots", 0))]
        out += [(name, r["point"], r) for r in rs]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check")
    c.add_argument("notebook")
    c.add_argument("--profile", default="tiny")
    c.add_argument("--all-points", action="store_true")
    d = sub.add_parser("diff")
    d.add_argument("before")
    d.add_argument("after")
    args = parser.parse_args(argv)
    if args.command == "diff":
        a, b = glued(args.before), glued(args.after)
        names = [k for k in dict.fromkeys([*a, *b]) if not k.startswith("experiment:")]
        same = 0
        for k in names:
            if a.get(k) == b.get(k):
                same += 1
            else:
                print(f"{k}: {a.get(k, '(absent)')[:120]!s}  ->  {b.get(k, '(absent)')[:120]!s}")
        print(f"{same} of {len(names)} glued values the same")
        return 0
    recs = records(args.notebook)
    if not recs:
        print(f"{args.notebook} glued no experiment's run")
        return 1
    wrong = []
    workdir = Path(args.notebook).parent
    for name, point, rec in chosen(recs, args.all_points):
        with tempfile.TemporaryDirectory() as tmp:
            found = check(name, point, rec, args.profile, workdir, tmp)
        print(("DIFFERENT " if found else "same      ") + name + " " + json.dumps(point))
        wrong += found
    print("\n".join(wrong) or "every run checked gives the chapter's numbers")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
