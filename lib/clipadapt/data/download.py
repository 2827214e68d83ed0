"""Datasets fetched, verified and unpacked into one data root.

The ``colab`` and ``paper`` profiles read real datasets from the data root: the
``CLIPADAPT_DATA`` variable, else a per-user cache folder (``pooch.os_cache("clipadapt")``,
e.g. ``~/.cache/clipadapt``). :func:`ensure` makes a dataset present there:

* pooch downloads each file with a progress bar into ``<root>/downloads``, to a temporary
  name first, checks its hash and only then keeps it, so a broken or interrupted download
  leaves nothing behind and the next call starts it again;
* an archive is unpacked into a temporary folder beside its target, the chosen members
  moved into place one by one (``os.replace``), and a ``.complete`` record written last;
  a dataset with that record is never fetched again;
* every failure (HTTP error, broken connection, wrong hash, unreadable archive) raises
  :class:`DownloadError`, naming the URL, the expected hash and how to get the file by hand.

Where the publisher gives no hash (CLIP4Clip's annotations, Frozen in Time's videos, CoOp's
split on Google Drive), the first download is trusted and its SHA-256 recorded in the
``.complete`` record; ``python -m clipadapt.data.download --list`` prints every resource.
The CLIP weights of the ``colab`` profile are fetched by open_clip from the Hugging Face hub
(huggingface_hub's cache), not here.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..files import atomic_path

DATA_ENV = "CLIPADAPT_DATA"


class DownloadError(RuntimeError):
    """A dataset file could not be fetched or is not what it should be."""


@dataclass(frozen=True)
class Resource:
    """One downloadable file and where its content goes under the data root.

    ``target`` is a folder for archives (members matching ``select`` go there, without
    the leading ``strip`` folder, or by file name alone when ``flat``) and a file path
    otherwise."""

    name: str
    url: str
    known_hash: str | None  # "md5:..." or "sha256:..."; None: none is published
    target: str
    manual: str  # how to get it by hand
    size: str  # what a reader downloads
    archive: bool = False
    select: tuple[str, ...] = ("*",)
    strip: str = ""
    flat: bool = False


RESOURCES = {r.name: r for r in (
    # the file, URL and MD5 that torchvision.datasets.EuroSAT downloads (a test keeps them equal)
    Resource("eurosat-images",
             "https://huggingface.co/datasets/torchgeo/eurosat/resolve/c877bcd43f099cd0196738f714544e355477f3fd/EuroSAT.zip",
             "md5:c8fa014336c82ac7804f0398fcb19387", "eurosat/2750",
             "EuroSAT.zip (the RGB images, 27,000 JPEGs of 64x64) unpacked so that the class folders lie in "
             "<data root>/eurosat/2750/", "about 90 MB", archive=True, select=("2750/*",), strip="2750/"),
    Resource("eurosat-split", "https://drive.google.com/uc?export=download&id=1Ip7yaCWFi0eaOFUGga0lUdVi_DDQth1o",
             None, "eurosat/split_zhou_EuroSAT.json",
             "CoOp's split_zhou_EuroSAT.json (linked from DATASETS.md of github.com/KaiyangZhou/CoOp) saved as "
             "<data root>/eurosat/split_zhou_EuroSAT.json", "a few MB"),
    Resource("msrvtt-annotations", "https://github.com/ArrowLuo/CLIP4Clip/releases/download/v0.0/msrvtt_data.zip",
             None, "msrvtt",
             "CLIP4Clip's msrvtt_data.zip (its README, 'Data Preparing'), with MSRVTT_data.json, "
             "MSRVTT_train.9k.csv and MSRVTT_JSFUSION_test.csv copied into <data root>/msrvtt/", "a few MB",
             archive=True, select=("*MSRVTT_data.json", "*MSRVTT_train.9k.csv", "*MSRVTT_JSFUSION_test.csv"),
             flat=True),
    Resource("msrvtt-videos", "https://www.robots.ox.ac.uk/~maxbain/frozen-in-time/data/MSRVTT.zip", None,
             "msrvtt/MSRVTT_Videos",
             "Frozen in Time's MSRVTT.zip (github.com/m-bain/frozen-in-time, 'Finetuning benchmarks'), its "
             "10,000 video<N>.mp4 files copied into <data root>/msrvtt/MSRVTT_Videos/",
             "several GB (all 10,000 videos; there is no smaller package)", archive=True, select=("*.mp4",),
             flat=True),
)}
DATASETS = {"eurosat": ("eurosat-images", "eurosat-split"), "msrvtt": ("msrvtt-annotations", "msrvtt-videos")}


def data_root(root: str | Path | None = None) -> Path:
    """``root``, else ``$CLIPADAPT_DATA``, else the per-user cache folder of clipadapt."""
    if root:
        return Path(root).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    import pooch

    return Path(pooch.os_cache("clipadapt"))


def _record(root: Path, res: Resource) -> Path:
    return root / "downloads" / f"{res.name}.complete"


def is_complete(res: Resource, root: str | Path | None = None) -> bool:
    return _record(data_root(root), res).is_file()


def _fail(res: Resource, url: str, root: Path, why: str) -> DownloadError:
    expected = res.known_hash or "none published (the first download is trusted and recorded)"
    return DownloadError(
        f"{res.name}: {why}\n  URL: {url}\n  expected hash: {expected}\n"
        f"  by hand: download {res.manual} (data root: {root}; set {DATA_ENV} to use another folder).\n"
        f"  Without the data, the 'tiny' profile runs every chapter on synthetic data.")


def _download(res: Resource, url: str, root: Path, progress: bool) -> Path:
    import pooch
    import requests

    fname = PurePosixPath(url.split("?")[0]).name if res.archive else PurePosixPath(res.target).name
    try:
        return Path(pooch.retrieve(url, res.known_hash, fname=f"{res.name}-{fname}", path=root / "downloads",
                                   progressbar=progress, downloader=pooch.HTTPDownloader(progressbar=progress,
                                                                                         timeout=60)))
    except requests.exceptions.HTTPError as err:
        raise _fail(res, url, root, f"the server answered {err.response.status_code if err.response is not None else err}") from err
    except requests.exceptions.RequestException as err:
        raise _fail(res, url, root, f"the download broke off ({type(err).__name__}: {err}); "
                                    f"calling again starts it anew") from err
    except ValueError as err:  # pooch: the hash differs (the file was deleted)
        raise _fail(res, url, root, f"the downloaded file is corrupt or incomplete: {err}") from err


def _unpack(res: Resource, archive: Path, root: Path, url: str) -> int:
    target = root / res.target
    target.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{res.name}-", dir=target.parent))
    moved = 0
    try:
        try:
            with zipfile.ZipFile(archive) as zf:
                members = [m for m in zf.infolist() if not m.is_dir()
                           and any(fnmatch.fnmatch(m.filename, p) for p in res.select)]
                for m in members:
                    rel = PurePosixPath(m.filename).name if res.flat else m.filename.removeprefix(res.strip)
                    if ".." in PurePosixPath(rel).parts or rel.startswith("/"):
                        raise DownloadError(f"{archive}: member {m.filename!r} would land outside {target}")
                    out = tmp / rel
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(m) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
        except (zipfile.BadZipFile, EOFError, OSError) as err:
            archive.unlink(missing_ok=True)
            raise _fail(res, url, root, f"{archive.name} is not a readable zip archive ({err}); it was deleted") from err
        if not members:
            raise _fail(res, url, root, f"{archive.name} holds no member matching {', '.join(res.select)}")
        for path in sorted(p for p in tmp.rglob("*") if p.is_file()):
            dest = target / path.relative_to(tmp)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)
            moved += 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return moved


def fetch(res: Resource, root: str | Path | None = None, url: str | None = None, progress: bool = True,
          keep_archive: bool = False) -> Path:
    """Make ``res`` present under the data root; returns its target path."""
    import pooch

    root = data_root(root)
    url = url or res.url
    if _record(root, res).is_file():
        return root / res.target
    path = _download(res, url, root, progress)
    if res.archive:
        files = _unpack(res, path, root, url)
    else:
        (root / res.target).parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, root / res.target)
        files = 1
    sha256 = pooch.file_hash(str(path if path.exists() else root / res.target))
    with atomic_path(_record(root, res)) as tmp:
        tmp.write_text(json.dumps({"url": url, "known_hash": res.known_hash, "sha256": sha256, "files": files}))
    if res.archive and not keep_archive:
        path.unlink(missing_ok=True)
    return root / res.target


def ensure(dataset: str, root: str | Path | None = None, progress: bool = True,
           resources: dict[str, Resource] | None = None) -> Path:
    """Fetch every file of ``dataset`` (``eurosat`` or ``msrvtt``) that is not yet complete;
    returns ``<data root>/<dataset>``."""
    if dataset not in DATASETS:
        raise ValueError(f"no download for dataset {dataset!r}; known: {', '.join(DATASETS)}")
    table = resources or RESOURCES
    for name in DATASETS[dataset]:
        fetch(table[name], root, progress=progress)
    return data_root(root) / dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fetch the real datasets of the colab and paper profiles.")
    parser.add_argument("dataset", nargs="*", help=f"one of {', '.join(DATASETS)}")
    parser.add_argument("--root", default=None, help=f"the data root (default: ${DATA_ENV}, else a cache folder)")
    parser.add_argument("--list", action="store_true", help="list every resource and whether it is present")
    args = parser.parse_args(argv)
    if args.list or not args.dataset:
        for res in RESOURCES.values():
            state = "present" if is_complete(res, args.root) else "missing"
            print(f"{res.name:20s} {state:8s} {res.size:24s} {res.url}")
        print(f"data root: {data_root(args.root)}")
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
