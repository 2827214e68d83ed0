"""Run chapters as Colab runs them: each code cell in turn in a plain IPython kernel.

    python tools/colab_run.py NOTEBOOK.ipynb... --profile colab-smoke --data DIR [--out DIR]

No papermill and nothing of the ``book`` extra: the chapter's own ``parameters`` cell stays
as it is (``profile = None``), and the kernel finds the profile in ``$CLIPADAPT_PROFILE`` and
the data in ``$CLIPADAPT_DATA``, as a Colab reader's session would. Cells run with nbclient
(which Colab's runtime ships) through ``clipadapt.kernels``' client, in an empty working
folder (Colab's is ``/content``, where no file of the repository is). Under ``colab-smoke``
the data root gets the fixtures of ``clipadapt.data.fixtures`` first (the random ViT-B/32
weights are written there by the first chapter that loads them). The executed notebooks go
to ``--out``; a cell that raises stops its chapter, and the command exits with 1 after
printing the cell and the error. Used by ``make colab-check`` (book/testing.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from clipadapt import kernels, profiles
from clipadapt.core.files import DATA_ENV
from clipadapt.data import fixtures
from clipadapt.experiments import settings

FIXTURES = "colab-smoke"  # the one profile whose data clipadapt.data.fixtures writes
DONE = ".fixtures-written"


def prepare_data(profile: str, root: Path) -> None:
    """Under ``colab-smoke``, write the fixtures into ``root`` once (a marker file says so)."""
    if profile != FIXTURES or (root / DONE).exists():
        return
    fixtures.write_all(root, settings.of(profiles.get(profile)).suites.datasets)
    (root / DONE).write_text("clipadapt.data.fixtures.write_all\n")


def run_chapter(path: Path, out: Path, timeout: int) -> tuple[float, str | None]:
    """Execute ``path`` in a fresh kernel; writes the executed copy to ``out``.
    Returns (seconds, None) or (seconds, what failed)."""
    nb = nbformat.read(path, as_version=4)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="content-") as cwd:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=False,
                                kernel_manager_class=kernels.WakefulKernelManager,
                                resources={"metadata": {"path": cwd}})
        failure = None
        try:
            client.execute()
        except CellExecutionError as err:
            failure = str(err)[-3000:]
        except TimeoutError as err:
            failure = f"a cell ran past {timeout} s: {err}"
    nbformat.write(nb, out / path.name)
    return time.monotonic() - start, failure


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--profile", required=True, choices=sorted(profiles.PROFILES))
    ap.add_argument("--data", type=Path, required=True, help="the data root ($CLIPADAPT_DATA)")
    ap.add_argument("--out", type=Path, default=Path("_build/colab-run"), help="where executed copies go")
    ap.add_argument("--timeout", type=int, default=300, help="seconds a cell may run")
    args = ap.parse_args(argv)
    missing = [str(p) for p in args.notebooks if not p.is_file()]
    if missing:
        ap.error(f"no such notebook: {', '.join(missing)}")
    args.data.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    prepare_data(args.profile, args.data)
    os.environ[profiles.ENV_VAR] = args.profile  # the kernels inherit both
    os.environ[DATA_ENV] = str(args.data.resolve())
    failed = 0
    for path in args.notebooks:
        seconds, failure = run_chapter(path, args.out, args.timeout)
        print(f"{path.name}: {'FAILED' if failure else 'ran'} in {seconds:.0f} s under {args.profile} "
              f"(Python {sys.version.split()[0]}; executed copy: {args.out / path.name})", flush=True)
        if failure:
            print(failure, file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
