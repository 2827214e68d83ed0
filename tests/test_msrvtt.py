import csv
import json

import numpy as np
import pytest

from clipadapt.data import msrvtt, video


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
