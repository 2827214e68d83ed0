"""The repository's own rules: notebooks without outputs, one repository address, the
conda environment naming the package's dependencies, the parameters cell."""

import re
from pathlib import Path

import nbformat
import pytest
import yaml

from clipadapt import book

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_names_the_same_packages_as_pyproject():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    every = project["dependencies"] + [r for extra in ("book", "dev") for r in project["optional-dependencies"][extra]]
    wanted = {_name(r) for r in every}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    named = {_name(r) for r in pip if not r.startswith("-e")}
    assert named == wanted
    # and with the same version ranges
    ranges = {_name(r): r.replace(" ", "") for r in every}
    assert {_name(r): r.replace(" ", "") for r in pip if not r.startswith("-e")} == ranges


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_is_short_and_links_every_page_for_contributors():
    """The README holds what the project is, the two commands, the three ways to read, a
    map and where to go next; the rest lives in the book's pages for contributors."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 120, "the README grew past a few screens: move the detail into book/"
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    part = next(p for p in toc["parts"] if p["caption"] == "For contributors")
    for chapter in part["chapters"]:
        assert f"({chapter['file']}.md)" in readme, f"the README does not link {chapter['file']}.md"
    for link in re.findall(r"\]\(([^)#]+\.md)\)", readme):
        assert (ROOT / link).is_file(), f"the README links {link}, which does not exist"
    for command in ("make book", "make test"):
        assert command in readme


def test_every_notebook_is_a_chapter_and_exists():
    chapters = {p.name for p in book.toc_notebooks(ROOT)}
    assert chapters == {p.name for p in NOTEBOOKS}
    assert chapters, "no chapters"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path.name} cell {i} has outputs"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_conventions(path):
    nb = nbformat.read(path, as_version=4)
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    repo = url.removeprefix("https://github.com/")
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    badge = book.badge_url(path, ROOT)
    assert badge.startswith(f"https://colab.research.google.com/github/{repo}/blob/")
    assert badge in first.source, f"{path.name}: the Colab badge must point at {badge} (python -m clipadapt.book pin)"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "profile" in tagged[0].source


@pytest.mark.parametrize("path", book.toc_notebooks(ROOT), ids=lambda p: p.stem)
def test_chapter_has_the_pinned_colab_install_cell(path):
    """One install cell, the same in every chapter of _toc.yml, pinned to the release
    (`python -m clipadapt.book pin` writes it), before the parameters cell."""
    nb = nbformat.read(ROOT / path, as_version=4)
    want = book.install_cell_source(ROOT)
    repo = book.repository_url(ROOT).removeprefix("https://")
    assert f'repo = "{repo}"' in want and f"git+https://{{repo}}@{book.release_ref(ROOT)}" in want
    cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source == want]
    assert len(cells) == 1, f"{path}: the Colab install cell is missing or differs; run python -m clipadapt.book pin"
    params = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    assert cells[0] < params and book.INSTALL_TAG in nb.cells[cells[0]].metadata.get("tags", [])
    others = [i for i, c in enumerate(nb.cells) if "pip" in c.source and "install" in c.source and i != cells[0]]
    assert not others, f"{path}: cells {others} install packages besides the one install cell"


def test_pin_writes_what_the_test_wants_and_is_idempotent(tmp_path):
    import shutil

    for name in ("_config.yml", "_toc.yml", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "book", tmp_path / "book")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    assert book.pin(tmp_path, log=lambda *_: None) == []  # the committed chapters are pinned
    text = (tmp_path / "pyproject.toml").read_text().replace('version = "', 'version = "9.', 1)
    (tmp_path / "pyproject.toml").write_text(text)
    changed = book.pin(tmp_path, log=lambda *_: None)
    assert len(changed) == len(book.toc_notebooks(ROOT))
    nb = nbformat.read(tmp_path / changed[0], as_version=4)
    assert "/blob/v9." in nb.cells[0].source and any("@v9." in c.source for c in nb.cells[:3])
    url = book.repository_url(tmp_path)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for other in re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", cell.source):
                assert other == url or not other.startswith("https://github.com/efficient"), other


def test_bibliography_keys_are_unique():
    """Branches that each cite a paper must not both add its entry (the build rejects repeats)."""
    keys = re.findall(r"^@\w+\{([^,]+),", (ROOT / "book" / "references.bib").read_text(), flags=re.M)
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    assert not repeated, f"book/references.bib repeats {repeated}"


def test_book_pages_exist():
    for f in book.toc_files(ROOT):
        assert any((ROOT / f).with_suffix(s).exists() for s in (".md", ".ipynb")), f


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parity_checks_are_asserted_not_printed(path):
    """A printed ``False`` would pass CI: every comparison a chapter makes between its
    inline code and the library is an ``assert``."""
    nb = nbformat.read(path, as_version=4)
    check = re.compile(r"\b(allclose|torch\.equal|array_equal)\(")
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            stripped = line.strip()
            if check.search(stripped) and not stripped.startswith(("assert ", "#")):
                pytest.fail(f"{path.name} cell {i}: a comparison outside an assert: {stripped}")


def test_gpu_workflow_executes_every_chapter_under_colab_and_keeps_artifacts():
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "gpu.yml").read_text())
    job = flow["jobs"]["chapters"]
    assert "self-hosted" in job["runs-on"] and "gpu" in job["runs-on"]
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert "clipadapt.book execute --profile colab --times" in runs
    upload = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert "_build/times-*.md" in upload["with"]["path"] and "_build/executed-*/" in upload["with"]["path"]
    assert "executed-colab" in runs
    assert ".github/workflows/gpu.yml" in (ROOT / "book" / "releasing.md").read_text()


def test_ci_installs_chromium_for_the_browser_test():
    run = (ROOT / ".ci" / "run").read_text()
    assert "apt-get install" in run and "chromium" in run and "CLIPADAPT_REQUIRE_BROWSER=1" in run


# --- How the chapters look on the page -------------------------------------------------
# `make format` formats every notebook's code to WIDTH columns (ruff) and clears outputs
# (nbconvert). The chapters below are formatted and their folded cells listed; a chapter
# joins both tables when it is formatted and its plumbing folded.
WIDTH = 80
FORMATTED = ("01_clip_from_scratch", "02_adapting_clip", "03_video_retrieval", "04_vop", "05_tempme",
             "06_scpnet", "07_softcpt", "08_choosing_a_method")
# chapter -> the ids of its cells tagged `hide-input` (the page shows their output, with a
# toggle for the code): plot layout, table formatting, glue plumbing -- never what teaches
FOLDED = {
    "01_clip_from_scratch": {"cell-16", "cell-21", "cell-23"},
    "02_adapting_clip": {"cell-14"},
    "03_video_retrieval": {"cell-15", "cell-15b", "cell-15c"},
    "04_vop": {"cell-17"},
    "05_tempme": {"cell-06"},
    "06_scpnet": {"scpnet-26"},
    "07_softcpt": {"cell-19", "cell-19c"},
    "08_choosing_a_method": {"cell-23"},
}
# what marks a teaching cell: an inline implementation (a def or class), a check of it
# against the library (an assert), or a run of a method (the driver, chapter 8's measure)
TEACHES = re.compile(r"^\s*(def |class |assert )|driver\.|costmap\.measure|\.fit\(", re.M)


@pytest.mark.parametrize("stem", FORMATTED)
def test_notebook_code_lines_fit_the_page(stem):
    nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    long = [(c.get("id"), n + 1, len(line)) for c in nb.cells if c.cell_type == "code"
            for n, line in enumerate(c.source.splitlines()) if len(line) > WIDTH]
    assert not long, f"{stem}: code lines over {WIDTH} characters (cell id, line, length): {long}; run make format"


@pytest.mark.parametrize("stem", sorted(FOLDED))
def test_folded_cells_are_the_listed_plumbing(stem):
    nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    folded = {c.get("id"): c for c in nb.cells if "hide-input" in c.metadata.get("tags", [])}
    assert set(folded) == FOLDED[stem], f"{stem}: folded cells {sorted(folded)}, the table says {sorted(FOLDED[stem])}"
    for cell_id, cell in folded.items():
        assert cell.cell_type == "code", f"{stem} {cell_id}: only code cells fold"
        match = TEACHES.search(cell.source)
        assert not match, f"{stem} {cell_id} teaches ({match.group(0).strip()!r}) and must stay open"


def test_the_teaching_cell_rule_catches_what_it_should():
    assert TEACHES.search("def loss(u, v):\n    return u @ v")
    assert TEACHES.search("x = 1\nassert torch.allclose(a, b)")
    assert TEACHES.search("r = driver.run('CoOp', clip, tok, task)")
    assert TEACHES.search("rows.append(costmap.measure(e, clip, tok, task, P))")
    assert not TEACHES.search("fig, ax = plt.subplots()\nviz.table(rows)")


def test_the_folded_and_formatted_chapters_exist():
    stems = {p.stem for p in NOTEBOOKS}
    assert set(FORMATTED) <= stems and set(FOLDED) <= stems


def test_make_format_formats_to_the_width_the_test_checks():
    make = (ROOT / "Makefile").read_text()
    assert f"ruff format --line-length {WIDTH} notebooks/" in make
    assert "jupyter nbconvert --clear-output --inplace" in make
    assert not (ROOT / "tools" / "nbtool.py").exists()  # jupytext and nbconvert do its job


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_recipe_cards_are_folded_and_follow_the_results(path):
    """A recipe card runs to a hundred lines or more: the page folds its output
    (`hide-output`) and prints it after the chapter's runs, not before them."""
    cells = nbformat.read(path, as_version=4).cells
    cards = [i for i, c in enumerate(cells) if c.cell_type == "code" and "recipes.card(" in c.source]
    runs = [i for i, c in enumerate(cells) if c.cell_type == "code" and re.search(r"\blab\.run\(", c.source)]
    for i in cards:
        assert "hide-output" in cells[i].metadata.get("tags", []), f"{path.stem} {cells[i].get('id')}: fold the card"
        assert not runs or i > max(runs), f"{path.stem} {cells[i].get('id')}: the card comes before the results"
