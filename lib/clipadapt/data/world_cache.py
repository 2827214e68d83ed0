"""A folder of rendered synthetic video worlds that many work folders share.

Rendering a split of the video world writes one H.264 file per video through ffmpeg (about
0.09 s each: 360 files for the tiny profile's sets), and every work folder used to render its
own. Where ``CLIPADAPT_WORLD_CACHE`` names a folder, a split rendered once is filed there
under its settings and later copied (not linked: a work folder's files stay its own) into
each work folder that asks for the same settings; the test suite's workers and the book's
kernels share one. Rendering is deterministic, so a run reads the same bytes either way.
Filing is atomic: a split is renamed into place complete, and of two processes filing the
same split the second keeps the first's. The key is the split's settings, not the code that
renders it: a shared folder belongs to one version of the library (the tests make one per
session).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

CACHE_ENV = "CLIPADAPT_WORLD_CACHE"
MANIFEST = "manifest.json"


def folder() -> Path | None:
    """The shared folder, where ``CLIPADAPT_WORLD_CACHE`` names one."""
    value = os.environ.get(CACHE_ENV, "").strip()
    return Path(value) if value else None


def key(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _copy_files(src: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for path in src.iterdir():
        target = dest / path.name
        shutil.copyfile(path, target)


def render(where: Path, settings: dict, write: Callable[[Path], list[dict]]) -> list[dict]:
    """The records of the split ``settings`` describe, its files in ``where``: copied from the
    shared folder where it holds them, else written by ``write(where)`` (which returns the
    records) and filed there. Without a shared folder, ``write(where)`` alone."""
    shared = folder()
    if shared is None:
        return write(where)
    filed = shared / key(settings)
    manifest = filed / MANIFEST
    if manifest.is_file():
        saved = json.loads(manifest.read_text())
        if saved.get("settings") == settings:
            _copy_files(filed, where)
            (where / MANIFEST).unlink()  # the caller writes the work folder's own manifest
            return saved["records"]
    records = write(where)
    shared.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{filed.name}-", dir=shared))
    try:
        _copy_files(where, tmp)
        (tmp / MANIFEST).unlink(missing_ok=True)
        (tmp / MANIFEST).write_text(json.dumps({"settings": settings, "records": records}))
        try:
            os.rename(tmp, filed)
        except OSError:  # filed meanwhile by another process: keep that one
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return records
