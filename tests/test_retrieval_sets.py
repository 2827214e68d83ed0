"""The other retrieval benchmarks (DiDeMo, ActivityNet Captions, LSMDC, MSVD): their loaders on
miniature copies in the real formats (clipadapt.data.fixtures), their protocols, and the errors
that name a file and a line."""

import json
import pickle
import shutil

import pytest
import torch

from clipadapt import profiles
from clipadapt.data import fixtures, video, video_sets
from clipadapt.data.formats import activitynet, corpus, didemo, lsmdc, msvd, safe_pickle

SIZES = {"didemo": (4, 2, 4), "activitynet": (4, 4), "lsmdc": (4, 2, 4), "msvd": (4, 2, 4)}


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """The four miniature sets, written once; a test that damages one copies it first."""
    return fixtures.write_retrieval_sets(tmp_path_factory.mktemp("retrieval-sets"))


@pytest.fixture
def copy(sets, tmp_path):
    def make(name):
        shutil.copytree(sets / name, tmp_path / name)
        return tmp_path / name
    return make


def test_didemo_is_paragraph_to_video_on_the_listed_videos(sets):
    c = didemo.load_didemo(sets / "didemo", check_sizes=False)
    assert [len(c.videos(s)) for s in didemo.SPLITS] == list(SIZES["didemo"]) and c.test_split == "test"
    assert c.paragraphs and all(len(p) == 1 for p in ([t for v2, t in c.test if v2 == v] for v in c.videos("test")))
    notes = json.loads((sets / "didemo" / "test_data.json").read_text())
    first = c.test[0][0]
    assert c.test[0][1] == " ".join(a["description"] for a in notes if a["video"] == first)  # in file order
    assert "(moment 2)" in c.test[0][1]
    assert c.skipped["test"] == ["999@N00_test_unlisted.mp4"]  # described but not listed: kept in sight
    assert {p.suffix for p in c.files.values()} >= {".mov", ".avi", ".m4v", ".mp4"}  # names as listed
    assert any(p.name.endswith(".") for p in c.files.values())
    assert video.read_frames(c.video_path(first)).shape == (16, 64, 64, 3)


def test_activitynet_joins_sentences_and_tests_on_val_1(sets):
    c = activitynet.load_activitynet(sets / "activitynet", check_sizes=False)
    assert c.test_split == "val_1" and len(c.train) == 4 and len(c.test) == 4
    vid, text = c.test[0]
    assert vid.startswith("v_") and text.endswith(" Then it goes on.") and "  " not in text
    names = {p.name for p in c.files.values()}
    assert any(n.startswith("v_") for n in names) and any(not n.startswith("v_") for n in names)  # both layouts


def test_lsmdc_keeps_every_training_line_and_1000_style_test_clips(sets):
    c = lsmdc.load_lsmdc(sets / "lsmdc", check_sizes=False)
    assert len(c.train) == 5 and len(c.videos("train")) == 4  # a clip with two sentences: two pairs
    assert c.train[1] == (c.train[0][0], "SOMEONE looks again.")
    assert len(c.test) == len(c.videos("test")) == 4
    assert all(p.parent.name == c.video_path(v).stem.rsplit("_", 1)[0] for v, p in c.files.items())  # movie folders


@pytest.mark.parametrize("captions_file", [msvd.PICKLE, msvd.JSON])
def test_msvd_every_caption_is_a_pair(copy, captions_file):
    root = copy("msvd")
    if captions_file == msvd.JSON:  # X-Pool's file: the same captions as strings
        words = safe_pickle.load_plain(root / msvd.PICKLE)
        (root / msvd.PICKLE).unlink()
        (root / msvd.JSON).write_text(json.dumps({v: [" ".join(c) for c in cs] for v, cs in words.items()}))
    c = msvd.load_msvd(root, check_sizes=False)
    counts = [sum(v2 == v for v2, _ in c.test) for v in c.videos("test")]
    assert counts == [2 + k % 4 for k in range(6, 10)] and len(c.test) == sum(counts)  # 2 to 5 per video
    assert c.test[1][1] == c.test[0][1] + " take 1"


def test_published_sizes_are_checked(sets):
    for load, name, file in ((didemo.load_didemo, "didemo", "train_list.txt"),
                             (activitynet.load_activitynet, "activitynet", "train.json"),
                             (lsmdc.load_lsmdc, "lsmdc", "LSMDC16_annos_training.csv"),
                             (msvd.load_msvd, "msvd", "train_list.txt")):
        with pytest.raises(corpus.CorpusError, match=rf"{file}: the train split has \d+ .*published split has"):
            load(sets / name)
    assert (didemo.SIZES, activitynet.SIZES, lsmdc.SIZES, msvd.SIZES) == (
        {"train": 8392, "val": 1065, "test": 1004}, {"train": 10009, "val_1": 4917},
        {"train": 101079, "val": 7408, "test": 1000}, {"train": 1200, "val": 100, "test": 670})


@pytest.mark.parametrize("name, load", [("didemo", didemo.load_didemo), ("activitynet", activitynet.load_activitynet),
                                        ("lsmdc", lsmdc.load_lsmdc), ("msvd", msvd.load_msvd)])
def test_missing_files_and_videos_are_found_before_training(copy, tmp_path, name, load):
    with pytest.raises(FileNotFoundError, match="files missing: .*Get .*'tiny' profile"):
        load(tmp_path / "nothing")
    root = copy(name)
    c = load(root, check_sizes=False)
    train_video, test_video = c.video_path(c.train[0][0]), c.video_path(c.test[-1][0])
    train_video.unlink()
    test_video.unlink()
    with pytest.raises(FileNotFoundError, match=r"1 train and 1 (test|val_1) videos are missing from .*, e\.g\."):
        load(root, check_sizes=False)
    assert load(root, check_sizes=False, check_videos=False).missing_videos("train") == [c.train[0][0]]


def test_a_video_listed_twice_names_both_lines(copy):
    root = copy("didemo")
    first = (root / "test_list.txt").read_text().splitlines()[0]
    with open(root / "test_list.txt", "a") as f:
        f.write(first + "\n")
    with pytest.raises(corpus.CorpusError, match=r"test_list.txt: line 5 lists .* again \(first on line 1\)"):
        didemo.load_didemo(root, check_sizes=False)
    root = copy("msvd")
    with open(root / "val_list.txt", "a") as f:
        f.write((root / "train_list.txt").read_text().splitlines()[0] + "\n")
    with pytest.raises(corpus.CorpusError, match=r"is in both the train and the val split"):
        msvd.load_msvd(root, check_sizes=False)


def test_a_listed_video_without_text_is_an_error(copy):
    root = copy("didemo")
    with open(root / "val_list.txt", "a") as f:
        f.write("nobody@N00_1_x.mp4\n")
    with pytest.raises(corpus.CorpusError, match=r"val_list.txt lists 1 videos that val_data.json does not describe"):
        didemo.load_didemo(root, check_sizes=False)
    root = copy("msvd")
    with open(root / "test_list.txt", "a") as f:
        f.write("no_such_video_1_2\n")
    with pytest.raises(corpus.CorpusError, match=r"test_list.txt lists 1 videos without captions in raw-captions.pkl"):
        msvd.load_msvd(root, check_sizes=False)


def test_activitynet_ids_on_one_side_are_kept_in_sight_and_a_doubled_video_refused(copy):
    root = copy("activitynet")
    ids = json.loads((root / "val_ids.json").read_text())
    (root / "val_ids.json").write_text(json.dumps(ids + ["v_notcaptioned"]))
    c = activitynet.load_activitynet(root, check_sizes=False)
    assert c.skipped["val_1"] == ["v_notcaptioned"] and len(c.test) == 4
    (root / "val_ids.json").write_text(json.dumps(ids + ids[:1]))
    with pytest.raises(corpus.CorpusError, match=r"val_ids.json: entry 4 is .* again \(first at entry 0\)"):
        activitynet.load_activitynet(root, check_sizes=False)
    (root / "val_ids.json").write_text(json.dumps(ids))
    path = c.video_path(ids[0])
    twin = path.with_name(("v_" + path.name) if not path.name.startswith("v_") else path.name[2:])
    shutil.copy(path, twin)
    with pytest.raises(corpus.CorpusError, match=rf"video {ids[0]} is there twice"):
        activitynet.load_activitynet(root, check_sizes=False)
    data = json.loads((root / "train.json").read_text())
    data[next(iter(data))] = {"duration": 1.0, "timestamps": []}
    (root / "train.json").write_text(json.dumps(data))
    with pytest.raises(corpus.CorpusError, match=r"train.json: video .* has no list of sentences"):
        activitynet.load_activitynet(root, check_sizes=False, check_videos=False)


def test_lsmdc_lines_are_checked(copy):
    root = copy("lsmdc")
    path = root / lsmdc.FILES["val"]
    path.write_text(path.read_text() + "1001_Flight_00.09.00.000-00.09.01.000\t1\t2\t3\ta sentence\n")
    with pytest.raises(corpus.CorpusError, match=r"LSMDC16_annos_val.csv: line 3 has 5 tab-separated fields"):
        lsmdc.load_lsmdc(root, check_sizes=False)
    path.write_text(path.read_text().splitlines(keepends=True)[0])
    test = root / lsmdc.FILES["test"]
    test.write_text(test.read_text() + test.read_text().splitlines(keepends=True)[2])
    with pytest.raises(corpus.CorpusError, match=r"publictect.csv: line 5 lists clip .* again \(first on line 3\)"):
        lsmdc.load_lsmdc(root, check_sizes=False)


def test_a_tampered_caption_pickle_is_refused_without_running_it(copy, tmp_path):
    root = copy("msvd")
    marker = tmp_path / "ran"

    class Payload:  # what an attacker would put in the file: a call of os.system when unpickled
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))

    captions = safe_pickle.load_plain(root / msvd.PICKLE)
    first = next(iter(captions))
    captions[first] = [Payload()]
    (root / msvd.PICKLE).write_bytes(pickle.dumps(captions))
    with pytest.raises(safe_pickle.UnsafePickleError, match=r"raw-captions.pkl asks to load the Python global "
                                                            r"(posix|os|nt)\.system.*refused without running"):
        msvd.load_msvd(root, check_sizes=False)
    assert not marker.exists()
    (root / msvd.PICKLE).write_bytes(pickle.dumps({first: [["a", "b"], 3]}))
    with pytest.raises(corpus.CorpusError, match=r"raw-captions.pkl: caption 1 of video .* is not a string"):
        msvd.load_msvd(root, check_sizes=False)
    (root / msvd.PICKLE).write_bytes(b"not a pickle")
    with pytest.raises(pickle.UnpicklingError, match="raw-captions.pkl is not a readable pickle"):
        msvd.load_msvd(root, check_sizes=False)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_data_unpickles_in_every_protocol(protocol):
    data = {"v": [["a", "dog"], "runs"], "n": (1, 2.5, None, True), "s": {1, 2}, "f": frozenset({"x"}), "b": b"\x00"}
    assert safe_pickle.loads_plain(pickle.dumps(data, protocol=protocol)) == data
    with pytest.raises(safe_pickle.UnsafePickleError, match=r"(__builtin__|builtins)\.eval"):
        safe_pickle.loads_plain(pickle.dumps(eval, protocol=protocol))


def _smoke_sets(**changes):
    from clipadapt.experiments import settings

    return settings.of(profiles.get("colab-smoke")).videos.replace(**changes)


def test_the_benchmarks_feed_the_video_text_dataset(sets):
    frames = profiles.get("colab-smoke").video_frames
    videos, frames = video_sets.for_dataset(_smoke_sets(test_pairs=2), "msvd", frames)
    data = video_sets.video_data(videos, frames, 64, sets / "unused", data_root=sets)
    test = data["test"]
    assert isinstance(test, video.VideoTextDataset) and len({p for p, _ in test.records}) == 2
    assert test.captions_per_video == 5 and len(test) == 4 + 5  # both videos with all their captions
    first, video_of = test.video_groups()
    assert first == [0, 4] and video_of == [0] * 4 + [1] * 5
    assert len(data["train"]) == 4 and data["max_tokens"] is None
    para = video_sets.video_data(video_sets.for_dataset(videos, "didemo", frames)[0], frames, 64, sets / "unused",
                                 data_root=sets)
    assert para["max_tokens"] == 64 and para["test"].captions_per_video == 1 and len(para["test"]) == 2
    assert para["test"].seconds == para["train"].seconds == 31 and data["test"].seconds is None
    whole = video_sets.video_data(video_sets.for_dataset(videos.replace(test_all=True), "lsmdc", frames)[0], frames,
                                  64, sets / "u", data_root=sets)
    assert len(whole["test"]) == 4
    batch, captions, failures = whole["test"].batch([0, 1])
    assert batch.shape == (2, frames, 3, 64, 64) and not failures


def test_only_the_first_seconds_are_read_where_asked(sets):
    path = didemo.load_didemo(sets / "didemo", check_sizes=False).video_path(
        (sets / "didemo" / "test_list.txt").read_text().split()[0])
    assert video.probe(path) == (16, 8.0)  # 2 seconds at 8 frames per second
    whole = video.VideoTextDataset([(path, "x")], frames=4, image_size=64)
    first = video.VideoTextDataset([(path, "x")], frames=4, image_size=64, seconds=1)
    assert whole.cropped_frames(path).shape[0] == 16 and first.cropped_frames(path).shape[0] == 8
    assert torch.equal(first.cropped_frames(path), whole.cropped_frames(path)[:8])
    assert video.VideoTextDataset([(path, "x")], frames=4, image_size=64, seconds=31).cropped_frames(path).shape[0] == 16
    with pytest.raises(ValueError, match="seconds must be positive"):
        video.VideoTextDataset([(path, "x")], seconds=0)


def test_for_dataset_sets_the_papers_budget_and_refuses_synthetic_profiles():
    from clipadapt import experiments
    from clipadapt.training import budgets, recipes

    def bench(name, dataset):
        b = experiments.Workbench(profiles.get(name), None, None, None)
        b.read_dataset(dataset)
        return b

    paper = bench("paper", "didemo")
    assert paper.settings.videos.source == "didemo" and paper.settings.videos.test_all
    # the papers' 5 epochs of whichever training set (DiDeMo's 8,392 pairs); colab: a T4's steps
    vop = recipes.get("VoP", paper.profile, "F")
    assert (vop.steps, vop.epochs) == (None, 5) and vop.total_steps(8392) == 5 * 263
    assert bench("colab", "lsmdc").settings.videos.source == "lsmdc"
    assert recipes.get("VoP", profiles.get("colab"), "F").steps == budgets.of(profiles.get("colab"))["video_steps"]
    with pytest.raises(ValueError, match="this profile uses the synthetic video world"):
        bench("tiny", "msvd")
    with pytest.raises(ValueError, match="unknown dataset 'youcook'; choose one of msrvtt, didemo"):
        bench("paper", "youcook")


def test_tempme_samples_64_frames_of_long_videos_where_the_paper_does():
    from clipadapt import experiments
    from clipadapt.methods import registry

    tempme, vop = registry.get("TempMe"), registry.get("VoP")
    def frames(spec, profile, dataset):  # as reproduce's workbench reads a benchmark
        bench = experiments.Workbench(profiles.get(profile), None, None, None)
        bench.read_dataset(dataset, spec.long_video_frames)
        return bench.frames

    for dataset, n in (("activitynet", 64), ("didemo", 64), ("lsmdc", 12), ("msvd", 12), ("msrvtt", 12)):
        assert frames(tempme, "paper", dataset) == n, dataset
        assert frames(vop, "paper", dataset) == 12  # VoP: 12 everywhere
    assert frames(tempme, "colab", "activitynet") == 12  # a T4's budget
    assert video_sets.BENCHMARKS["activitynet"].max_tokens == video_sets.BENCHMARKS["didemo"].max_tokens == 64


@pytest.mark.parametrize("method, variant, dataset", [("VoP", "F", "didemo"), ("TempMe", "lora", "activitynet"),
                                                      ("VoP", "P", "lsmdc"), ("TempMe", "lora", "msvd")])
def test_reproduce_runs_each_benchmark_end_to_end(sets, tmp_path, monkeypatch, capsys, method, variant, dataset):
    """One command per table row, on the miniature copy under a small profile: colab-smoke's
    data paths with the tiny CLIP (8 frames of 64 pixels, one step of 2 pairs)."""
    from clipadapt import reproduce

    small = profiles.get("colab-smoke").replace(name="smoke-tiny", clip_model="tiny-clip", clip_pretrained="synthetic",
                                                video_frames=8, video_size=64, based_on="colab-smoke")
    monkeypatch.setitem(profiles.PROFILES, "smoke-tiny", small)
    out = tmp_path / "run"
    argv = [method, "--variant", variant, "--profile", "smoke-tiny", "--dataset", dataset, "--data-root", str(sets),
            "--out", str(out), "--no-progress", "--device", "cpu"] + (["--steps", "2"] if method == "VoP" else [])
    assert reproduce.main(argv) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["profile"] == f"smoke-tiny/{dataset}" and result["steps"] == (2 if method == "VoP" else 1)
    assert set(result["metrics"]) == {"text_to_video", "video_to_text"}
    assert 0 <= result["metrics"]["text_to_video"]["R@1"] <= 100
    table = capsys.readouterr().out
    assert f"smoke-tiny/{dataset} (measured)" in table and "paper (cited)" not in table  # MSR-VTT's row is not this one
    if method == "VoP":  # two steps: a checkpoint at the first, which another benchmark's run must refuse
        other = "lsmdc" if dataset == "didemo" else "didemo"
        assert reproduce.main([*argv, "--resume", "--dataset", other]) == 2
        assert f"profile: checkpoint 'smoke-tiny/{dataset}', this run 'smoke-tiny/{other}'" in capsys.readouterr().err


def test_reproduce_refuses_a_dataset_it_cannot_use(capsys):
    from clipadapt import reproduce

    for argv, says in ((["CoOp", "--profile", "colab", "--dataset", "msvd"], "chooses a retrieval benchmark"),
                       (["VoP", "--profile", "tiny", "--dataset", "msvd"], "uses the synthetic video world"),
                       (["VoP", "--profile", "paper", "--dataset", "youcook"], "invalid choice: 'youcook'")):
        with pytest.raises(SystemExit) as exit_:
            reproduce.main(argv)
        assert exit_.value.code == 2 and says in capsys.readouterr().err
