"""The public files of DiDeMo, ActivityNet Captions and MSVD through the download layer, served
from 127.0.0.1 in their publishers' layouts, land where the loaders read them."""

from __future__ import annotations

import dataclasses
import http.server
import io
import tarfile
import threading

import pytest
from test_download import _zip  # the tests folder is on sys.path, as for ddp_check

from clipadapt.data import fixtures
from clipadapt.data.formats import activitynet, didemo, msvd
from clipadapt.data.fetch import download


class _Files(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def serve():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"

    def table(dataset: str, bodies: dict[str, bytes]) -> dict[str, download.Resource]:
        _Files.files |= {f"/{n}": b for n, b in bodies.items()}
        return {n: dataclasses.replace(download.RESOURCES[n], url=f"{base}/{n}") for n in download.DATASETS[dataset]}

    yield table
    httpd.shutdown()
    httpd.server_close()


def _tar(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_every_public_file_has_a_resource_and_the_rest_say_where_to_get_them():
    for dataset in ("didemo", "activitynet", "msvd"):
        assert all(n in download.RESOURCES for n in download.DATASETS[dataset])
    assert "lsmdc" not in download.DATASETS  # MPII's permission: no public download
    assert "LocalizingMoments" in didemo.HOW_TO_GET and "activity-net.org" in activitynet.HOW_TO_GET


def test_msvd_from_clip4clips_zip_and_the_youtube_clips_tar(serve, tmp_path):
    src = fixtures.write_msvd(tmp_path / "src", sizes=(1, 1, 2))
    notes = _zip({f"msvd_data/{f.name}": f.read_bytes() for f in sorted(src.iterdir()) if f.is_file()})
    clips = _tar({f"YouTubeClips/{f.name}": f.read_bytes() for f in sorted((src / msvd.VIDEOS).iterdir())})
    table = serve("msvd", {"msvd-annotations": notes, "msvd-videos": clips})
    where = download.ensure("msvd", tmp_path / "data", progress=False, resources=table)
    c = msvd.load_msvd(where, check_sizes=False)  # every video of every split is there
    assert len(c.videos("test")) == 2 and (where / msvd.VIDEOS).is_dir()


def test_didemo_and_activitynet_annotations(serve, tmp_path):
    src = fixtures.write_didemo(tmp_path / "src", sizes=(1, 1, 1))
    plain = {f"didemo-{s}-{k}": (src / f"{s}_{'data.json' if k == 'data' else 'list.txt'}").read_bytes()
             for s in didemo.SPLITS for k in ("data", "list")}
    where = download.ensure("didemo", tmp_path / "data", progress=False, resources=serve("didemo", plain))
    c = didemo.load_didemo(where, check_sizes=False, check_videos=False)
    assert len(c.test) == 1 and c.missing_videos("test") == c.videos("test")  # videos come by hand
    src = fixtures.write_activitynet(tmp_path / "src", sizes=(1, 1))
    captions = _zip({f"captions/{f.name}": f.read_bytes() for f in sorted(src.glob("*.json"))}
                    | {"captions/val_2.json": b"{}", "captions/test_ids.json": b"[]"})
    where = download.ensure("activitynet", tmp_path / "data", progress=False,
                            resources=serve("activitynet", {"activitynet-annotations": captions}))
    assert sorted(p.name for p in where.iterdir()) == ["train.json", "train_ids.json", "val_1.json", "val_ids.json"]
    assert len(activitynet.load_activitynet(where, check_sizes=False, check_videos=False).test) == 1
