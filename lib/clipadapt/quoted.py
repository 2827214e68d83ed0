"""The numbers the prose quotes, shown where the book's machinery is absent.

In the book, a chapter's prose quotes a measured value as ``{glue:text}`r1_none:.1f```:
myst-nb pastes the value that ``viz.glue("r1_none", ...)`` stored, formatted with the
role's format spec. Where myst-nb is not installed (a Colab session, a plain Jupyter) the
role shows as written and the value would appear nowhere; :func:`show` instead lists
every value a cell glues in one line under that cell, named as the prose names it and
formatted as the prose formats it::

    quoted in the text: r1_none = 32.9; r1_lora = 31.7

The formats are those of every ``{glue:text}`` role of the chapters: read from the
chapters themselves where they sit beside the package (a clone, an editable install), else
from :data:`FORMATS_FILE`, shipped with the package for Colab, where the chapters' markdown
is not at hand (``python -m clipadapt.book pin`` writes it when a release is cut, with the
install cells; ``python -m clipadapt.book formats`` alone). A name no chapter quotes shows
as glued (a float to 4 significant digits).
"""

from __future__ import annotations

import json
import os
import re
from ast import literal_eval
from functools import lru_cache
from pathlib import Path

from IPython import get_ipython
from IPython.display import display as ipy_display

# "absent": glue as where myst-nb is not installed, even where it is (tests; a reader who
# has the book extra but wants the numbers under the cells); "present" or unset: look
MYST_NB_ENV = "CLIPADAPT_MYST_NB"
FORMATS_FILE = Path(__file__).with_name("quoted_formats.json")
CHAPTERS = Path(__file__).resolve().parents[2] / "notebooks"  # in a clone; absent when installed
HEADER = "quoted in the text: "
# where the test finds the values a line shows: output metadata[METADATA_KEY][name] is
# the value's text/plain form, as myst-nb would store it
METADATA_KEY = "clipadapt_quoted"

# {glue:text}`name` or {glue:text}`name:spec` (myst-nb splits at the last colon)
TEXT_ROLE = re.compile(r"\{glue:text\}`([^`]+)`")


def myst_nb_present() -> bool:
    """Whether ``viz.glue`` hands values to myst-nb (the book build) or shows them itself.

    ``$CLIPADAPT_MYST_NB=absent`` forces the second, wherever myst-nb is installed."""
    forced = os.environ.get(MYST_NB_ENV, "").strip().lower()
    if forced not in ("", "absent", "present"):
        raise ValueError(f"${MYST_NB_ENV}={forced!r}: expected 'absent', 'present' or unset")
    if forced == "absent":
        return False
    try:
        # lazy: myst-nb comes with the book extra, absent on Colab
        import myst_nb  # noqa: F401
    except ImportError:
        return False
    return True


def is_record(name: str) -> bool:
    """A name the prose cannot quote: ``{glue:text}`` reads what follows a name's last
    colon as a format, so names with a colon (experiments.Lab's ``experiment:NAME:POINT``)
    are records for machines, never shown under a cell."""
    return ":" in name


def roles(markdown: str) -> list[tuple[str, str]]:
    """``(name, format spec)`` of every ``{glue:text}`` role in ``markdown``, in order
    (spec ``""`` where the role has none)."""
    out = []
    for body in TEXT_ROLE.findall(markdown):
        name, _, spec = body.rpartition(":") if ":" in body else (body, "", "")
        out.append((name, spec))
    return out


def formats_of(markdowns) -> dict[str, list[str]]:
    """Every name the given markdown texts quote, with the specs they quote it with."""
    found: dict[str, set[str]] = {}
    for md in markdowns:
        for name, spec in roles(md):
            found.setdefault(name, set()).add(spec)
    return {name: sorted(specs) for name, specs in sorted(found.items())}


def chapter_markdown(folder: Path | None = None) -> list[str]:
    """The markdown cells of every chapter in ``folder`` (default :data:`CHAPTERS`; none
    where it does not exist)."""
    folder = folder or CHAPTERS
    texts = []
    for path in sorted(folder.glob("*.ipynb")) if folder.is_dir() else []:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        texts += ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    return texts


def formats() -> dict[str, list[str]]:
    """Every name the chapters quote, with its specs: from the chapters beside the package
    where they are (read each time: a chapter may change while its kernel runs), else the
    shipped :data:`FORMATS_FILE` (empty where it is missing too)."""
    texts = chapter_markdown()
    if texts:
        return formats_of(texts)
    return shipped_formats()


@lru_cache(maxsize=1)
def shipped_formats() -> dict[str, list[str]]:
    """The map of :data:`FORMATS_FILE`, written when the last release was cut."""
    if not FORMATS_FILE.exists():
        return {}
    return json.loads(FORMATS_FILE.read_text())


def plain_text(value) -> str:
    """The value's text/plain form, as IPython (and so myst-nb's glue) displays it."""
    shell = get_ipython()
    if shell is None:
        return repr(value)
    data, _ = shell.display_formatter.format(value, include=("text/plain",))
    return data.get("text/plain", repr(value))


def _literal(text: str):
    try:
        return literal_eval(text)
    except (SyntaxError, ValueError):
        return text


def format_text(text: str, spec: str) -> str:
    """``text`` (a text/plain form) as a ``{glue:text}`name:spec``` role pastes it: quotes
    gone, then ``format`` with ``spec``, the value read as the spec's type asks."""
    value = _literal(text)
    if spec == "":
        return str(value)
    kind = spec[-1]
    if kind == "s":
        value = str(value)
    elif kind in "bcdoxX":
        value = int(value)
    elif kind in "eEfFgGn%":
        value = float(value)
    return format(value, spec)


def entry(name: str, text: str, specs: list[str] | None = None) -> str:
    """``name = value`` as the prose shows it with ``specs`` (default: those it quotes the
    name with, joined by `` / `` when there are several); a float no chapter quotes, to 4
    significant digits."""
    if specs is None:
        specs = formats().get(name)
    if not specs:
        specs = [".4g" if isinstance(_literal(text), float) else ""]
    shown = []
    for spec in specs or [""]:
        try:
            s = format_text(text, spec)
        except (TypeError, ValueError):  # a spec the value cannot take: show it as it is
            s = format_text(text, "")
        if s not in shown:
            shown.append(s)
    return f"{name} = {' / '.join(shown)}"


def line(values: dict[str, str], width: int = 100) -> str:
    """The compact line under a cell (``values`` maps names to text/plain forms), broken
    between entries, never inside one, where it would pass ``width`` characters."""
    quoted = formats()
    rows, row = [], HEADER.rstrip()
    for i, item in enumerate(entry(n, t, quoted.get(n)) for n, t in values.items()):
        piece = (" " if i == 0 else "; ") + item
        if i and len(row) + len(piece) > width:
            rows.append(row + ";")
            row = "  " + item
        else:
            row += piece
    return "\n".join(rows + [row])


class _Pending:
    """The values glued by the cell running now, shown together when it ends."""

    def __init__(self):
        self.values: dict[str, str] = {}
        self.hooked = None  # the shell whose post_run_cell event shows them

    def add(self, name: str, text: str) -> None:
        self.values.pop(name, None)  # glued again: shown once, where the cell left it
        self.values[name] = text

    def flush(self, *_) -> None:
        if not self.values:
            return
        values, self.values = self.values, {}
        ipy_display({"text/plain": line(values)}, raw=True, metadata={METADATA_KEY: values})


PENDING = _Pending()


def show(name: str, value, display: bool = False) -> None:
    """``viz.glue`` where myst-nb is absent: values with a rich form of their own (a
    figure, a Markdown paragraph) are displayed where they are glued; a value shown with
    ``display=True`` is displayed as it is; every other value joins the line listing the
    cell's quoted numbers, shown when the cell ends (printed at once outside IPython)."""
    if is_record(name):
        return
    shell = get_ipython()
    rich = any(hasattr(value, f"_repr_{kind}_") for kind in ("markdown", "html", "png", "svg", "latex"))
    if display or rich or hasattr(value, "savefig"):
        ipy_display(value)
        return
    if shell is None:
        print(line({name: repr(value)}))
        return
    if PENDING.hooked is not shell:
        shell.events.register("post_run_cell", PENDING.flush)
        PENDING.hooked = shell
    PENDING.add(name, plain_text(value))
