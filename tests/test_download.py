"""The download layer against a local HTTP server (127.0.0.1 only) serving fixture archives
in the real layouts: a good archive, a corrupt one, a truncated one, a 404."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import inspect
import io
import json
import threading
import zipfile

import pytest
from test_msrvtt import write_fixture

from clipadapt.data import fewshot
from clipadapt.data.fetch import download
from clipadapt.data.formats import msrvtt


HTML = b"<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head><body>...</body></html>"


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``files`` with a strong ETag and byte ranges (``Range: bytes=N-``, honoured
    unless ``If-Range`` names another ETag). ``plan[path]`` lists the next answers for a
    path, one per request, before the good ones: ``404``, ``truncate`` (promises the whole
    file, sends half, closes), ``html`` (a web page instead of the file), ``no-range`` (the
    whole file with 200, whatever the Range). ``/truncated/<path>`` always truncates."""

    files: dict[str, bytes] = {}
    plan: dict[str, list[str]] = {}
    hits: list[str] = []
    ranges: list[str | None] = []

    def do_GET(self):  # noqa: N802
        self.hits.append(self.path)
        self.ranges.append(self.headers.get("Range"))
        path = self.path
        mode = self.plan[path].pop(0) if self.plan.get(path) else "ok"
        if path.startswith("/truncated/"):
            path, mode = path.removeprefix("/truncated"), "truncate"
        if mode == "404" or path not in self.files:
            self.send_error(404)
            return
        body = HTML if mode == "html" else self.files[path]
        etag = '"' + hashlib.sha1(body).hexdigest() + '"'
        start, wanted = 0, self.headers.get("Range", "")
        if wanted.startswith("bytes=") and mode != "no-range" and self.headers.get("If-Range", etag) == etag:
            start = int(wanted.removeprefix("bytes=").rstrip("-"))
            if start >= len(body):
                self.send_error(416)
                return
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", "text/html" if mode == "html" else "application/octet-stream")
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        if mode == "truncate":  # promises all, sends half
            self.wfile.write(body[start: start + (len(body) - start) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    _Handler.files, _Handler.plan, _Handler.hits, _Handler.ranges = {}, {}, [], []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Handler
    httpd.shutdown()
    httpd.server_close()


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def msrvtt_archives(tmp_path_factory):
    """CLIP4Clip's msrvtt_data.zip and Frozen in Time's MSRVTT.zip, in their layouts."""
    src = write_fixture(tmp_path_factory.mktemp("msrvtt") / "m")
    notes = _zip({f"msrvtt_data/{f.name}": f.read_bytes() for f in sorted(src.glob("*.csv")) + [src / msrvtt.DATA_JSON]}
                 | {"msrvtt_data/MSRVTT_train.7k.csv": b"video_id\n"})
    videos = _zip({f"MSRVTT/videos/all/{f.name}": f.read_bytes() for f in sorted((src / "MSRVTT_Videos").glob("*.mp4"))}
                  | {"MSRVTT/annotation/MSR_VTT.json": b"{}"})
    return notes, videos


def _eurosat_archives():
    from PIL import Image

    classes = ["AnnualCrop", "Forest", "River"]
    entries, split = {}, {"train": [], "val": [], "test": []}
    for label, name in enumerate(classes):
        for i in range(3):
            buf = io.BytesIO()
            Image.new("RGB", (64, 64), (40 * label, 100, 20 * i)).save(buf, format="JPEG")
            entries[f"2750/{name}/{name}_{i + 1}.jpg"] = buf.getvalue()
            split["train" if i < 2 else "test"].append([f"{name}/{name}_{i + 1}.jpg", label, name])
    return _zip(entries), json.dumps(split).encode()


def _resources(base, names, hashes):
    return {n: dataclasses.replace(download.RESOURCES[n], url=f"{base}/{n}", known_hash=hashes.get(n))
            for n in download.RESOURCES if n in names}


def test_good_archives_unpack_into_the_real_layout_and_are_not_fetched_twice(server, msrvtt_archives, tmp_path):
    base, handler = server
    notes, videos = msrvtt_archives
    handler.files |= {"/msrvtt-annotations": notes, "/msrvtt-videos": videos}
    table = _resources(base, DATASETS_MSRVTT, {"msrvtt-annotations": _sha256(notes), "msrvtt-videos": _sha256(videos)})
    where = download.ensure("msrvtt", tmp_path, progress=False, resources=table)
    ds = msrvtt.load_msrvtt(where)  # checks every video of both splits
    assert len(ds.train) == 6 and len(ds.test) == 2
    assert not (where / "MSRVTT_train.7k.csv").exists() and not (where / "MSR_VTT.json").exists()
    assert not list((tmp_path / "downloads").glob("*.zip"))  # archives go once unpacked
    record = json.loads((tmp_path / "downloads" / "msrvtt-videos.complete").read_text())
    assert "sha256:" + record["sha256"] == _sha256(videos)
    before = len(handler.hits)
    download.ensure("msrvtt", tmp_path, progress=False, resources=table)
    assert len(handler.hits) == before


DATASETS_MSRVTT = download.DATASETS["msrvtt"]


def test_eurosat_in_coops_layout(server, tmp_path):
    base, handler = server
    images, split = _eurosat_archives()
    handler.files |= {"/eurosat-images": images, "/eurosat-split": split}
    table = _resources(base, download.DATASETS["eurosat"], {"eurosat-images": _sha256(images)})
    where = download.ensure("eurosat", tmp_path, progress=False, resources=table)
    task = fewshot.load_coop_dataset(where, "eurosat", preprocess=lambda im: __import__("torch").zeros(3, 8, 8))
    assert task.classnames == ["Annual Crop Land", "Forest", "River"]  # CoOp's NEW_CNAMES (clipadapt.data.names)
    x, y = task.train_set(2)
    assert x.shape == (6, 3, 8, 8) and y.tolist() == [0, 0, 1, 1, 2, 2]


def test_a_corrupt_file_is_refused_named_and_removed_then_a_retry_works(server, msrvtt_archives, tmp_path):
    base, handler = server
    notes, _ = msrvtt_archives
    handler.files["/corrupt"] = notes[:-10] + b"0123456789"
    res = dataclasses.replace(download.RESOURCES["msrvtt-annotations"], url=f"{base}/corrupt", known_hash=_sha256(notes))
    with pytest.raises(download.DownloadError) as err:
        download.fetch(res, tmp_path, progress=False)
    text = str(err.value)
    assert f"URL: {base}/corrupt" in text and f"expected hash: {_sha256(notes)}" in text
    assert "corrupt or incomplete" in text and "by hand: download CLIP4Clip's msrvtt_data.zip" in text
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing half-written left
    handler.files["/corrupt"] = notes
    download.fetch(res, tmp_path, progress=False)
    assert (tmp_path / "msrvtt" / msrvtt.TEST_CSV).is_file()


@pytest.fixture
def small_chunks(monkeypatch):
    """Bytes reach the .part file in 256-byte blocks (1 MiB in use), so that the half of a
    small fixture that arrives before the break is kept."""
    from clipadapt.data.fetch import transfer

    monkeypatch.setattr(transfer, "CHUNK", 256)


def test_a_truncated_download_is_refused(server, msrvtt_archives, tmp_path, small_chunks):
    base, handler = server
    notes, _ = msrvtt_archives
    handler.files["/notes.zip"] = notes
    res = dataclasses.replace(download.RESOURCES["msrvtt-annotations"], url=f"{base}/truncated/notes.zip",
                              known_hash=_sha256(notes))
    with pytest.raises(download.DownloadError, match=r"broke off after .* bytes.*resumes it.*\n  URL: .*/truncated/notes.zip"):
        download.fetch(res, tmp_path, progress=False)
    kept = [p for p in tmp_path.rglob("*") if p.is_file()]  # what arrived, under a name that is not final
    assert {p.suffix for p in kept} == {".part", ".json"} and not (tmp_path / "msrvtt").exists()


def test_a_truncated_archive_without_a_published_hash_is_refused(server, msrvtt_archives, tmp_path):
    base, handler = server
    notes, _ = msrvtt_archives
    handler.files["/half.zip"] = notes[: len(notes) // 2]
    res = dataclasses.replace(download.RESOURCES["msrvtt-annotations"], url=f"{base}/half.zip", known_hash=None)
    with pytest.raises(download.DownloadError, match=r"not a readable zip or tar archive.*deleted.*\n.*\n  expected hash: none published"):
        download.fetch(res, tmp_path, progress=False)
    assert not (tmp_path / "downloads" / "msrvtt-annotations.complete").exists()
    assert not list((tmp_path / "msrvtt").glob("*.csv"))


def test_a_404_names_the_url_and_the_manual_route(server, tmp_path):
    base, _ = server
    res = dataclasses.replace(download.RESOURCES["eurosat-split"], url=f"{base}/nowhere.json")
    with pytest.raises(download.DownloadError, match=r"(?s)eurosat-split: the server answered 404.*URL: .*/nowhere.json"
                                                     r".*split_zhou_EuroSAT.json.*'tiny' profile"):
        download.fetch(res, tmp_path, progress=False)


def test_the_loaders_fetch_what_is_missing(server, msrvtt_archives, tmp_path, monkeypatch):
    """video_sets under an msrvtt profile reaches the download layer when the data is absent."""
    from clipadapt import profiles
    from clipadapt.data import video_sets

    base, handler = server
    notes, videos = msrvtt_archives
    handler.files |= {"/msrvtt-annotations": notes, "/msrvtt-videos": videos}
    monkeypatch.setattr(download, "RESOURCES", _resources(base, DATASETS_MSRVTT, {}))
    from clipadapt.experiments import settings

    sets = settings.of(profiles.get("tiny")).videos.replace(source="msrvtt", train_pairs=4, test_pairs=2)
    data = video_sets.video_data(sets, 8, 32, tmp_path / "videos", data_root=tmp_path / "data")
    assert len(data["train"]) == 4 and len(data["test"]) == 2


def test_eurosat_entry_is_torchvisions_file():
    import torchvision.datasets

    src = inspect.getsource(torchvision.datasets.EuroSAT)
    res = download.RESOURCES["eurosat-images"]
    assert res.url in src and res.known_hash.removeprefix("md5:") in src


def test_the_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv(download.DATA_ENV, str(tmp_path / "d"))
    assert download.data_root() == tmp_path / "d"
    assert download.data_root(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv(download.DATA_ENV)
    assert "clipadapt" in str(download.data_root())
    with pytest.raises(ValueError, match="no download for dataset 'coco'"):
        download.ensure("coco", tmp_path)
