"""Downloads that recover, against test_download's local HTTP server (127.0.0.1 only): a 404
and then a good answer; a truncated archive resumed with a Range request, or started again
where the server ignores ranges or the file changed; an HTML page served for a split file;
a bad cached file replaced; an MSR-VTT root with its CSV files but no videos fetched again."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import shutil
import zipfile

import pytest

from clipadapt.data.fetch import download
from clipadapt.data.formats import msrvtt

from test_download import (HTML, _eurosat_archives, _resources, _sha256, _zip, msrvtt_archives,  # noqa: F401
                           server, small_chunks)
from test_msrvtt import write_fixture

SPLIT = "eurosat/split_zhou_EuroSAT.json"


def _split(base, path):
    return dataclasses.replace(download.RESOURCES["eurosat-split"], url=f"{base}{path}")


def _failing_split(served, failure: str):
    """EuroSAT's split file served at /FAILURE/split.json: first the ``failure``, then the good
    file; returns the resource pointing there and the good bytes."""
    base, handler = served
    _, good = _eurosat_archives()
    path = f"/{failure}/split.json"
    handler.files[path], handler.plan[path] = good, [failure]
    return _split(base, path), good


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_a_404_then_a_good_answer(server, tmp_path):  # noqa: F811
    base = server[0]
    res, good = _failing_split(server, "404")
    with pytest.raises(download.DownloadError) as err:
        download.fetch(res, tmp_path, progress=False)
    text = str(err.value)
    assert "the server answered 404" in text and "the next call asks again" in text
    assert f"URL: {base}/404/split.json" in text and "python -m clipadapt.data.fetch eurosat" in text
    assert _files(tmp_path) == [] and not download.is_complete(res, tmp_path)
    download.fetch(res, tmp_path, progress=False)
    assert json.loads((tmp_path / SPLIT).read_bytes()) == json.loads(good) and download.is_complete(res, tmp_path)


def test_a_truncated_archive_is_resumed_with_a_range_request(server, msrvtt_archives, tmp_path,  # noqa: F811
                                                             small_chunks, capsys):  # noqa: F811
    base, handler = server
    _, videos = msrvtt_archives
    handler.files["/resume/MSRVTT.zip"] = videos
    handler.plan["/resume/MSRVTT.zip"] = ["truncate"]
    res = dataclasses.replace(download.RESOURCES["msrvtt-videos"], url=f"{base}/resume/MSRVTT.zip")  # no hash
    with pytest.raises(download.DownloadError, match=r"(?s)broke off after [\d,]+ of [\d,]+ bytes.*resumes it.*"
                                                     r"URL: .*/resume/MSRVTT.zip.*python -m clipadapt.data.fetch "
                                                     r"msrvtt"):
        download.fetch(res, tmp_path, progress=False)
    (part,) = (tmp_path / "downloads").glob("msrvtt-videos-*.part")
    half = part.stat().st_size
    assert 0 < half < len(videos) and not download.is_complete(res, tmp_path)
    assert not (tmp_path / "msrvtt").exists()  # nothing half-written under a final name
    assert download.main(["--list", "--root", str(tmp_path)]) == 0
    assert "msrvtt-videos        partial" in capsys.readouterr().out
    asked = len(handler.ranges)
    download.fetch(res, tmp_path, progress=False)
    assert handler.ranges[asked:] == [f"bytes={half}-"]  # only the rest was asked for
    record = json.loads((tmp_path / "downloads" / "msrvtt-videos.complete").read_text())
    assert "sha256:" + record["sha256"] == _sha256(videos) and record["files"] == 5
    assert len(list((tmp_path / "msrvtt" / "MSRVTT_Videos").glob("*.mp4"))) == 5
    assert not list((tmp_path / "downloads").glob("*.part*"))


@pytest.mark.parametrize("then", ["no-range", "changed"])
def test_a_truncated_archive_starts_again_where_it_cannot_resume(server, msrvtt_archives, tmp_path,  # noqa: F811
                                                                 small_chunks, then):  # noqa: F811
    """A server that answers 200 to a Range request, or whose file changed (If-Range with the
    old ETag), gets the whole file again: the old beginning is not stitched to the new end."""
    base, handler = server
    _, videos = msrvtt_archives
    path = f"/restart/{then}.zip"
    handler.files[path] = videos
    handler.plan[path] = ["truncate", "no-range"] if then == "no-range" else ["truncate"]
    res = dataclasses.replace(download.RESOURCES["msrvtt-videos"], url=f"{base}{path}")
    with pytest.raises(download.DownloadError, match="broke off"):
        download.fetch(res, tmp_path, progress=False)
    if then == "changed":
        with zipfile.ZipFile(io.BytesIO(videos)) as zf:
            videos = _zip({"MSRVTT/README.txt": b"a new release"} | {n: zf.read(n) for n in zf.namelist()})
        handler.files[path] = videos
    asked = len(handler.ranges)
    download.fetch(res, tmp_path, progress=False)
    assert handler.ranges[asked].startswith("bytes=")  # it asked to resume, and was given the whole file
    record = json.loads((tmp_path / "downloads" / "msrvtt-videos.complete").read_text())
    assert "sha256:" + record["sha256"] == _sha256(videos)
    assert len(list((tmp_path / "msrvtt" / "MSRVTT_Videos").glob("*.mp4"))) == 5


def test_an_html_page_for_a_split_file_is_refused_then_a_good_answer_is_kept(server, tmp_path):  # noqa: F811
    res, good = _failing_split(server, "html")
    with pytest.raises(download.DownloadError, match=r"(?s)eurosat-split: split.json is an HTML page, not JSON .*"
                                                     r"refuses.*nothing is marked complete.*URL: .*/html/split.json"
                                                     r".*python -m clipadapt.data.fetch eurosat"):
        download.fetch(res, tmp_path, progress=False)
    assert _files(tmp_path) == [] and not download.is_complete(res, tmp_path)
    download.fetch(res, tmp_path, progress=False)
    assert json.loads((tmp_path / SPLIT).read_bytes()) == json.loads(good)


def test_a_split_file_without_train_val_test_is_refused(server, tmp_path):  # noqa: F811
    base, handler = server
    handler.files["/keys/split.json"] = json.dumps({"train": []}).encode()
    with pytest.raises(download.DownloadError, match="split.json is JSON without the keys 'val', 'test'"):
        download.fetch(_split(base, "/keys/split.json"), tmp_path, progress=False)
    assert _files(tmp_path) == []


def test_a_bad_cached_split_file_is_replaced_with_a_message(server, tmp_path):  # noqa: F811
    """What the old download layer left behind: an HTML page under the split file's name,
    marked complete. It is seen, said, and replaced by a good copy."""
    base, handler = server
    _, good = _eurosat_archives()
    handler.files["/cached/split.json"] = good
    (tmp_path / "eurosat").mkdir()
    (tmp_path / SPLIT).write_bytes(HTML)
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / "eurosat-split.complete").write_text("{}")
    res = _split(base, "/cached/split.json")
    assert not download.is_complete(res, tmp_path)
    said = []
    download.fetch(res, tmp_path, progress=False, say=said.append)
    assert len(said) == 1 and f"the cached file {tmp_path / SPLIT} is an HTML page" in said[0]
    assert "fetched again" in said[0] and "/cached/split.json" in said[0]
    assert json.loads((tmp_path / SPLIT).read_bytes()) == json.loads(good)
    record = json.loads((tmp_path / "downloads" / "eurosat-split.complete").read_text())
    assert "sha256:" + record["sha256"] == _sha256(good)


@pytest.mark.parametrize("videos", ["empty", "missing", "unpacking cut short"])
def test_msrvtt_with_its_csv_but_no_videos_is_fetched_again(server, msrvtt_archives, tmp_path, videos):  # noqa: F811
    base, handler = server
    notes, archive = msrvtt_archives
    handler.files |= {"/again/msrvtt-annotations": notes, "/again/msrvtt-videos": archive}
    table = _resources(f"{base}/again", download.DATASETS["msrvtt"], {})
    where = download.ensure("msrvtt", tmp_path, progress=False, resources=table)
    if videos == "unpacking cut short":
        (tmp_path / "downloads" / "msrvtt-videos.unpacking").write_text("")
    else:
        shutil.rmtree(where / "MSRVTT_Videos")
        if videos == "empty":
            (where / "MSRVTT_Videos").mkdir()
    assert (where / msrvtt.TEST_CSV).is_file() and not download.is_complete(table["msrvtt-videos"], tmp_path)
    before, said = len(handler.hits), []
    download.ensure("msrvtt", tmp_path, progress=False, resources=table, say=said.append)
    assert handler.hits[before:] == ["/again/msrvtt-videos"]  # the annotations are there: only the videos
    assert len(said) == 1 and ("MSRVTT_Videos/*.mp4" in said[0] or "cut short" in said[0])
    ds = msrvtt.load_msrvtt(where)  # checks every video of both splits
    assert len(ds.train) == 6 and not (tmp_path / "downloads" / "msrvtt-videos.unpacking").exists()


def test_the_video_loader_fetches_the_videos_beside_hand_placed_csv_files(server, msrvtt_archives, tmp_path,  # noqa: F811
                                                                          monkeypatch):
    """The annotations copied in by hand (no record) count as present; the missing videos
    folder does not, and the loader fetches it instead of failing."""
    from clipadapt import profiles
    from clipadapt.data import video_sets

    base, handler = server
    _, archive = msrvtt_archives
    handler.files["/loader/msrvtt-videos"] = archive
    write_fixture(tmp_path / "data" / "msrvtt")
    shutil.rmtree(tmp_path / "data" / "msrvtt" / "MSRVTT_Videos")
    monkeypatch.setattr(download, "RESOURCES", _resources(f"{base}/loader", download.DATASETS["msrvtt"], {}))
    from clipadapt.experiments import settings

    sets = settings.of(profiles.get("tiny")).videos.replace(source="msrvtt", train_pairs=4, test_pairs=2)
    before = len(handler.hits)
    data = video_sets.video_data(sets, 8, 32, tmp_path / "videos", data_root=tmp_path / "data")
    assert handler.hits[before:] == ["/loader/msrvtt-videos"] and len(data["train"]) == 4


def test_a_wrong_hash_names_both_digests_and_keeps_nothing(server, tmp_path):  # noqa: F811
    base, handler = server
    handler.files["/hash/split.json"] = b'{"train": [], "val": [], "test": []}'
    res = dataclasses.replace(_split(base, "/hash/split.json"), known_hash="md5:" + "0" * 32)
    got = hashlib.md5(handler.files["/hash/split.json"]).hexdigest()
    with pytest.raises(download.DownloadError, match=f"corrupt or incomplete: its md5 is {got}, expected 0+;"):
        download.fetch(res, tmp_path, progress=False)
    assert _files(tmp_path) == []
