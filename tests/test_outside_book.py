"""The chapters as a reader without the book's machinery sees them (Colab, a plain Jupyter):
every number the prose quotes shows under the cell that measures it, exercise solutions
fold, citations read as text (issue 29, item 3). A chapter executed without myst-nb is
checked in tests/test_book.py, where the book's runs are filed."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

from clipadapt import book, citations, quoted, viz

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("solutions", ROOT / "tools" / "solutions.py")
solutions = importlib.util.module_from_spec(_spec)  # tools/solutions.py, the converter
_spec.loader.exec_module(solutions)

# The chapters whose solutions fold as <details> and whose citations read as text outside
# the book (tools/solutions.py and tools/citations.py convert a chapter); add each chapter
# as it is converted, until this is every chapter of _toc.yml.
CONVERTED = ["01_clip_from_scratch", "02_adapting_clip", "03_video_retrieval", "04_vop", "05_tempme", "06_scpnet",
             "07_softcpt", "08_choosing_a_method"]


def _markdown(stem: str) -> list[str]:
    nb = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


@pytest.mark.parametrize("stem", CONVERTED)
def test_solutions_fold_in_jupyter_and_colab(stem):
    """A dropdown admonition folds in the book only; <details> folds in all three."""
    left = [t for md in _markdown(stem) for t in solutions.dropdown_solutions(md)]
    assert not left, f"{stem}: solutions still written as dropdown admonitions: run tools/solutions.py on it"
    assert any("<details>" in md for md in _markdown(stem)), f"{stem} has no folded solution"


@pytest.mark.parametrize("stem", CONVERTED)
def test_citations_read_as_text_outside_the_book(stem):
    problems = [p for md in _markdown(stem) for p in citations.check(md)]
    assert not problems, f"{stem}: {problems} (tools/citations.py converts a chapter's roles)"
    assert not any("{doc}`" in md for md in _markdown(stem)), f"{stem}: a {{doc}} role shows as written outside the book"
    for md in _markdown(stem):
        citations.to_roles(md)  # every citation link is one the book build turns into a role


def test_to_details_keeps_the_solution_and_folds_it():
    md = ("1. Why?\n\n```{admonition} Solution\n:class: dropdown\nBecause $x^2$ and "
          "{glue:text}`acc:.1f`.\n```\n\n```{admonition} Note\n:class: dropdown\nkept\n```\n")
    out = solutions.to_details(md)
    assert out == ("1. Why?\n\n<details>\n<summary>Solution</summary>\n\nBecause $x^2$ and "
                   "{glue:text}`acc:.1f`.\n\n</details>\n\n```{admonition} Note\n:class: dropdown\nkept\n```\n")
    assert solutions.dropdown_solutions(md) == ["Solution"] and solutions.dropdown_solutions(out) == []
    assert solutions.to_details(out) == out


def test_citation_links_become_the_books_roles_again():
    role = "CLIP {cite}`radford2021clip,oord2018cpc` and SoftCPT {cite}`ding2024softcpt`."
    text = citations.to_links(role)
    assert text == ("CLIP ([Radford et al., 2021](../book/references.bib#radford2021clip); "
                    "[van den Oord et al., 2018](../book/references.bib#oord2018cpc)) and SoftCPT "
                    "([Ding et al., 2024](../book/references.bib#ding2024softcpt)).")
    assert citations.to_roles(text) == role and citations.check(text) == []
    assert citations.check(role) and citations.check(text.replace("Ding et al.", "Ding"))
    with pytest.raises(ValueError, match="not in parentheses"):
        citations.to_roles("see [Ding et al., 2024](../book/references.bib#ding2024softcpt)")
    assert citations.to_links("in the {doc}`../book/bibliography`") == "in the [Bibliography](../book/bibliography.md)"


def test_the_book_build_copies_carry_the_roles(tmp_path):
    """copy_sources writes each converted chapter's citations as the {cite} roles the
    committed chapters held before, so the book's pages do not change."""
    dest = book.copy_sources(tmp_path / "exec", ROOT)
    for stem in CONVERTED:
        copied = json.loads((dest / "notebooks" / f"{stem}.ipynb").read_text(encoding="utf-8"))
        text = "".join("".join(c["source"]) for c in copied["cells"] if c["cell_type"] == "markdown")
        assert "{cite}`" in text and "references.bib#" not in text


def test_figure_links_become_the_books_numref_roles():
    """A chapter refers to a figure by a markdown link to its name (Jupyter and Colab show
    the words); the build copy holds the {numref} role the book numbers ("Fig. 7")."""
    text = ("In [the matrix above](#fig-ch03-matrix) each caption, and [the\ntable](#fig-ch03-twins); "
            "not [a page](../book/how-to-run.md) nor [Radford et al., 2021](../book/references.bib#radford2021clip).")
    role = ("In {numref}`fig-ch03-matrix` each caption, and {numref}`fig-ch03-twins`; "
            "not [a page](../book/how-to-run.md) nor [Radford et al., 2021](../book/references.bib#radford2021clip).")
    assert citations.figure_roles(text) == role
    assert citations.figure_links(role) == text.replace("the matrix above", "the figure").replace(
        "the\ntable", "the figure")
    assert citations.figure_roles(citations.figure_links(role)) == role
    assert citations.figure_links("{numref}`fig-ch02-shots`", "the figure below") == "[the figure below](#fig-ch02-shots)"


def test_the_build_numbers_the_figures_a_page_shows_and_words_the_rest(tmp_path):
    """Before the HTML build, an executed chapter's link to a figure it shows becomes the
    {numref} role; a link to a figure its profile did not draw (a cell that drew nothing)
    keeps only its words, so the strict build has no undefined reference."""
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["See [the matrix](#fig-ch03-matrix) and "
                                                            "[the twins' table](#fig-ch03-twins)."]},
        {"cell_type": "code", "metadata": {"mystnb": {"figure": {"name": "fig-ch03-matrix", "caption": "m"}}},
         "outputs": [{"output_type": "display_data", "data": {"text/plain": "x"}, "metadata": {}}], "source": []},
        {"cell_type": "code", "metadata": {"mystnb": {"figure": {"name": "fig-ch03-twins", "caption": "t"}}},
         "outputs": [{"output_type": "stream", "name": "stdout", "text": "no twins"}], "source": []},
        {"cell_type": "markdown", "metadata": {}, "source": ["```{glue:figure} curves\n:name: fig-ch03-curves\n\n"
                                                            "c\n```\n[Curves](#fig-ch03-curves)"]}]}
    path = tmp_path / "03_video_retrieval.ipynb"
    path.write_text(json.dumps(nb))
    assert citations.drawn_figures(nb) == {"fig-ch03-matrix", "fig-ch03-curves"}
    assert citations.number_figures(path) and not citations.number_figures(path)  # once: nothing left to turn
    md = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"]
    assert md[0] == "See {numref}`fig-ch03-matrix` and the twins' table."
    assert md[1].endswith("{numref}`fig-ch03-curves`")


def _figures(stem: str) -> list[str]:
    """The names of a chapter's numbered figures: a code cell's ``mystnb.figure.name`` (each
    display output of the cell becomes that figure) and a glued figure's ``:name:``."""
    nb = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text(encoding="utf-8"))
    names = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            names += [citations.figure_name(cell)] if citations.figure_name(cell) else []
        else:
            names += re.findall(r"^:name:\s*(fig-\S+)\s*$", "".join(cell["source"]), re.MULTILINE)
    return names


@pytest.mark.parametrize("stem", CONVERTED)
def test_figures_are_referred_to_by_links_that_name_them(stem):
    """No {numref} role shows as written on Colab; every link to a figure names a figure of
    the same chapter; every figure of the chapter has a caption and is referred to."""
    text = "\n".join(_markdown(stem))
    assert not re.search(r"\{numref\}`", text), f"{stem}: a {{numref}} role shows as written outside the book"
    figures = _figures(stem)
    assert figures, f"{stem} has no numbered figure"
    targets = [m["name"] for m in citations.FIGURE_LINK.finditer(text)]
    unknown = sorted(set(targets) - set(figures))
    assert not unknown, f"{stem}: links to {unknown}, which name no figure of the chapter"
    unreferred = sorted(set(figures) - set(targets))
    assert not unreferred, f"{stem}: {unreferred} are never referred to from the prose"
    assert all(n.startswith(f"fig-ch{stem[:2]}-") for n in figures), figures
    nb = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        figure = cell["metadata"].get("mystnb", {}).get("figure")
        if figure:
            assert figure.get("caption", "").strip(), f"{stem}: {figure['name']} has no caption"
            assert "{" not in figure["caption"], f"{stem}: {figure['name']}'s caption holds a role"


def test_figure_names_are_unique_in_the_book():
    names = [n for stem in CONVERTED for n in _figures(stem)]
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})


def test_myst_nb_can_be_forced_absent(monkeypatch):
    monkeypatch.setenv(quoted.MYST_NB_ENV, "absent")
    assert not quoted.myst_nb_present()
    monkeypatch.setenv(quoted.MYST_NB_ENV, "present")
    pytest.importorskip("myst_nb")
    assert quoted.myst_nb_present()
    monkeypatch.setenv(quoted.MYST_NB_ENV, "maybe")
    with pytest.raises(ValueError, match="CLIPADAPT_MYST_NB='maybe'.*absent"):
        quoted.myst_nb_present()


def test_values_are_formatted_as_the_book_pastes_them():
    """The line under a cell shows what myst-nb's {glue:text} role would paste."""
    variables = pytest.importorskip("myst_nb.core.variables")
    for text, spec in [("32.94117647", ".1f"), ("-1.25", "+.1f"), ("0.5", ".0f"), ("12", ""),
                       ("'8,390,656'", ""), ("'3/3'", ""), ("61.7", ".0f"), ("7", "d")]:
        assert quoted.format_text(text, spec) == variables.format_plain_text(text, spec)


def test_roles_are_read_as_myst_nb_splits_them():
    md = "R@1 {glue:text}`r1_none:.1f`%, {glue:text}`n_pairs` pairs, {glue:md}`sentence`"
    assert quoted.roles(md) == [("r1_none", ".1f"), ("n_pairs", "")]
    assert quoted.entry("r1_none", "32.94", [".1f", ".0f"]) == "r1_none = 32.9 / 33"
    assert quoted.entry("not_quoted_anywhere", "6.799174785614014") == "not_quoted_anywhere = 6.799"
    assert quoted.entry("not_quoted_anywhere", "'5/5'") == "not_quoted_anywhere = 5/5"


def test_glue_without_myst_nb_prints_named_values_and_hides_records(monkeypatch, capsys):
    """Outside IPython the line is printed at once; experiments.Lab's records never are."""
    monkeypatch.setenv(quoted.MYST_NB_ENV, "absent")
    viz.glue("experiment:ch07/label-softcpt:seed=0", json.dumps({"accuracy": 0.5}))
    viz.glue("r1_none", 32.94117647)
    out = capsys.readouterr().out
    assert out.startswith(quoted.HEADER) and "r1_none = " in out
    assert "experiment" not in out


def test_in_a_notebook_the_cells_values_show_together_and_paragraphs_as_markdown(monkeypatch):
    """In IPython, a cell's glued numbers show in one line when the cell ends; a glued
    paragraph (chapter 8's guide) shows at once, as markdown; a figure glued with
    display=True shows as it would in the book."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import Markdown
    from IPython.utils.capture import capture_output

    monkeypatch.setenv(quoted.MYST_NB_ENV, "absent")
    shell = InteractiveShell.instance()
    try:
        with capture_output() as cap:
            viz.glue("guide", Markdown("- zero-shot costs nothing"))
            viz.glue("nata_m4", "8,390,656")
            viz.glue("r1_none", 32.94117647)
            viz.glue("experiment:ch07/label-softcpt:seed=0", "{}")
            assert len(cap.outputs) == 1  # the paragraph; the numbers wait for the cell's end
            shell.events.trigger("post_run_cell", None)
    finally:
        InteractiveShell.clear_instance()
    guide, numbers = cap.outputs
    assert guide.data["text/markdown"] == "- zero-shot costs nothing"
    spec = quoted.formats().get("r1_none", [""])[0]
    assert numbers.data["text/plain"] == (f"{quoted.HEADER}nata_m4 = 8,390,656; "
                                          f"r1_none = {quoted.format_text('32.94117647', spec)}")
    assert numbers.metadata[quoted.METADATA_KEY] == {"nata_m4": "'8,390,656'", "r1_none": "32.94117647"}


def test_formats_come_from_the_chapters_in_a_clone_and_from_the_package_elsewhere(tmp_path, monkeypatch):
    """In a clone the formats are read from the chapters as they are now; an installed
    package (no chapters beside it, as on Colab) reads the file that `pin` wrote at the
    release, which holds what the chapters held then."""
    assert quoted.formats() == book.quoted_formats(ROOT)
    import shutil

    shutil.copy(ROOT / "_toc.yml", tmp_path / "_toc.yml")
    shutil.copytree(ROOT / "book", tmp_path / "book")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    assert book.write_formats(tmp_path) and not book.write_formats(tmp_path)  # written once
    shipped = json.loads((tmp_path / "lib" / "clipadapt" / quoted.FORMATS_FILE.name).read_text())
    assert shipped == book.quoted_formats(ROOT)
    monkeypatch.setattr(quoted, "CHAPTERS", tmp_path / "absent")
    monkeypatch.setattr(quoted, "FORMATS_FILE", tmp_path / "lib" / "clipadapt" / quoted.FORMATS_FILE.name)
    quoted.shipped_formats.cache_clear()
    try:
        assert quoted.chapter_markdown(quoted.CHAPTERS) == []
        assert quoted.formats() == shipped
    finally:
        quoted.shipped_formats.cache_clear()


def test_a_captioned_cell_must_show_one_output():
    """myst-nb puts every output a captioned cell shows in a figure of the cell's name: a
    second one (a cell ending in an expression) repeats the name, which the strict build
    refuses; printed text and glued values are not shown outputs."""
    record = {"output_type": "display_data", "data": {"application/papermill.record/text/plain": "1"}}
    table = {"output_type": "display_data", "data": {"text/html": "<table/>", "text/plain": "t"}}
    cell = {"cell_type": "code", "metadata": {"mystnb": {"figure": {"name": "fig-ch07-means", "caption": "c"}}},
            "outputs": [record, {"output_type": "stream", "name": "stdout", "text": "x"}, table]}
    assert citations.shown_outputs(cell) == [table] and citations.figure_problems({"cells": [cell]}) == []
    cell["outputs"].append({"output_type": "execute_result", "data": {"text/plain": "None"}})
    assert citations.figure_problems({"cells": [cell]}) == ["fig-ch07-means: 2 outputs shown (text/plain last)"]
    assert citations.drawn_figures({"cells": [{**cell, "outputs": [record]}]}) == set()
