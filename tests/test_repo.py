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
    assert f"git+{book.repository_url(ROOT)}@{book.release_ref(ROOT)}" in want
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
    assert ".github/workflows/gpu.yml" in (ROOT / "README.md").read_text()


def test_ci_installs_chromium_for_the_browser_test():
    run = (ROOT / ".ci" / "run").read_text()
    assert "apt-get install" in run and "chromium" in run and "CLIPADAPT_REQUIRE_BROWSER=1" in run
