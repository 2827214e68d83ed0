"""Citations that read as text outside the book, and as the book's citations inside it.

A chapter cites as a parenthesised group of links to the bibliography file, one link a
reference, its text the author and year::

    SoftCPT ([Ding et al., 2024](../book/references.bib#ding2024softcpt)) tunes ...
    ([Radford et al., 2021](../book/references.bib#radford2021clip); [van den Oord et al.,
    2018](../book/references.bib#oord2018cpc))

Jupyter and Colab show "SoftCPT (Ding et al., 2024)"; a MyST ``{cite}`` role would show as
written there. The book build (:func:`clipadapt.book.copy_sources`) turns each group
back into the role, ``{cite}`ding2024softcpt```, so the page is what the role makes
(author-year, linked to the bibliography page). :func:`to_links` writes a chapter's roles
as such groups (``python tools/citations.py``).

Figures and tables are referred to the same way. A chapter links to a numbered figure by
its name, ``[the figure below](#fig-ch03-matrix)``, which Jupyter and Colab show as the
words; the book build turns the link into ``{numref}`fig-ch03-matrix```, which the page
shows as "Fig. 7", linked to the figure (:func:`figure_roles`; :func:`figure_links` goes
back).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from pathlib import Path

from .core.files import atomic_path

BIB = Path(__file__).resolve().parents[2] / "book" / "references.bib"
CHAPTERS = BIB.parents[1] / "notebooks"  # where the chapters are, whose links are relative
TARGET = "../book/references.bib"  # the bibliography file, as a chapter in notebooks/ links it

LINK = re.compile(r"\[(?P<text>[^\]]+)\]\(" + re.escape(TARGET) + r"#(?P<key>[\w.-]+)\)")
GROUP = re.compile(r"\((?P<links>" + LINK.pattern.replace("?P<text>", "?:").replace("?P<key>", "?:")
                   + r"(?:;\s+" + LINK.pattern.replace("?P<text>", "?:").replace("?P<key>", "?:") + r")*)\)")
ROLE = re.compile(r"\{cite(?::p)?\}`(?P<keys>[^`]+)`")
FIGURE_LINK = re.compile(r"\[(?P<text>[^\]]+)\]\(#(?P<name>fig-[\w-]+)\)")
NUMREF_ROLE = re.compile(r"\{numref\}`(?P<name>fig-[\w-]+)`")
FIGURE_TEXT = "the figure"  # the words a figure link gets when written from a role
DOC_ROLE = re.compile(r"\{doc\}`(?:(?P<title>[^`<]+?)\s*<(?P<target>[^`>]+)>|(?P<path>[^`]+))`")


def entries(bib: Path = BIB) -> dict[str, dict[str, str]]:
    """``{key: {"author": ..., "year": ...}}`` of the BibTeX file (the fields the label needs)."""
    out = {}
    for m in re.finditer(r"@\w+\s*\{\s*([^,\s]+)\s*,(.*?)\n\}", bib.read_text(encoding="utf-8"), re.DOTALL):
        fields = {f.lower(): v for f, v in re.findall(r"(\w+)\s*=\s*\{((?:[^{}]|\{[^{}]*\})*)\}", m[2])}
        out[m[1]] = fields
    return out


def label(entry: dict[str, str]) -> str:
    """The author-year text of a reference: "Zhou et al., 2022", "Durand and Mori, 2019"."""
    for field in ("author", "year"):
        if field not in entry:
            raise ValueError(f"the reference {entry} has no {field}, which its citation text needs")
    surnames = [a.split(",")[0].strip() for a in re.split(r"\s+and\s+", entry["author"])]
    who = (surnames[0] if len(surnames) == 1 else f"{surnames[0]} and {surnames[1]}"
           if len(surnames) == 2 else f"{surnames[0]} et al.")
    return f"{who}, {entry['year']}"


def page_title(path: Path) -> str:
    """The first heading of a markdown page or notebook (what ``{doc}`` shows)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":
        text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"] if c["cell_type"] == "markdown")
    heading = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
    if not heading:
        raise ValueError(f"{path} has no heading to name it by")
    return heading[1].strip()


def to_links(markdown: str, bib: Path = BIB) -> str:
    """``markdown`` with every ``{cite}`` role as a group of author-year links, and every
    ``{doc}`` role as a markdown link to the page (both read as text in Jupyter)."""
    refs = entries(bib)

    def group(match: re.Match) -> str:
        keys = [k.strip() for k in match["keys"].split(",")]
        unknown = [k for k in keys if k not in refs]
        if unknown:
            raise ValueError(f"{match[0]} cites {unknown}, which {bib} does not hold")
        return "(" + "; ".join(f"[{label(refs[k])}]({TARGET}#{k})" for k in keys) + ")"

    def doc(match: re.Match) -> str:
        target = (match["target"] or match["path"]).strip()
        found = [s for s in (".md", ".ipynb") if (CHAPTERS / f"{target}{s}").is_file()]
        if not found:
            raise ValueError(f"{match[0]} names no page: neither {target}.md nor {target}.ipynb "
                             f"is beside {CHAPTERS}")
        title = match["title"] or page_title(CHAPTERS / f"{target}{found[0]}")
        return f"[{title.strip()}]({target}{found[0]})"

    return DOC_ROLE.sub(doc, ROLE.sub(group, markdown))


def to_roles(markdown: str) -> str:
    """``markdown`` with every group of citation links as the ``{cite}`` role the book
    renders; a citation link outside such a group is an error (the book would print it as
    a plain link)."""
    def role(match: re.Match) -> str:
        return "{cite}`" + ",".join(m["key"] for m in LINK.finditer(match["links"])) + "`"

    out = GROUP.sub(role, markdown)
    stray = LINK.search(out)
    if stray:
        raise ValueError(f"the citation {stray[0]!r} is not in parentheses: write it as "
                         f"({stray[0]}), or several as ([A, 2021]({TARGET}#a); [B, 2022]({TARGET}#b))")
    return out


def check(markdown: str, bib: Path = BIB) -> list[str]:
    """What is wrong with the citations of ``markdown``: roles left (they show as written
    outside the book), links to keys the bibliography lacks, link texts that are not the
    reference's author and year."""
    refs = entries(bib)
    problems = [f"{m[0]} shows as written outside the book" for m in ROLE.finditer(markdown)]
    for m in LINK.finditer(markdown):
        if m["key"] not in refs:
            problems.append(f"{m[0]}: {m['key']} is not in {bib.name}")
        elif " ".join(m["text"].split()) != label(refs[m["key"]]):
            problems.append(f"{m[0]}: the text should read {label(refs[m['key']])!r}")
    return problems


def figure_roles(markdown: str, drawn: Collection[str] | None = None) -> str:
    """``markdown`` with every link to a figure's name, ``[the table below](#fig-ch02-costs)``,
    as the ``{numref}`fig-ch02-costs``` role the book renders ("Fig. 4"); the link's words,
    which only Jupyter and Colab show, are dropped. Given ``drawn`` (the figures the page
    shows), a link to any other figure becomes its words alone."""
    return FIGURE_LINK.sub(lambda m: "{numref}`" + m["name"] + "`" if drawn is None or m["name"] in drawn
                           else m["text"], markdown)


def figure_links(markdown: str, text: str = FIGURE_TEXT) -> str:
    """``markdown`` with every ``{numref}`fig-...``` role as a markdown link to the figure's
    name, whose words are ``text`` (the inverse of :func:`figure_roles`, up to those words)."""
    return NUMREF_ROLE.sub(lambda m: f"[{text}](#{m['name']})", markdown)


def rewrite_markdown(path: Path, convert: Callable[[str], str]) -> bool:
    """``convert`` every markdown cell of the notebook at ``path``; the notebook is written
    back (atomically) only where a cell changed. Returns whether one did."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    changed = False
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            text = "".join(cell["source"])
            new = convert(text)
            if new != text:
                cell["source"], changed = new.splitlines(keepends=True), True
    if changed:
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return changed


def figure_name(cell: dict) -> str | None:
    """The name of the numbered figure a code cell's outputs become (``mystnb.figure.name``)."""
    if cell["cell_type"] != "code":
        return None
    return cell.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("name")


def shown_outputs(cell: dict) -> list[dict]:
    """The outputs of an executed code cell that the page shows, each of which myst-nb puts
    in the cell's figure: displays and results, not printed text nor glued values (myst-nb
    keeps those for the roles that paste them)."""
    return [o for o in cell.get("outputs", []) if o.get("output_type") in ("display_data", "execute_result")
            and not any(k.startswith("application/papermill.record/") for k in o.get("data", {}))]


def figure_problems(nb: dict) -> list[str]:
    """Captioned cells of an executed notebook that show more than one output: each would
    be a figure of the same name (the strict build stops on the duplicate)."""
    out = []
    for cell in nb["cells"]:
        name = figure_name(cell)
        if name and len(shown := shown_outputs(cell)) > 1:
            out.append(f"{name}: {len(shown)} outputs shown ({', '.join(sorted(shown[-1].get('data', {})))} last)")
    return out


def drawn_figures(nb: dict) -> set[str]:
    """The numbered figures an executed notebook shows: each code cell's ``mystnb.figure``
    name whose cell showed something, and each glued figure's ``:name:``."""
    names = set()
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            if figure_name(cell) and shown_outputs(cell):
                names.add(figure_name(cell))
        else:
            names.update(re.findall(r"^:name:\s*(fig-\S+)\s*$", "".join(cell["source"]), re.MULTILINE))
    return names


def number_figures(path: Path) -> bool:
    """Turn the links to figures of the executed notebook at ``path`` into the ``{numref}``
    roles the book numbers (:func:`figure_roles`); a link to a figure the
    profile did not draw (chapter 3's order test is drawn only where the videos have
    reversal twins) keeps only its words, so the page has no dangling reference. Returns
    whether it changed."""
    drawn = drawn_figures(json.loads(path.read_text(encoding="utf-8")))
    return rewrite_markdown(path, lambda text: figure_roles(text, drawn))
