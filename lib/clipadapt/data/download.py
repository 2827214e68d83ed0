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

Archives are zip or tar (gzip or not), recognised by their content; an archive inside an
archive (Caltech-101's tar.gz in its zip) is named by ``inner``.

Where the publisher gives no hash (CLIP4Clip's annotations, Frozen in Time's videos, CoOp's
split files on Google Drive, FGVC-Aircraft's archive), the first download is trusted and its
SHA-256 recorded in the ``.complete`` record; ``python -m clipadapt.data.download --list``
prints every resource. The image archives of General-10 (SoftCPT, chapter 7) are the files
and MD5s that torchvision's dataset classes download (a test keeps them equal), except
UCF-101's middle frames (CoOp's zip on Google Drive) and Stanford Cars, which has no public
download any more (its error says how to get it by hand).
The CLIP weights of the ``colab`` profile are fetched by open_clip from the Hugging Face hub
(huggingface_hub's cache), not here.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..core.files import DATA_ENV, atomic_path, data_root


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
    inner: str = ""  # the member of the archive that is the archive to unpack ("": itself)


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


def _drive(file_id: str) -> str:
    return f"https://drive.google.com/uc?export=download&id={file_id}"


def _coop_split(name: str, folder: str, split: str, drive_id: str) -> Resource:
    """CoOp's split file of a dataset (a Google Drive link of CoOp's DATASETS.md; no hash published)."""
    return Resource(f"{name}-split", _drive(drive_id), None, f"{folder}/{split}",
                    f"CoOp's {split} (linked from DATASETS.md of github.com/KaiyangZhou/CoOp) saved as "
                    f"<data root>/{folder}/{split}", "a few MB")


def _images(name, url, md5, folder, what, size, select, strip, **kw) -> Resource:
    return Resource(f"{name}-images", url, md5 and f"md5:{md5}", folder,
                    f"{what} from {url or 'the publisher'}, unpacked so that <data root>/{folder} holds what CoOp's "
                    f"DATASETS.md shows", size, archive=True, select=select, strip=strip, **kw)


_VGG = "https://www.robots.ox.ac.uk/~vgg/data"
# General-10 (SoftCPT): the folders and files of CoOp's DATASETS.md; image archives and MD5s as
# torchvision.datasets downloads them (Caltech101, DTD, Flowers102, OxfordIIITPet, Food101, SUN397)
GENERAL10_RESOURCES = (
    _images("caltech101", "https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip",
            "3138e1922a9193bfa496528edbbc45d0", "caltech-101/101_ObjectCategories",
            "caltech-101.zip (its 101_ObjectCategories.tar.gz)", "about 140 MB",
            ("101_ObjectCategories/*",), "101_ObjectCategories/", inner="caltech-101/101_ObjectCategories.tar.gz"),
    _coop_split("caltech101", "caltech-101", "split_zhou_Caltech101.json", "1hyarUivQE36mY6jSomru6Fjd-JzwcCzN"),
    _images("dtd", f"{_VGG}/dtd/download/dtd-r1.0.1.tar.gz", "fff73e5086ae6bdbea199a49dfb8a4c1", "dtd/images",
            "dtd-r1.0.1.tar.gz", "about 600 MB", ("dtd/images/*",), "dtd/images/"),
    _coop_split("dtd", "dtd", "split_zhou_DescribableTextures.json", "1u3_QfB467jqHgNXC00UIzbLZRQCg2S7x"),
    _images("flowers", f"{_VGG}/flowers/102/102flowers.tgz", "52808999861908f626f3c1f4e79d11fa",
            "oxford_flowers/jpg", "102flowers.tgz", "about 330 MB", ("jpg/*",), "jpg/"),
    _coop_split("flowers", "oxford_flowers", "split_zhou_OxfordFlowers.json", "1Pp0sRXzZFZq15zVOzKjKBu4A9i01nozT"),
    _images("pets", f"{_VGG}/pets/data/images.tar.gz", "5c4f3ee8e5d25df40f4fd59a7f44e54c", "oxford_pets/images",
            "images.tar.gz", "about 790 MB", ("images/*",), "images/"),
    _coop_split("pets", "oxford_pets", "split_zhou_OxfordPets.json", "1501r8Ber4nNKvmlFVQZ8SeUHTcdTTEqs"),
    _images("food101", "http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz", "85eeb15f3717b99a5da872d97d918f87",
            "food-101/images", "food-101.tar.gz", "about 5 GB", ("food-101/images/*",), "food-101/images/"),
    _coop_split("food101", "food-101", "split_zhou_Food101.json", "1QK0tGi096I0Ba6kggatX1ee6dJFIcEJl"),
    # torchvision downloads this archive without a checksum: none is published
    _images("aircraft", f"{_VGG}/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz", None, "fgvc_aircraft",
            "fgvc-aircraft-2013b.tar.gz (its data/ folder)", "about 2.7 GB", ("fgvc-aircraft-2013b/data/*",),
            "fgvc-aircraft-2013b/data/"),
    _images("sun397", "http://vision.princeton.edu/projects/2010/SUN/SUN397.tar.gz", "8ca2778205c41d23104230ba66911c7a",
            "sun397/SUN397", "SUN397.tar.gz", "about 37 GB", ("SUN397/*",), "SUN397/"),
    _coop_split("sun397", "sun397", "split_zhou_SUN397.json", "1y2RD81BYuiyvebdN-JymPfyWYcd8_MUq"),
    # a large Drive file: the confirm=t form skips Drive's "cannot scan for viruses" page
    _images("ucf101", "https://drive.usercontent.google.com/download?id=10Jqome3vtUA2keJkNanAiFpgbyC9Hc2O"
            "&export=download&confirm=t", None, "ucf101/UCF-101-midframes", "CoOp's UCF-101-midframes.zip",
            "size not stated (the middle frames of 13,320 videos)", ("UCF-101-midframes/*",), "UCF-101-midframes/"),
    _coop_split("ucf101", "ucf101", "split_zhou_UCF101.json", "1I0S0q91hJfsV9Gf4xDIjgDq4AqBNJb1y"),
    # the original site is gone and torchvision's StanfordCars no longer downloads it
    _images("cars", "", None, "stanford_cars", "cars_train/, cars_test/ and the devkit of Stanford Cars (there is "
            "no working public download: a mirror you trust, e.g. a Kaggle copy)", "about 1.9 GB", ("*",), ""),
    _coop_split("cars", "stanford_cars", "split_zhou_StanfordCars.json", "1ObCFbaAgVu0I-k_Au-gIUcefirdAuizT"),
)
RESOURCES |= {r.name: r for r in GENERAL10_RESOURCES}
DATASETS = {"eurosat": ("eurosat-images", "eurosat-split"), "msrvtt": ("msrvtt-annotations", "msrvtt-videos"),
            # the folders of clipadapt.data.multitask.GENERAL10
            **{f: (f"{n}-images", f"{n}-split") for f, n in (
                ("caltech-101", "caltech101"), ("dtd", "dtd"), ("oxford_flowers", "flowers"), ("oxford_pets", "pets"),
                ("food-101", "food101"), ("sun397", "sun397"), ("ucf101", "ucf101"), ("stanford_cars", "cars"))},
            "fgvc_aircraft": ("aircraft-images",)}

# The other retrieval benchmarks (chapters 4-5, ``reproduce --dataset``): the files with a stable
# public URL. DiDeMo's and ActivityNet's videos and all of LSMDC (MPII's permission) have none:
# their loaders say where to get them (clipadapt.data.didemo and its siblings, book/how-to-run.md).
_LM = "https://raw.githubusercontent.com/LisaAnne/LocalizingMoments/b6a555c8134581305d0ed4716fbc192860e0b88c/data"
_CE = ("https://raw.githubusercontent.com/albanie/collaborative-experts/7eb3b9d362ee313a78cd0a2793c3b6470f8e78f3/"
       "misc/datasets/didemo")
RETRIEVAL_RESOURCES = (
    *(Resource(f"didemo-{s}-data", f"{_LM}/{s}_data.json", None, f"didemo/{s}_data.json",
               f"DiDeMo's data/{s}_data.json (github.com/LisaAnne/LocalizingMoments) saved as "
               f"<data root>/didemo/{s}_data.json", "a few MB") for s in ("train", "val", "test")),
    *(Resource(f"didemo-{s}-list", f"{_CE}/{s}_list.txt", None, f"didemo/{s}_list.txt",
               f"collaborative-experts' misc/datasets/didemo/{s}_list.txt saved as <data root>/didemo/{s}_list.txt",
               "under 1 MB") for s in ("train", "val", "test")),
    Resource("activitynet-annotations", "https://cs.stanford.edu/people/ranjaykrishna/densevid/captions.zip", None,
             "activitynet",
             "ActivityNet Captions' captions.zip (cs.stanford.edu/people/ranjaykrishna/densevid/), with train.json, "
             "val_1.json, train_ids.json and val_ids.json copied into <data root>/activitynet/", "a few MB",
             archive=True, select=("*train.json", "*val_1.json", "*train_ids.json", "*val_ids.json"),
             flat=True),
    Resource("msvd-annotations", "https://github.com/ArrowLuo/CLIP4Clip/releases/download/v0.0/msvd_data.zip", None,
             "msvd",
             "CLIP4Clip's msvd_data.zip (its README, 'Data Preparing'), with raw-captions.pkl, train_list.txt, "
             "val_list.txt and test_list.txt copied into <data root>/msvd/", "a few MB", archive=True,
             select=("*raw-captions.pkl", "*train_list.txt", "*val_list.txt", "*test_list.txt"), flat=True),
    Resource("msvd-videos", "https://www.cs.utexas.edu/users/ml/clamp/videoDescription/YouTubeClips.tar", None,
             "msvd/MSVD_Videos",
             "MSVD's YouTubeClips.tar (www.cs.utexas.edu/users/ml/clamp/videoDescription/), its 1,970 <id>.avi "
             "clips copied into <data root>/msvd/MSVD_Videos/", "about 1.7 GB", archive=True, select=("*.avi",),
             flat=True),
)
RESOURCES |= {r.name: r for r in RETRIEVAL_RESOURCES}
DATASETS |= {"didemo": tuple(f"didemo-{s}-{k}" for k in ("data", "list") for s in ("train", "val", "test")),
             "activitynet": ("activitynet-annotations",), "msvd": ("msvd-annotations", "msvd-videos")}


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


def _kind(path: Path) -> str:
    """``zip`` or ``tar`` (plain, gzip, bzip2 or xz), from the first bytes of the file."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith(b"PK"):
        return "zip"
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ")) or head[257:262] == b"ustar":
        return "tar"
    raise zipfile.BadZipFile(f"neither a zip nor a tar archive: it starts with {head[:40]!r}")


def _members(archive: Path):
    """``(name, open())`` for every file of a zip or tar archive, in order."""
    if _kind(archive) == "zip":
        with zipfile.ZipFile(archive) as zf:
            for m in zf.infolist():
                if not m.is_dir():
                    yield m.filename, lambda m=m: zf.open(m)
        return
    with tarfile.open(archive, "r:*") as tf:
        for m in tf:
            if m.isfile():
                yield m.name, lambda m=m: tf.extractfile(m)


def _unpack(res: Resource, archive: Path, root: Path, url: str) -> int:
    target = root / res.target
    target.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{res.name}-", dir=target.parent))
    moved = 0
    try:
        try:
            source, found = archive, 0
            if res.inner:  # unpack the inner archive first, beside the others
                for name, open_member in _members(archive):
                    if name == res.inner:
                        source = tmp / ".inner"
                        with open_member() as src, open(source, "wb") as dst:
                            shutil.copyfileobj(src, dst, 1 << 20)
                        break
                if source == archive:
                    raise _fail(res, url, root, f"{archive.name} holds no member {res.inner}")
            for name, open_member in _members(source):
                if not any(fnmatch.fnmatch(name, p) for p in res.select):
                    continue
                rel = PurePosixPath(name).name if res.flat else name.removeprefix(res.strip)
                if ".." in PurePosixPath(rel).parts or rel.startswith("/"):
                    raise DownloadError(f"{archive}: member {name!r} would land outside {target}")
                out = tmp / "files" / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                with open_member() as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                found += 1
        except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, OSError) as err:
            archive.unlink(missing_ok=True)
            raise _fail(res, url, root, f"{archive.name} is not a readable zip or tar archive ({err}); "
                                        f"it was deleted") from err
        if not found:
            raise _fail(res, url, root, f"{archive.name} holds no member matching {', '.join(res.select)}")
        for path in sorted(p for p in (tmp / "files").rglob("*") if p.is_file()):
            dest = target / path.relative_to(tmp / "files")
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
    if not url:
        raise _fail(res, "(none)", root, "there is no public download of this file")
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
    """Fetch every file of ``dataset`` (a key of :data:`DATASETS`: ``eurosat``, ``msrvtt``
    or a General-10 folder) that is not yet complete; returns ``<data root>/<dataset>``."""
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
            print(f"{res.name:20s} {state:8s} {res.size:24s} {res.url or '(no public download)'}")
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
