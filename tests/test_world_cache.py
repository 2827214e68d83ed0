"""Rendered synthetic video worlds shared between work folders (clipadapt.data.world_cache)."""

import json

import pytest

from clipadapt.data import video_sets, world_cache, worlds

SETS = video_sets.VideoSets(source="synthetic", train_pairs=2, test_pairs=1, near_misses=1, check_sizes=False,
                            test_all=False, long_frames=False)


@pytest.fixture
def counted(monkeypatch):
    """How many times each split was rendered."""
    calls = []
    real = worlds.write_videos

    def write(world, n, g, folder, **kw):
        calls.append(folder.name)
        return real(world, n, g, folder, **kw)

    monkeypatch.setattr(worlds, "write_videos", write)
    return calls


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.mp4"))}


def test_a_split_is_rendered_once_and_copied_into_each_work_folder(tmp_path, monkeypatch, counted):
    monkeypatch.setenv(world_cache.CACHE_ENV, str(tmp_path / "shared"))
    a = video_sets.video_data(SETS, 4, 64, tmp_path / "a")
    b = video_sets.video_data(SETS, 4, 64, tmp_path / "b")
    assert counted == ["train", "test"]  # the second folder rendered nothing
    assert _files(tmp_path / "a") == _files(tmp_path / "b") and len(_files(tmp_path / "a")) == 2 * 2 + 2 * 2
    for split in ("train", "test"):  # the same records, each pointing into its own folder
        assert [(p.relative_to(tmp_path / "a"), c) for p, c in a[split].records] == \
            [(p.relative_to(tmp_path / "b"), c) for p, c in b[split].records]
    assert a["test_partners"] == b["test_partners"] and a["twins"] == b["twins"]
    # each work folder has its own manifest, as rendering writes it: a third call reads it
    saved = json.loads((tmp_path / "b" / "test" / "manifest.json").read_text())
    assert saved == json.loads((tmp_path / "a" / "test" / "manifest.json").read_text())
    video_sets.video_data(SETS, 4, 64, tmp_path / "b")
    assert counted == ["train", "test"]


def test_other_settings_are_rendered_and_filed_apart(tmp_path, monkeypatch, counted):
    monkeypatch.setenv(world_cache.CACHE_ENV, str(tmp_path / "shared"))
    video_sets.video_data(SETS, 4, 64, tmp_path / "a")
    video_sets.video_data(SETS.replace(test_pairs=2), 4, 64, tmp_path / "b")
    assert counted == ["train", "test", "test"]  # the training split's settings are the same
    assert len(list((tmp_path / "shared").iterdir())) == 3


def test_without_the_shared_folder_each_work_folder_renders(tmp_path, monkeypatch, counted):
    monkeypatch.delenv(world_cache.CACHE_ENV, raising=False)
    video_sets.video_data(SETS, 4, 64, tmp_path / "a")
    video_sets.video_data(SETS, 4, 64, tmp_path / "b")
    assert counted == ["train", "test", "train", "test"]
    assert _files(tmp_path / "a") == _files(tmp_path / "b")  # rendering is deterministic


def test_a_split_filed_meanwhile_by_another_process_is_kept(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    monkeypatch.setenv(world_cache.CACHE_ENV, str(shared))
    settings = {"split": "test", "n": 1}

    def write(out, mark):
        out.mkdir(parents=True, exist_ok=True)
        (out / "video00000a.mp4").write_bytes(mark)
        if mark == b"second":  # the first process files the split while this one renders
            world_cache.render(tmp_path / "first", settings, lambda o: write(o, b"first"))
        return [{"video": "video00000a.mp4", "mark": mark.decode()}]

    records = world_cache.render(tmp_path / "second", settings, lambda o: write(o, b"second"))
    assert records == [{"video": "video00000a.mp4", "mark": "second"}]  # this folder keeps what it wrote
    filed = shared / world_cache.key(settings)
    assert (filed / "video00000a.mp4").read_bytes() == b"first"
    assert json.loads((filed / world_cache.MANIFEST).read_text())["records"][0]["mark"] == "first"
    assert [p.name for p in shared.iterdir()] == [filed.name]  # no half-filed folder left
