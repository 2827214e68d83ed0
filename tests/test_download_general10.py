"""General-10's downloads (SoftCPT, chapter 7) against the local HTTP server of
test_download (127.0.0.1 only): the colab profile's four datasets served as archives in the
publishers' layouts (Caltech-101's tar.gz inside its zip, DTD's and Flowers-102's tar.gz,
EuroSAT's zip) with CoOp's split files; then a corrupt, a truncated, a non-archive and a
missing file."""

from __future__ import annotations

import dataclasses
import inspect
import io
import json
import tarfile
from pathlib import Path

import pytest
import torch
from test_download import _resources, _sha256, _zip, server  # noqa: F401  (the server fixture)

from clipadapt import profiles
from clipadapt.data import fixtures
from clipadapt.data.fetch import download
from clipadapt.data import multitask as mt
from clipadapt.experiments import settings

SMOKE = settings.of(profiles.get("colab-smoke"))  # colab's four datasets, 3 classes of each read


def _tgz(src: Path, under: str, prefix: str) -> bytes:
    """A gzip tar of the files below ``src/under``, named ``prefix/<path below src/under>``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for path in sorted((src / under).rglob("*")):
            if path.is_file():
                tf.add(path, arcname=f"{prefix}/{path.relative_to(src / under).as_posix()}")
    return buf.getvalue()


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    """The colab suite's files as the publishers and CoOp serve them: ``{resource: bytes}``."""
    src = fixtures.write_general10(tmp_path_factory.mktemp("g10"), SMOKE.suites.datasets)
    caltech = _tgz(src / "caltech-101", "101_ObjectCategories", "101_ObjectCategories")
    euro = src / "eurosat" / "2750"
    return {
        "caltech101-images": _zip({"caltech-101/101_ObjectCategories.tar.gz": caltech,
                                   "caltech-101/Annotations.tar": b"not read", "__MACOSX/._x": b""}),
        "dtd-images": _tgz(src / "dtd", "images", "dtd/images"),
        "flowers-images": _tgz(src / "oxford_flowers", "jpg", "jpg"),
        "eurosat-images": _zip({f"2750/{p.relative_to(euro).as_posix()}": p.read_bytes()
                                for p in sorted(euro.rglob("*.jpg"))}),
        **{f"{n}-split": (src / folder / split).read_bytes() for n, folder, split in (
            ("caltech101", "caltech-101", "split_zhou_Caltech101.json"),
            ("dtd", "dtd", "split_zhou_DescribableTextures.json"),
            ("flowers", "oxford_flowers", "split_zhou_OxfordFlowers.json"),
            ("eurosat", "eurosat", "split_zhou_EuroSAT.json"))},
    }


def _preprocess(im):
    return torch.zeros(3, 4, 4)


def test_the_colab_suite_is_fetched_into_coops_layout_once(server, archives, tmp_path, monkeypatch):  # noqa: F811
    base, handler = server
    handler.files |= {f"/{name}": data for name, data in archives.items()}
    hashes = {n: _sha256(d) for n, d in archives.items() if n.endswith("-images")}  # splits: none published
    monkeypatch.setattr(download, "RESOURCES", _resources(base, archives, hashes))
    suite = mt.suite_for(False, SMOKE.suites.datasets, SMOKE.suites.classes, _preprocess, data_root=tmp_path)
    assert suite.names == ("generic objects", "describable textures", "satellite land use", "flower species")
    assert (tmp_path / "caltech-101" / "101_ObjectCategories" / "caltech_101_class_099" / "image_0002.jpg").is_file()
    assert (tmp_path / "dtd" / "images" / "dtd_class_046").is_dir() and not (tmp_path / "Annotations.tar").exists()
    assert len(list((tmp_path / "oxford_flowers" / "jpg").glob("*.jpg"))) == 102 * 2
    full = mt.load_suite(tmp_path, [e for e in mt.GENERAL10 if e.folder in suite.domains], _preprocess)
    assert full.n_classes == 259  # every class of the four datasets arrived
    assert not list((tmp_path / "downloads").glob("*-images-*"))  # archives go once unpacked
    record = json.loads((tmp_path / "downloads" / "dtd-split.complete").read_text())
    assert "sha256:" + record["sha256"] == _sha256(archives["dtd-split"])  # no published hash: recorded
    before = len(handler.hits)
    mt.suite_for(False, SMOKE.suites.datasets, SMOKE.suites.classes, _preprocess, data_root=tmp_path)
    assert len(handler.hits) == before


def test_a_corrupt_tar_is_refused_and_removed(server, archives, tmp_path):  # noqa: F811
    base, handler = server
    good = archives["dtd-images"]
    handler.files["/dtd-corrupt"] = good[:-64] + bytes(64)
    res = dataclasses.replace(download.RESOURCES["dtd-images"], url=f"{base}/dtd-corrupt", known_hash=_sha256(good))
    with pytest.raises(download.DownloadError, match=r"(?s)dtd-images: the downloaded file is corrupt.*"
                                                     r"URL: .*/dtd-corrupt\n  expected hash: sha256:.*dtd-r1.0.1"):
        download.fetch(res, tmp_path, progress=False)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_a_truncated_tar_without_a_hash_is_refused(server, archives, tmp_path):  # noqa: F811
    base, handler = server
    handler.files["/flowers.tgz"] = archives["flowers-images"]
    res = dataclasses.replace(download.RESOURCES["flowers-images"], url=f"{base}/truncated/flowers.tgz",
                              known_hash=None)
    with pytest.raises(download.DownloadError, match=r"(broke off|not a readable zip or tar archive)"):
        download.fetch(res, tmp_path, progress=False)
    handler.files["/half.tgz"] = archives["flowers-images"][: len(archives["flowers-images"]) // 2]
    res = dataclasses.replace(res, url=f"{base}/half.tgz")
    with pytest.raises(download.DownloadError, match=r"half.tgz is not a readable zip or tar archive .*deleted"):
        download.fetch(res, tmp_path, progress=False)
    assert not (tmp_path / "downloads" / "flowers-images.complete").exists()
    assert not list((tmp_path / "oxford_flowers" / "jpg").glob("*.jpg"))


def test_a_web_page_instead_of_the_archive_is_named(server, tmp_path):  # noqa: F811
    """What a Drive link answers when it wants a confirmation click: a page, not the file."""
    base, handler = server
    handler.files["/drive"] = b"<!DOCTYPE html><html><title>Google Drive - Virus scan warning</title>"
    res = dataclasses.replace(download.RESOURCES["ucf101-images"], url=f"{base}/drive")
    with pytest.raises(download.DownloadError, match=r"(?s)neither a zip nor a tar archive: it starts with "
                                                     r"b'<!DOCTYPE.*UCF-101-midframes.zip"):
        download.fetch(res, tmp_path, progress=False)


def test_missing_files_name_the_url_and_the_manual_route(server, archives, tmp_path):  # noqa: F811
    base, handler = server
    res = dataclasses.replace(download.RESOURCES["caltech101-split"], url=f"{base}/gone.json")
    with pytest.raises(download.DownloadError, match=r"(?s)caltech101-split: the server answered 404.*"
                                                     r"URL: .*/gone.json.*split_zhou_Caltech101.json.*KaiyangZhou/CoOp"):
        download.fetch(res, tmp_path, progress=False)
    handler.files["/no-inner.zip"] = _zip({"caltech-101/Annotations.tar": b"x"})
    res = dataclasses.replace(download.RESOURCES["caltech101-images"], url=f"{base}/no-inner.zip", known_hash=None)
    with pytest.raises(download.DownloadError, match="holds no member caltech-101/101_ObjectCategories.tar.gz"):
        download.fetch(res, tmp_path, progress=False)
    with pytest.raises(download.DownloadError, match=r"(?s)cars-images: there is no public download.*Kaggle"):
        download.ensure("stanford_cars", tmp_path, progress=False)


@pytest.mark.parametrize("resource, cls", [
    ("caltech101-images", "Caltech101"), ("dtd-images", "DTD"), ("flowers-images", "Flowers102"),
    ("pets-images", "OxfordIIITPet"), ("food101-images", "Food101"), ("sun397-images", "SUN397"),
    ("aircraft-images", "FGVCAircraft")])
def test_general10_archives_are_torchvisions_files(resource, cls):
    """URL and MD5 as torchvision's dataset class downloads them (FGVC-Aircraft: torchvision
    gives no checksum, and neither do we)."""
    import torchvision.datasets

    res = download.RESOURCES[resource]
    src = inspect.getsource(getattr(torchvision.datasets, cls))
    prefix = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/" if cls == "Flowers102" else ""
    assert res.url.removeprefix(prefix) in src
    if res.known_hash is None:
        assert "md5" not in src.lower()
    else:
        assert res.known_hash.removeprefix("md5:") in src


def test_every_general10_folder_has_a_download():
    assert {e.folder for e in mt.GENERAL10} <= set(download.DATASETS)
    for e in mt.GENERAL10:
        targets = {download.RESOURCES[n].target for n in download.DATASETS[e.folder]}
        image_dir = (Path(e.folder) / e.dataset.image_dir).as_posix().removesuffix("/.")
        assert image_dir in targets or e.folder in targets, e.folder
        if e.dataset.split_file:
            assert f"{e.folder}/{e.dataset.split_file}" in targets, e.folder
