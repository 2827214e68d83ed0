import csv
import json

import numpy as np
import pytest

from clipadapt.data import video
from clipadapt.data.formats import msrvtt


def write_fixture(root, n_train=3, n_test=2, captions_per_video=2):
    """A miniature MSR-VTT in exactly the real files' formats, with tiny mp4 videos."""
    ids = [f"video{i}" for i in range(n_train + n_test)]
    data = {
        "info": {"contributor": "fixture"},
        "videos": [{"category": 0, "url": "", "video_id": v, "start time": 0.0, "end time": 1.0,
                    "split": "train" if i < n_train else "test", "id": i} for i, v in enumerate(ids)],
        "sentences": [{"caption": f"caption {k} of {v}", "video_id": v, "sen_id": i * captions_per_video + k}
                      for i, v in enumerate(ids) for k in range(captions_per_video)],
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "MSRVTT_data.json").write_text(json.dumps(data))
    with open(root / "MSRVTT_train.9k.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["video_id"])
        w.writerows([v] for v in ids[:n_train])
    with open(root / "MSRVTT_JSFUSION_test.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "vid_key", "video_id", "sentence"])
        for i, v in enumerate(ids[n_train:]):
            w.writerow([f"ret{i}", f"msr{n_train + i}", v, f"a test sentence, with a comma, for {v}"])
    for i, v in enumerate(ids):
        frames = np.full((4, 32, 32, 3), 20 * i, dtype=np.uint8)
        video.write_mp4(root / "MSRVTT_Videos" / f"{v}.mp4", frames)
    return root


def test_loads_the_real_formats(tmp_path):
    ds = msrvtt.load_msrvtt(write_fixture(tmp_path / "msrvtt"))
    assert len(ds.train) == 6 and ds.train[0] == ("video0", "caption 0 of video0")
    assert ds.test == [("video3", "a test sentence, with a comma, for video3"),
                       ("video4", "a test sentence, with a comma, for video4")]
    assert video.read_frames(ds.video_path("video4")).shape == (4, 32, 32, 3)
    assert ds.missing_videos("train") == []


def test_missing_files_say_what_to_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="MSRVTT_data.json.*CLIP4Clip.*'tiny' profile"):
        msrvtt.load_msrvtt(tmp_path)
    root = write_fixture(tmp_path / "m")
    (root / "MSRVTT_Videos" / "video4.mp4").unlink()
    with pytest.raises(FileNotFoundError, match="1 test videos are missing.*video4.mp4"):
        msrvtt.load_msrvtt(root)
    assert len(msrvtt.load_msrvtt(root, check_videos=False).test) == 2


def test_malformed_files_are_named(tmp_path):
    root = write_fixture(tmp_path / "m")
    (root / "MSRVTT_JSFUSION_test.csv").write_text("id,text\n1,hello\n")
    with pytest.raises(msrvtt.MSRVTTError, match="JSFUSION_test.csv: expected the columns key, vid_key, video_id, sentence"):
        msrvtt.load_msrvtt(root)
    root = write_fixture(tmp_path / "n")
    with open(root / "MSRVTT_train.9k.csv", "a") as f:
        f.write("video999\n")
    with pytest.raises(msrvtt.MSRVTTError, match="train.9k.csv names 1 videos without captions.*video999"):
        msrvtt.load_msrvtt(root)
    (root / "MSRVTT_data.json").write_text("{")
    with pytest.raises(msrvtt.MSRVTTError, match="MSRVTT_data.json is not valid JSON"):
        msrvtt.load_msrvtt(root)


def test_a_byte_order_mark_is_read_through(tmp_path):
    root = write_fixture(tmp_path / "m")
    for name in ("MSRVTT_data.json", "MSRVTT_train.9k.csv", "MSRVTT_JSFUSION_test.csv"):
        path = root / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    ds = msrvtt.load_msrvtt(root)
    assert len(ds.train) == 6 and ds.test[0][0] == "video3"


def test_a_wrong_header_shows_invisible_characters(tmp_path):
    root = write_fixture(tmp_path / "m")
    (root / "MSRVTT_train.9k.csv").write_text("\u200bvideo_id\nvideo0\n")
    with pytest.raises(msrvtt.MSRVTTError, match=r"train.9k.csv: expected the columns video_id on line 1, found '\\u200bvideo_id'"):
        msrvtt.load_msrvtt(root)


def test_missing_training_videos_are_reported(tmp_path):
    root = write_fixture(tmp_path / "m")
    (root / "MSRVTT_Videos" / "video1.mp4").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 train videos are missing from .*MSRVTT_Videos, e.g. video1.mp4"):
        msrvtt.load_msrvtt(root)
    (root / "MSRVTT_Videos" / "video3.mp4").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 train and 1 test videos are missing.*video1.mp4, video3.mp4"):
        msrvtt.load_msrvtt(root)
    assert msrvtt.load_msrvtt(root, check_videos=False).missing_videos("train") == ["video1"]


def test_a_sentence_with_an_unquoted_comma_is_read_whole(tmp_path):
    root = write_fixture(tmp_path / "m")
    with open(root / "MSRVTT_JSFUSION_test.csv", "a") as f:
        f.write("ret2,msr1,video1,a man cooks, then eats, a meal\n")
    ds = msrvtt.load_msrvtt(root)
    assert ds.test[-1] == ("video1", "a man cooks, then eats, a meal")
    assert ds.test[0] == ("video3", "a test sentence, with a comma, for video3")  # quoted: as before


def test_an_extra_field_elsewhere_is_an_error_with_its_line(tmp_path):
    root = write_fixture(tmp_path / "m")
    with open(root / "MSRVTT_train.9k.csv", "a") as f:
        f.write("video3,video4\n")
    with pytest.raises(msrvtt.MSRVTTError, match=r"train.9k.csv: line 5 has 2 fields where the header has 1"):
        msrvtt.load_msrvtt(root)


def test_a_training_video_listed_twice_is_an_error_naming_both_lines(tmp_path):
    root = write_fixture(tmp_path / "m")
    with open(root / "MSRVTT_train.9k.csv", "a") as f:
        f.write("video1\n")
    with pytest.raises(msrvtt.MSRVTTError, match=r"train.9k.csv: line 5 lists video1 again \(first on line 3\)"):
        msrvtt.load_msrvtt(root)


def test_an_empty_value_names_its_line(tmp_path):
    root = write_fixture(tmp_path / "m")
    with open(root / "MSRVTT_JSFUSION_test.csv", "a") as f:
        f.write("ret9,msr9,,a sentence\n")
    with pytest.raises(msrvtt.MSRVTTError, match=r"JSFUSION_test.csv: line 4 has an empty video_id"):
        msrvtt.load_msrvtt(root)
