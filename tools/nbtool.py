"""Write a notebook from a plain-text source with cell markers, and clear outputs.

    python tools/nbtool.py build notebooks/src/01.py notebooks/01_clip_from_scratch.ipynb
    python tools/nbtool.py clear notebooks/*.ipynb

Source format: cells separated by lines ``# %% [markdown]``, ``# %%`` or
``# %% [parameters]`` (a code cell tagged ``parameters``); markdown lines start with ``# ``
or are ``#`` alone.
"""

import sys

import nbformat


def build(src: str, dest: str) -> None:
    cells, kind, lines = [], None, []

    def flush():
        if kind is None:
            return
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            text = "\n".join(l[2:] if l.startswith("# ") else ("" if l == "#" else l) for l in text.split("\n"))
            cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            cell = nbformat.v4.new_code_cell(text)
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
            cells.append(cell)

    for line in open(src).read().split("\n"):
        if line.startswith("# %%"):
            flush()
            kind = "markdown" if "[markdown]" in line else "parameters" if "[parameters]" in line else "code"
            lines = []
        else:
            lines.append(line)
    flush()
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["accelerator"] = "GPU"
    nb.metadata["colab"] = {"provenance": []}
    for i, c in enumerate(nb.cells):
        c["id"] = f"cell-{i:02d}"
    nbformat.write(nb, dest)


def clear(paths) -> None:
    for p in paths:
        nb = nbformat.read(p, as_version=4)
        for c in nb.cells:
            if c.cell_type == "code":
                c.outputs, c.execution_count = [], None
        nbformat.write(nb, p)


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(sys.argv[2], sys.argv[3])
    else:
        clear(sys.argv[2:])
