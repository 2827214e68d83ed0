"""Datasets fetched, checked and unpacked into one data root.

The ``colab`` and ``paper`` profiles read real datasets from the data root: the
``CLIPADAPT_DATA`` variable, else a per-user cache folder (``pooch.os_cache("clipadapt")``,
e.g. ``~/.cache/clipadapt``). :func:`ensure` makes a dataset present there; the loaders call
it every time (it returns at once when the dataset is there), and ``python -m
clipadapt.data.fetch NAME`` does it by hand. The files are listed in
:mod:`clipadapt.data.fetch.resources`.

* **Present** means what the chapter reads is there: every glob a resource declares
  (``Resource.wanted``: e.g. MSR-VTT's ``MSRVTT_Videos/*.mp4``, not only its CSV files)
  matches a file, no unpacking was cut short, and a single file without a published hash
  passes its content check. A dataset once marked complete that no longer is (a deleted
  videos folder, a split file that is an HTML page) is fetched again, with a message.
* **Downloads that recover** (:mod:`clipadapt.data.fetch.transfer`): bytes arrive in
  ``<root>/downloads/<name>-<url hash>.part``; a download that breaks off keeps them and the
  next call resumes it with an HTTP Range request where the server allows it, else starts
  again. An error answer (a 404) keeps nothing and the next call asks again.
* **Checked before kept** (:mod:`clipadapt.data.fetch.archives`): the published MD5 or SHA-256
  where there is one; otherwise the content (a JSON split file must parse and hold CoOp's
  ``train``/``val``/``test``; an archive must open and hold the members it should). A file
  that fails is deleted, nothing is marked complete, and the next call downloads it anew.
* **Atomic**: a file takes its final name (``os.replace``) only once checked; an archive is
  read whole into a temporary folder before its files are moved into place; the
  ``<name>.complete`` record (URL, hash, SHA-256, file count) is written last.
* Every failure raises :class:`DownloadError` naming the URL, the expected hash, the
  command that fetches the dataset and how to get the file by hand.

The CLIP weights of the ``colab`` profile are fetched by open_clip from the Hugging Face hub
(huggingface_hub's cache), not here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path, PurePosixPath
from typing import Callable
from urllib.parse import urlsplit

from ...core.files import DATA_ENV, atomic_path, data_root
from . import archives, transfer
from .resources import DATASETS, GENERAL10_RESOURCES, RESOURCES, Resource, command, dataset_of  # noqa: F401

__all__ = ["DATASETS", "DATA_ENV", "DownloadError", "RESOURCES", "Resource", "data_root", "ensure", "fetch",
           "is_complete", "main"]


class DownloadError(RuntimeError):
    """A dataset file could not be fetched or is not what it should be."""


def _record(root: Path, res: Resource) -> Path:
    return root / "downloads" / f"{res.name}.complete"


def _unpacking(root: Path, res: Resource) -> Path:
    """Exists while an archive's files are moved into place: a crash leaves it behind."""
    return root / "downloads" / f"{res.name}.unpacking"


def _part(root: Path, res: Resource, url: str) -> Path:
    """Where the bytes of ``url`` arrive (per URL: another URL never resumes them)."""
    return root / "downloads" / f"{res.name}-{hashlib.sha1(url.encode()).hexdigest()[:10]}.part"


def missing(res: Resource, root: str | Path | None = None) -> str | None:
    """Why ``res`` is not present under the data root, or ``None`` when it is."""
    root = data_root(root)
    if _unpacking(root, res).exists():
        return f"the unpacking of its archive was cut short ({_unpacking(root, res)} is left)"
    for pattern in res.wanted:
        if not any(p.is_file() for p in root.glob(pattern)):
            return f"no file matches {root / pattern}"
    if not res.archive and not res.known_hash:
        try:
            archives.check_file(root / res.target, res.target, res.keys)
        except archives.BadContent as err:
            return f"the cached file {root / res.target} {err}"
    return None


def is_complete(res: Resource, root: str | Path | None = None) -> bool:
    return missing(res, root) is None


def _fail(res: Resource, url: str, root: Path, why: str) -> DownloadError:
    expected = res.known_hash or "none published (the content is checked instead)"
    return DownloadError(
        f"{res.name}: {why}\n  URL: {url}\n  expected hash: {expected}\n"
        f"  to fetch it again: {command(res.name)}\n"
        f"  by hand: download {res.manual} (data root: {root}; set {DATA_ENV} to use another folder).\n"
        f"  Without the data, the 'tiny' profile runs every chapter on synthetic data.")


def _digests(path: Path) -> dict[str, str]:
    """MD5 and SHA-256 of a file, in one pass."""
    h = {"md5": hashlib.md5(), "sha256": hashlib.sha256()}
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            for d in h.values():
                d.update(block)
    return {k: d.hexdigest() for k, d in h.items()}


def _check_hash(digests: dict[str, str], known_hash: str) -> None:
    alg, _, want = known_hash.partition(":")
    if alg not in digests:
        raise ValueError(f"unsupported hash {known_hash!r}; use md5:... or sha256:...")
    if digests[alg] != want.lower():
        raise archives.BadContent(f"is corrupt or incomplete: its {alg} is {digests[alg]}, expected {want}")


def _name(url: str, res: Resource) -> str:
    return PurePosixPath(urlsplit(url).path).name or res.name


def _download(res: Resource, url: str, root: Path, part: Path, progress: bool) -> None:
    try:
        transfer.get(url, part, progress)
    except transfer.HTTPStatusError as err:
        raise _fail(res, url, root, f"the server answered {err}; nothing was kept, and the next call asks "
                                    "again") from err
    except transfer.BrokenOff as err:
        then = ("what arrived is kept, and the next call resumes it (or starts again where the server does not "
                "allow that)") if err.got else "the next call starts it again"
        raise _fail(res, url, root, f"the download broke off {err}; {then}") from err


def _keep(res: Resource, part: Path, root: Path, url: str) -> int:
    """Check the downloaded ``part`` and put its content in place; returns the file count."""
    fname, target = _name(url, res), root / res.target
    try:
        if res.archive:
            marker = _unpacking(root, res)
            with atomic_path(marker) as tmp:
                tmp.write_text(url)
            files = archives.unpack(part, target, res.select, res.strip, res.flat, res.inner)
        else:
            if not res.known_hash:
                archives.check_file(part, res.target, res.keys)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(part, target)
            files = 1
    except archives.BadContent as err:
        transfer.discard(part)
        _unpacking(root, res).unlink(missing_ok=True)  # nothing was moved: the unpacking reads everything first
        raise _fail(res, url, root, f"{fname} {err}; it was deleted, nothing is marked complete, and the next "
                                    "call downloads it anew") from err
    return files


def fetch(res: Resource, root: str | Path | None = None, url: str | None = None, progress: bool = True,
          keep_archive: bool = False, say: Callable[[str], None] = print) -> Path:
    """Make ``res`` present under the data root (see the module's notes); returns its target."""
    root = data_root(root)
    url = url or res.url
    why = missing(res, root)
    if why is None:
        return root / res.target
    stale = _record(root, res).is_file() or (not res.archive and (root / res.target).is_file())
    if stale:  # it was there once, or a bad file is in its place
        say(f"{res.name}: {why}; it is fetched again (and replaced once the new copy is checked) from "
            f"{url or '(no public download)'}")
        _record(root, res).unlink(missing_ok=True)
    if not url:
        raise _fail(res, "(none)", root, "there is no public download of this file")
    part = _part(root, res, url)
    _download(res, url, root, part, progress)
    digests = _digests(part)
    if res.known_hash:
        try:
            _check_hash(digests, res.known_hash)
        except archives.BadContent as err:
            transfer.discard(part)
            raise _fail(res, url, root, f"the downloaded file {err}; it was deleted, and the next call downloads "
                                        "it anew") from err
    files = _keep(res, part, root, url)
    with atomic_path(_record(root, res)) as tmp:
        tmp.write_text(json.dumps({"url": url, "known_hash": res.known_hash, "sha256": digests["sha256"],
                                   "files": files}))
    _unpacking(root, res).unlink(missing_ok=True)
    if res.archive and keep_archive:
        os.replace(part, root / "downloads" / f"{res.name}-{_name(url, res)}")
    transfer.discard(part)
    return root / res.target


def ensure(dataset: str, root: str | Path | None = None, progress: bool = True,
           resources: dict[str, Resource] | None = None, say: Callable[[str], None] = print) -> Path:
    """Fetch every file of ``dataset`` (a key of :data:`DATASETS`: ``eurosat``, ``msrvtt``
    or a General-10 folder) that is not present; returns ``<data root>/<dataset>``."""
    if dataset not in DATASETS:
        raise ValueError(f"no download for dataset {dataset!r}; known: {', '.join(DATASETS)}")
    table = resources or RESOURCES
    for name in DATASETS[dataset]:
        fetch(table[name], root, progress=progress, say=say)
    return data_root(root) / dataset


def _state(res: Resource, root: Path) -> str:
    if is_complete(res, root):
        return "present"
    parts = sorted((root / "downloads").glob(f"{res.name}-*.part"))
    got = sum(p.stat().st_size for p in parts)
    return f"partial ({got / 1e6:.1f} MB kept)" if got else "missing"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clipadapt.data.fetch", description="Fetch the real datasets of the colab and paper profiles.")
    parser.add_argument("dataset", nargs="*", help=f"one of {', '.join(DATASETS)}")
    parser.add_argument("--root", default=None, help=f"the data root (default: ${DATA_ENV}, else a cache folder)")
    parser.add_argument("--list", action="store_true", help="list every resource and whether it is present")
    args = parser.parse_args(argv)
    if args.list or not args.dataset:
        root = data_root(args.root)
        for res in RESOURCES.values():
            print(f"{res.name:20s} {_state(res, root):22s} {dataset_of(res.name):15s} {res.size:24s} "
                  f"{res.url or '(no public download)'}")
        print(f"data root: {root}")
        return 0
    try:
        for name in args.dataset:
            print(f"{name}: {ensure(name, args.root)}")
    except (DownloadError, ValueError) as err:
        print(f"error: {err}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
