"""Colab's package versions as pip constraints, for the Colab-stack check (``make colab-check``).

    python tools/colab_constraints.py OUT.txt

Reads Colab's GPU ``pip freeze`` (requirements/colab-gpu-freeze.txt) and the packages that
cannot be installed at Colab's version off Colab (requirements/colab-unmatched.txt: a pattern,
what to install instead, why) and writes one ``name==version`` line per pinned package of the
freeze: Colab's version, or the listed one; ``any`` leaves the package out. Lines of the
freeze that name a URL or a file are not versions and are left out. Prints what it changed.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FREEZE = ROOT / "requirements" / "colab-gpu-freeze.txt"
UNMATCHED = ROOT / "requirements" / "colab-unmatched.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_unmatched(path: Path = UNMATCHED) -> list[tuple[str, str, str]]:
    """``[(pattern, version or "any", why)]`` of the listing's ``pattern | instead | why`` lines."""
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"{path}:{n}: expected 'pattern | version or any | why', got {line!r}")
        rows.append((norm(parts[0]), parts[1], parts[2]))
    return rows


def build(freeze: Path = FREEZE, unmatched: Path = UNMATCHED) -> tuple[list[str], list[str]]:
    """(constraint lines, one note per package changed or left out)."""
    rows = read_unmatched(unmatched)
    lines, notes = [], []
    for raw in freeze.read_text().splitlines():
        m = PIN.match(raw.strip())
        if not m:
            continue
        name, version = norm(m.group(1)), m.group(2)
        row = next((r for r in rows if fnmatch.fnmatchcase(name, r[0])), None)
        if row is None:
            lines.append(f"{name}=={version}")
        elif row[1] == "any":
            notes.append(f"{name}: Colab {version}, left free")
        else:
            lines.append(f"{name}=={row[1]}")
            notes.append(f"{name}: Colab {version}, here {row[1]}")
    return lines, notes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="the constraints file to write")
    args = ap.parse_args()
    lines, notes = build()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"{args.out}: {len(lines)} of Colab's versions; not Colab's: {len(notes)}")
    for note in notes:
        print(f"  {note}")


if __name__ == "__main__":
    main()
