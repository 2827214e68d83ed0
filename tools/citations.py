"""Citations that read as text in Jupyter and Colab: ``{cite}`` roles become author-year links.

    python tools/citations.py notebooks/01_clip_from_scratch.ipynb [...]

Rewrites the markdown cells of each notebook in place (:func:`clipadapt.citations.to_links`):
``{cite}`a,b``` becomes ``([A et al., 2021](../book/references.bib#a); [B and C,
2018](../book/references.bib#b))`` and ``{doc}`../book/bibliography``` a markdown link to the
page, and ``{numref}`fig-ch03-matrix``` a link to the figure's name,
``[the figure](#fig-ch03-matrix)``, whose words are worth rewriting for the sentence ("the
table below"). The book build turns the links back into the roles
(``clipadapt.book.copy_sources``), so the book's page does not change. A notebook without
roles is left untouched.
"""

from __future__ import annotations

import sys
from pathlib import Path

from clipadapt import citations


def convert(path: Path) -> int:
    """Convert the notebook at ``path`` in place; returns how many roles it rewrote."""
    count = 0

    def to_text(text: str) -> str:
        nonlocal count
        count += sum(len(r.findall(text)) for r in (citations.ROLE, citations.DOC_ROLE, citations.NUMREF_ROLE))
        return citations.figure_links(citations.to_links(text))

    citations.rewrite_markdown(path, to_text)
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
        print(f"{path}: {convert(path)} role(s) now read as text")
    return 0


if __name__ == "__main__":
    sys.exit(main())
