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
    wanted = {_name(r) for r in project["dependencies"]} | {_name(r) for r in project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    named = {_name(r) for r in pip if not r.startswith("-e")}
    assert named == wanted
    # and with the same version ranges
    ranges = {_name(r): r.replace(" ", "") for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    assert {_name(r): r.replace(" ", "") for r in pip if not r.startswith("-e")} == ranges


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


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
    badge = f"https://colab.research.google.com/github/{repo}/blob/main/notebooks/{path.name}"
    assert badge in first.source, f"{path.name}: the Colab badge must point at {badge}"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "profile" in tagged[0].source
    setup = "\n".join(c.source for c in nb.cells[:4] if c.cell_type == "code")
    assert "google.colab" in setup and f"git+{url}" in setup
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for other in re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", cell.source):
                assert other == url or not other.startswith("https://github.com/efficient"), other


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
