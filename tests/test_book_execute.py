"""clipadapt.book.execute on books of one small chapter: a hanging cell executed again, a
chapter that always hangs or fails named, the replies read through the wakeful client. Apart
from tests/test_book.py, whose worker executes the whole book first, so that pytest-xdist can
run these on the other worker."""

from pathlib import Path

import nbformat
import pytest

from clipadapt import book

pytestmark = pytest.mark.book


def _one_chapter_book(root: Path, name: str, *sources: str) -> Path:
    """A book of one chapter whose code cells are ``sources`` (after the parameters cell)."""
    (root / "notebooks").mkdir(parents=True)
    (root / "book").mkdir()
    (root / "book" / "intro.md").write_text("# Intro\n")
    (root / "_config.yml").write_text("title: t\n")
    (root / "_toc.yml").write_text(f"format: jb-book\nroot: book/intro\nchapters:\n  - file: notebooks/{name}\n")
    params = nbformat.v4.new_code_cell("profile = None")
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[params, *(nbformat.v4.new_code_cell(src) for src in sources)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "notebooks" / f"{name}.ipynb")
    return root


def test_a_chapter_whose_cell_hangs_is_executed_again_once(tmp_path):
    # the first run's cell outlives the timeout (as a cell whose reply was lost would); the
    # second run, from the source again, finds the marker and finishes
    hang_once = ("import pathlib, time\nmark = pathlib.Path('ran-once')\n"
                 "if not mark.exists():\n    mark.touch()\n    time.sleep(60)\nresult = 'second run'")
    root = _one_chapter_book(tmp_path / "src", "slow", hang_once, "print(result)")
    logged = []
    done = book.execute("tiny", dest=tmp_path / "exec", root=root, timeout=5, log=logged.append)
    assert [Path(e.notebook).name for e in done] == ["slow.ipynb"]
    assert any("ran past 5 s" in line and "again (2 of 3)" in line for line in logged), logged
    nb = nbformat.read(tmp_path / "exec" / "notebooks" / "slow.ipynb", as_version=4)
    assert "second run" in nb.cells[-1].outputs[0]["text"]


def test_chapters_are_executed_through_the_wakeful_client(tmp_path, monkeypatch):
    # what ends the stalls of lost socket wake-ups (tests/test_kernels.py) must be what
    # papermill's client actually reads its replies and outputs with
    from clipadapt import kernels

    read = []
    stock = kernels.WakefulChannel.get_msg

    async def counted(self, timeout=None):
        msg = await stock(self, timeout=timeout)
        read.append(msg["msg_type"])
        return msg

    monkeypatch.setattr(kernels.WakefulChannel, "get_msg", counted)
    root = _one_chapter_book(tmp_path / "src", "plain", "print('hello')")
    book.execute("tiny", dest=tmp_path / "exec", root=root, log=lambda *_: None)
    assert "execute_reply" in read and "stream" in read, read


def test_a_chapter_that_hangs_every_time_is_named(tmp_path):
    root = _one_chapter_book(tmp_path / "src", "stuck", "import time\ntime.sleep(60)")
    with pytest.raises(book.NotebookError, match=r"notebooks/stuck.ipynb: a cell ran past 3 s in each of 3 executions"):
        book.execute("tiny", dest=tmp_path / "exec", root=root, timeout=3, log=lambda *_: None)


def test_a_failing_notebook_is_named_with_its_cell(tmp_path):
    root = _one_chapter_book(tmp_path / "src", "bad", "x = 1", "raise ValueError('broken on purpose')")
    with pytest.raises(book.NotebookError, match=r"notebooks/bad.ipynb failed in cell \d.*ValueError: broken on purpose"):
        book.execute("tiny", dest=tmp_path / "exec", root=root)
    # the committed source is untouched: no outputs written into it
    assert not nbformat.read(root / "notebooks" / "bad.ipynb", as_version=4).cells[1].outputs
