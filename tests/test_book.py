"""Every chapter executed by papermill under the tiny profile, then the book built from the
executed copies with warnings as errors, and the rendered pages checked."""

import re
from pathlib import Path

import nbformat
import pytest

from clipadapt import book

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.book


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    executed = book.execute("tiny", dest=out / "exec", root=ROOT)
    html = book.build_html(src=out / "exec", out=out, root=ROOT)
    return {"exec": out / "exec", "html": html, "executed": executed}


def test_every_chapter_executed(built):
    names = {Path(e.notebook).name for e in built["executed"]}
    assert names == {p.name for p in book.toc_notebooks(ROOT)}


@pytest.mark.parametrize("nb_path", book.toc_notebooks(ROOT), ids=lambda p: p.stem)
def test_executed_notebook_has_no_errors_and_ran_tiny(built, nb_path):
    nb = nbformat.read(built["exec"] / nb_path, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "profile = \"tiny\"" in injected[0].source
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            assert out.output_type != "error", f"cell {i}: {out.get('ename')}: {out.get('evalue')}"
            if out.output_type == "stream" and out.name == "stderr":
                assert "Traceback" not in out.text and "Warning" not in out.text, f"cell {i}: {out.text[:500]}"


@pytest.mark.parametrize("nb_path", book.toc_notebooks(ROOT), ids=lambda p: p.stem)
def test_chapter_page_shows_figures_and_no_errors(built, nb_path):
    page = built["html"] / nb_path.with_suffix(".html")
    html = page.read_text()
    images = re.findall(r'<img[^>]+src="([^"]+\.png)"', html)
    assert len(images) >= 3, f"{page.name} shows {len(images)} figures"
    for src in images:
        assert (page.parent / src).resolve().exists(), src
    assert "Traceback (most recent call last)" not in html
    assert "output traceback" not in html and "output error" not in html
    assert "colab.research.google.com" in html  # the launch button
    assert "No pretrained weights" not in html


def test_book_front_and_back_matter(built):
    html = built["html"]
    assert (html / "index.html").exists()
    bib = (html / "book" / "bibliography.html").read_text().lower()  # the style sets titles in sentence case
    for key in ("Learning Transferable Visual Models", "VoP", "TempMe", "Token Merging", "CLIP4Clip",
                "Visual Prompt Tuning", "LoRA", "Learning to Prompt", "Structured Semantic Prior", "Soft Context Sharing"):
        assert key.lower() in bib, key


def test_a_failing_notebook_is_named_with_its_cell(tmp_path):
    import nbformat

    root = tmp_path / "src"
    (root / "notebooks").mkdir(parents=True)
    (root / "book").mkdir()
    (root / "book" / "intro.md").write_text("# Intro\n")
    (root / "_config.yml").write_text("title: t\n")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: notebooks/bad\n")
    params = nbformat.v4.new_code_cell("profile = None")
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell("x = 1"),
                                         nbformat.v4.new_code_cell("raise ValueError('broken on purpose')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "notebooks" / "bad.ipynb")
    with pytest.raises(book.NotebookError, match=r"notebooks/bad.ipynb failed in cell \d.*ValueError: broken on purpose"):
        book.execute("tiny", dest=tmp_path / "exec", root=root)
    # the committed source is untouched: no outputs written into it
    assert not nbformat.read(root / "notebooks" / "bad.ipynb", as_version=4).cells[1].outputs


CHROMIUM = next((c for c in ("chromium", "chromium-browser", "google-chrome") if __import__("shutil").which(c)), None)


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium here (Debian package 'chromium')")
def test_chapter_pages_render_in_a_browser(built, tmp_path):
    """A headless Chromium screenshot of each chapter: the page must paint, not stay blank."""
    import subprocess

    import numpy as np
    from PIL import Image

    for nb_path in book.toc_notebooks(ROOT):
        page = built["html"] / nb_path.with_suffix(".html")
        shot = tmp_path / f"{nb_path.stem}.png"
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1300,6000",
                        f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
        pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
        assert pixels.shape == (6000, 1300)
        # text, code and figures: many rows of the page differ from the background
        busy_rows = (pixels.std(axis=1) > 10).mean()
        assert busy_rows > 0.3, f"{page.name}: only {busy_rows:.0%} of the screenshot's rows hold anything"
