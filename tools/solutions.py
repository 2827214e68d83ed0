"""Exercise solutions that fold everywhere: MyST dropdown admonitions become HTML ``<details>``.

    python tools/solutions.py notebooks/01_clip_from_scratch.ipynb [...]

A solution written as a MyST admonition with ``:class: dropdown`` folds in the book only;
Jupyter and Colab show it open, under the question. HTML's ``<details>`` folds in all three:

    <details>
    <summary>Solution</summary>

    The solution, in markdown (math and roles render: blank lines keep it out of the HTML).

    </details>

Rewrites the markdown cells of each notebook in place (a notebook without such
solutions is left untouched) and says how many it converted.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

from clipadapt import citations

# ```{admonition} Solution   (or a ::: fence), its options, its body, the closing fence
DROPDOWN = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{admonition\}[ \t]*(?P<title>[^\n]*)\n"
    r"(?P<options>(?:[ \t]*:[\w-]+:[^\n]*\n)*)"
    r"(?P<body>.*?)"
    r"^(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


def _is_solution(match: re.Match) -> bool:
    classes = re.search(r":class:([^\n]*)", match["options"])
    return match["title"].strip().lower().startswith("solution") and bool(
        classes and "dropdown" in classes.group(1).split())


def dropdown_solutions(markdown: str) -> list[str]:
    """The titles of the solutions in ``markdown`` still written as dropdown admonitions."""
    return [m["title"].strip() for m in DROPDOWN.finditer(markdown) if _is_solution(m)]


def to_details(markdown: str) -> str:
    """``markdown`` with every dropdown solution admonition as a ``<details>`` block (the
    admonition's title as its summary); everything else as it was."""

    def details(match: re.Match) -> str:
        if not _is_solution(match):
            return match[0]
        body = match["body"].strip("\n")
        summary = html.escape(match["title"].strip(), quote=False)
        return f"<details>\n<summary>{summary}</summary>\n\n{body}\n\n</details>"

    return DROPDOWN.sub(details, markdown)


def convert(path: Path) -> int:
    """Convert the notebook at ``path`` in place; returns how many solutions it converted."""
    count = 0

    def fold(text: str) -> str:
        nonlocal count
        count += len(dropdown_solutions(text))
        return to_details(text)

    citations.rewrite_markdown(path, fold)
    return count


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)]
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    for path in paths:
        if path.suffix != ".ipynb" or not path.is_file():
            print(f"error: {path} is not a notebook file (.ipynb)", file=sys.stderr)
            return 2
    for path in paths:
        print(f"{path}: {convert(path)} solution(s) now fold as <details>")
    return 0


if __name__ == "__main__":
    sys.exit(main())
