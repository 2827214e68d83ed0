"""Execute the chapters with papermill under a profile, then build the book.

``python -m clipadapt.book build`` (what ``make book`` runs):

1. copies the book's sources (``_config.yml``, ``_toc.yml``, ``book/``, ``notebooks/``)
   into ``_build/exec``, so that the committed notebooks stay free of outputs, and turns
   the chapters' citation links into ``{cite}`` roles there (:mod:`clipadapt.citations`);
2. executes every notebook named in ``_toc.yml`` there with papermill, injecting
   ``profile`` into the cell tagged ``parameters``; a notebook that raises stops the
   command with the notebook's name, the failing cell and the error;
3. turns the executed chapters' links to figures into ``{numref}`` roles ("Fig. 7"), or into
   their words where the profile drew no such figure
   (:func:`clipadapt.citations.number_figures`), and builds the HTML book from the
   executed copies with Jupyter Book 1.x (``execute: off``), warnings as errors with
   ``--strict``, into ``_build/html``.

``python -m clipadapt.book execute`` does step 1-2 only; ``... html`` step 3 only.

``python -m clipadapt.book pin`` writes the one Colab install cell (:func:`install_cell_source`)
and the Colab badge, both pinned to the release ``v<version of pyproject.toml>``, into every
chapter of ``_toc.yml`` (a test checks that every chapter has them).

``pin`` also writes the format of every ``{glue:text}`` role of the chapters into the package
(:data:`clipadapt.quoted.FORMATS_FILE`; ``python -m clipadapt.book formats`` does only that),
so that a chapter run on Colab, without myst-nb, shows each quoted number as its prose
formats it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from . import citations, profiles, quoted
from .core.files import atomic_path
from .training.loop import STATIC_ENV

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("_config.yml", "_toc.yml", "book", "notebooks")


INSTALL_TAG = "colab-install"
INSTALL_CELL = """\
# On Colab only: install clipadapt at this chapter's release
# (Colab's own torch, numpy and widgets stay).
import sys

if "google.colab" in sys.modules:
    import subprocess

    repo = "{repo}"
    spec = f"clipadapt @ git+https://{{repo}}@{ref}"
    pip = [sys.executable, "-m", "pip", "install", "-q", spec]
    subprocess.run(pip, check=True)"""


def release_ref(root: Path = ROOT) -> str:
    """The git tag of the release the chapters pin: ``v`` + the version in ``pyproject.toml``."""
    match = re.search(r'^version\s*=\s*"([^"]+)"', (root / "pyproject.toml").read_text(), re.M)
    if not match:
        raise ValueError(f"{root / 'pyproject.toml'} has no version = \"...\" line")
    return f"v{match.group(1)}"


def repository_url(root: Path = ROOT) -> str:
    return yaml.safe_load((root / "_config.yml").read_text())["repository"]["url"]


def install_cell_source(root: Path = ROOT) -> str:
    """The install cell every chapter carries, pinned to :func:`release_ref`."""
    repo = repository_url(root).removeprefix("https://")
    return INSTALL_CELL.format(repo=repo, ref=release_ref(root))


def badge_url(notebook: str | Path, root: Path = ROOT) -> str:
    """The Colab link of a chapter: the notebook as it is at the pinned release."""
    repo = repository_url(root).removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{repo}/blob/{release_ref(root)}/notebooks/{Path(notebook).name}"


def pin(root: Path = ROOT, log=print) -> list[Path]:
    """Write the pinned install cell and Colab badge into every chapter, and the chapters'
    quoted formats into the package (:func:`write_formats`); returns the changed chapters."""
    import nbformat  # lazy: nbformat is not a dependency of clipadapt (the book and dev extras bring it)

    changed = []
    for rel in toc_notebooks(root):
        path = root / rel
        nb = nbformat.read(path, as_version=4)
        before = nbformat.writes(nb)
        first = nb.cells[0]
        first.source = re.sub(r"https://colab\.research\.google\.com/github/[^)\s\"]+?/notebooks/[\w.-]+\.ipynb",
                              badge_url(rel, root), first.source)
        cell = nbformat.v4.new_code_cell(install_cell_source(root))
        cell.metadata["tags"] = [INSTALL_TAG]
        old = [i for i, c in enumerate(nb.cells[:4]) if c.cell_type == "code"
               and (INSTALL_TAG in c.metadata.get("tags", []) or "google.colab" in c.source)]
        if old:
            cell["id"] = nb.cells[old[0]].get("id", cell.get("id"))
            nb.cells[old[0]] = cell
        else:
            nb.cells.insert(1, cell)
        if nbformat.writes(nb) != before:
            nbformat.write(nb, path)
            changed.append(rel)
            log(f"pinned {rel} to {release_ref(root)}")
    if write_formats(root):
        log(f"wrote the chapters' quoted formats into {quoted.FORMATS_FILE.name}")
    return changed


def quoted_formats(root: Path = ROOT) -> dict[str, list[str]]:
    """Every name the chapters' prose quotes with ``{glue:text}``, with its format specs."""
    import nbformat  # lazy: nbformat is not a dependency of clipadapt (the book and dev extras bring it)

    texts = [c.source for rel in toc_notebooks(root) for c in nbformat.read(root / rel, as_version=4).cells
             if c.cell_type == "markdown"]
    return quoted.formats_of(texts)


def write_formats(root: Path = ROOT) -> bool:
    """Write :func:`quoted_formats` into the package of ``root`` (the file
    :data:`clipadapt.quoted.FORMATS_FILE` is there); returns whether it changed."""
    path = root / "lib" / "clipadapt" / quoted.FORMATS_FILE.name
    found = quoted_formats(root)  # one name a line, for readable diffs
    text = "{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in found.items()) + "\n}\n"
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    quoted.shipped_formats.cache_clear()
    return True


class NotebookError(RuntimeError):
    """A chapter raised while papermill executed it."""


@dataclass
class Executed:
    notebook: str
    seconds: float


def toc_files(root: Path = ROOT) -> list[str]:
    """Every file named in ``_toc.yml``, in reading order (without suffix)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []):
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(toc)
    return files


def toc_notebooks(root: Path = ROOT) -> list[Path]:
    """The notebooks of ``_toc.yml``, as paths relative to ``root``."""
    out = []
    for f in toc_files(root):
        path = root / f
        candidates = [path] if path.suffix else [path.with_suffix(".ipynb"), path.with_suffix(".md")]
        found = [p for p in candidates if p.exists()]
        if not found:
            raise FileNotFoundError(f"_toc.yml names {f}, but none of {[str(p) for p in candidates]} exists")
        if found[0].suffix == ".ipynb":
            out.append(found[0].relative_to(root))
    return out


def pending(path: Path, profile: str) -> str | None:
    """Why the chapter at ``path`` does not run under ``profile`` yet, or ``None`` when it
    does: the notebook's ``metadata.clipadapt.pending[profile]`` (a sentence naming what is
    missing, e.g. a dataset without a fixture). ``execute`` skips such chapters and says why."""
    import nbformat  # lazy: nbformat is not a dependency of clipadapt (the book and dev extras bring it)

    meta = nbformat.read(str(path), as_version=4).metadata.get("clipadapt", {})
    return meta.get("pending", {}).get(profile)


def copy_sources(dest: Path, root: Path = ROOT, keep: set[str] = frozenset()) -> Path:
    """Copy the book's sources to ``dest``, replacing what was there, except the executed
    notebooks named in ``keep`` (relative paths) that ``dest`` already holds."""
    kept = {}
    for rel in keep:
        if (dest / rel).exists():
            kept[rel] = (dest / rel).read_bytes()
    # the chapters' run store stays (clipadapt.experiments.store: a later chapter reads the
    # runs an earlier one filed; a run of other code is never found in it)
    store, aside = dest / "notebooks" / "runs", dest.parent / f".{dest.name}-runs"
    shutil.rmtree(aside, ignore_errors=True)
    held = store.rename(aside) if store.is_dir() else None
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "notebooks").mkdir(parents=True)
    if held is not None:
        held.rename(store)
    for name in SOURCES:
        src = root / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
                            dirs_exist_ok=True)
        else:
            shutil.copy2(src, dest / name)
    for path in sorted((dest / "notebooks").glob("*.ipynb")):
        book_citations(path)
    for rel, data in kept.items():
        (dest / rel).write_bytes(data)
    return dest


def book_citations(path: Path) -> bool:
    """Turn the citation links of the notebook at ``path`` (a copy to build) into the
    ``{cite}`` roles the book renders (:func:`clipadapt.citations.to_roles`); returns
    whether it changed."""
    def to_roles(text: str) -> str:
        try:
            return citations.to_roles(text)
        except ValueError as err:
            raise ValueError(f"{path.name}: {err}") from None

    return citations.rewrite_markdown(path, to_roles)


# Seconds one cell may run under the CPU-scale profiles (their longest cells take about 75 s
# on 2 cores). A cell still running at the limit fails the chapter, which is then executed
# again from its source, ATTEMPTS times in all. No limit under colab and paper, whose
# training cells may rightly run for an hour on a GPU. The limit once also ended waits that
# were not the chapter's fault (a finished interact cell, an idle kernel, papermill asleep
# until the limit: a lost socket wake-up); clipadapt.kernels' client now ends those within
# a second, under every profile.
CELL_TIMEOUT_S = {"tiny": 300, "colab-smoke": 300}
ATTEMPTS = 3


def execute(profile: str | None = None, dest: Path | None = None, notebooks: list[str] | None = None,
            root: Path = ROOT, timeout: int | None = None, log=print) -> list[Executed]:
    """Copy the sources to ``dest`` and execute the chapters there with papermill.

    ``timeout``: seconds a cell may run (default: ``CELL_TIMEOUT_S`` of the profile, else
    none); a chapter that passes it is executed again from its source, ``ATTEMPTS`` times
    in all."""
    # lazy: papermill and nbclient come with the book extra, which only this command needs
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError
    from papermill.exceptions import PapermillExecutionError

    from .kernels import WakefulKernelManager  # lazy: kernels imports jupyter_client, of the book extra

    prof = profiles.get(profile)
    timeout = timeout if timeout is not None else CELL_TIMEOUT_S.get(prof.name)
    everything = toc_notebooks(root)
    chosen = everything
    if notebooks:
        wanted = {Path(n).stem for n in notebooks}
        unknown = wanted - {p.stem for p in everything}
        if unknown:
            raise ValueError(f"not chapters of _toc.yml: {sorted(unknown)}; chapters are {[p.stem for p in everything]}")
        chosen = [p for p in everything if p.stem in wanted]
    # executing some chapters keeps the executed copies of the others
    keep = {str(p) for p in everything if p not in chosen}
    dest = copy_sources(dest or root / "_build" / "exec", root, keep=keep)
    done = []
    env_before = {k: os.environ.get(k) for k in (profiles.ENV_VAR, STATIC_ENV, quoted.MYST_NB_ENV)}
    os.environ[profiles.ENV_VAR] = prof.name  # seen by the kernel, for code outside the parameters cell
    os.environ[STATIC_ENV] = "1"  # progress as printed summaries, not widgets frozen at 0%
    os.environ[quoted.MYST_NB_ENV] = "present"  # the book's pages paste the glued values themselves
    try:
        for rel in chosen:
            path = dest / rel
            why = pending(path, prof.name)
            if why:
                log(f"skipping {rel}: not yet runnable under profile {prof.name!r}: {why}")
                continue
            log(f"executing {rel} under profile {prof.name!r} ...")
            start = time.perf_counter()
            try:
                for attempt in range(1, ATTEMPTS + 1):
                    try:
                        pm.execute_notebook(
                            str(path), str(path), parameters={"profile": prof.name}, cwd=str(path.parent),
                            kernel_name="python3", progress_bar=False, execution_timeout=timeout,
                            report_mode=False, log_output=False, kernel_manager_class=WakefulKernelManager,
                        )
                        break
                    except CellTimeoutError as err:
                        if attempt == ATTEMPTS:
                            raise NotebookError(f"{rel}: a cell ran past {timeout} s in each of {ATTEMPTS} "
                                                f"executions ({err}); the executed copy is {path}") from None
                        log(f"  {rel}: a cell ran past {timeout} s ({err}); executing the chapter again "
                            f"({attempt + 1} of {ATTEMPTS})")
                        shutil.copy2(root / rel, path)
                        book_citations(path)
            except PapermillExecutionError as err:
                first = (err.source or "").strip().splitlines()[:1]
                raise NotebookError(
                    f"{rel} failed in cell {err.cell_index} (execution count {err.exec_count}"
                    f"{', starting ' + repr(first[0][:60]) if first else ''}): {err.ename}: {err.evalue}\n"
                    f"the executed copy, with the traceback, is {path}"
                ) from None
            seconds = time.perf_counter() - start
            log(f"  {rel} executed in {seconds:.1f} s")
            done.append(Executed(str(rel), seconds))
    finally:
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return done


def build_html(src: Path | None = None, out: Path | None = None, root: Path = ROOT, strict: bool = True) -> Path:
    """Build the HTML book from the executed copies in ``src`` into ``out/_build/html``."""
    src = src or root / "_build" / "exec"
    out = out or root
    if not (src / "_toc.yml").exists():
        raise FileNotFoundError(f"{src} holds no executed book; run `python -m clipadapt.book execute` first")
    for path in sorted((src / "notebooks").glob("*.ipynb")):
        citations.number_figures(path)
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", str(src), "--path-output", str(out), "--builder", "html"]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"jupyter-book build failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}")
    html = out / "_build" / "html"
    return html


def write_times(done: list[Executed], path: str | Path, profile: str | None = None) -> Path:
    """A markdown table of the chapters' wall times, with the machine it ran on."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    lines = [f"profile `{profiles.get(profile).name}` on {platform.node()} ({gpu}, torch {torch.__version__})", "",
             "| chapter | seconds |", "|---|---:|"]
    lines += [f"| {Path(d.notebook).stem} | {d.seconds:.1f} |" for d in done]
    lines.append(f"| total | {sum(d.seconds for d in done):.1f} |")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return Path(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["build", "execute", "html", "pin", "formats"])
    parser.add_argument("--profile", default=None, help="tiny, colab or paper (default: $CLIPADAPT_PROFILE, "
                        "else colab on a GPU, tiny otherwise)")
    parser.add_argument("--notebook", action="append", help="execute only this chapter (repeatable)")
    parser.add_argument("--times", default=None, help="also write the chapters' wall times to this file (markdown)")
    args = parser.parse_args(argv)
    if args.command == "pin":
        pin()
        return 0
    if args.command == "formats":
        changed = write_formats()
        print(f"{quoted.FORMATS_FILE.name} {'written' if changed else 'was current'}")
        return 0
    try:
        if args.command in ("build", "execute"):
            done = execute(args.profile, notebooks=args.notebook)
            total = sum(d.seconds for d in done)
            print(f"executed {len(done)} notebooks in {total:.0f} s")
            if args.times:
                write_times(done, args.times, args.profile)
        if args.command in ("build", "html"):
            html = build_html()
            print(f"the book is built: open {html / 'index.html'}")
    except (NotebookError, RuntimeError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
