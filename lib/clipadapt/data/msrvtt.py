"""MSR-VTT in the files that CLIP4Clip, X-Pool, VoP and TempMe use.

* ``MSRVTT_data.json`` -- ``{"videos": [{"video_id": "video0", ...}, ...],
  "sentences": [{"video_id": "video0", "caption": "...", "sen_id": 0}, ...]}`` (20 captions
  per video);
* ``MSRVTT_train.9k.csv`` -- one column ``video_id``: the 9k training videos (training uses
  every caption of each);
* ``MSRVTT_JSFUSION_test.csv`` -- columns ``key, vid_key, video_id, sentence``: the 1k-A test
  set, one caption per video;
* the videos, ``<videos dir>/<video_id>.mp4``.

:func:`load_msrvtt` checks every file and says what is missing and where to get it.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

DATA_JSON = "MSRVTT_data.json"
TRAIN_CSV = "MSRVTT_train.9k.csv"
TEST_CSV = "MSRVTT_JSFUSION_test.csv"
HOW_TO_GET = ("MSR-VTT as packaged by CLIP4Clip (msrvtt_data.zip holds the json and csv files; the videos "
              "are MSRVTT_Videos/*.mp4)")


class MSRVTTError(ValueError):
    pass


@dataclass
class MSRVTT:
    root: Path
    videos_dir: Path
    train: list[tuple[str, str]]  # (video_id, caption): every caption of the training videos
    test: list[tuple[str, str]]  # (video_id, sentence): the 1k-A pairs, in file order

    def video_path(self, video_id: str) -> Path:
        return self.videos_dir / f"{video_id}.mp4"

    def missing_videos(self, split: str = "test") -> list[str]:
        ids = dict.fromkeys(v for v, _ in getattr(self, split))
        return [v for v in ids if not self.video_path(v).is_file()]


def _read_csv(path: Path, columns: tuple[str, ...]) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = tuple(reader.fieldnames or ())
        if header[: len(columns)] != columns:
            raise MSRVTTError(f"{path}: expected the columns {', '.join(columns)}, found {', '.join(header) or 'none'}")
        rows = list(reader)
    for i, row in enumerate(rows):
        if any(not row.get(c) for c in columns):
            raise MSRVTTError(f"{path}: row {i + 2} has an empty {', '.join(c for c in columns if not row.get(c))}")
    return rows


def load_msrvtt(root: str | Path, videos_dir: str | Path | None = None, check_videos: bool = True) -> MSRVTT:
    """Read MSR-VTT's 9k training split and 1k-A test split from ``root``."""
    root = Path(root)
    videos = Path(videos_dir) if videos_dir is not None else root / "MSRVTT_Videos"
    missing = [p for p in (root / DATA_JSON, root / TRAIN_CSV, root / TEST_CSV) if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"MSR-VTT files missing: {', '.join(str(p) for p in missing)}. Download {HOW_TO_GET}. "
            f"Without the data, use the 'tiny' profile, which needs nothing from the internet.")
    try:
        data = json.loads((root / DATA_JSON).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise MSRVTTError(f"{root / DATA_JSON} is not valid JSON ({err})") from err
    if "sentences" not in data:
        raise MSRVTTError(f"{root / DATA_JSON} has no 'sentences' list")
    captions: dict[str, list[str]] = {}
    for i, s in enumerate(data["sentences"]):
        if "video_id" not in s or "caption" not in s:
            raise MSRVTTError(f"{root / DATA_JSON}: sentence {i} lacks 'video_id' or 'caption': {s!r}")
        captions.setdefault(s["video_id"], []).append(s["caption"])
    train_ids = [r["video_id"] for r in _read_csv(root / TRAIN_CSV, ("video_id",))]
    unknown = [v for v in train_ids if v not in captions]
    if unknown:
        raise MSRVTTError(f"{root / TRAIN_CSV} names {len(unknown)} videos without captions in {DATA_JSON}, "
                          f"e.g. {unknown[:3]}")
    train = [(v, c) for v in train_ids for c in captions[v]]
    test = [(r["video_id"], r["sentence"]) for r in _read_csv(root / TEST_CSV, ("key", "vid_key", "video_id", "sentence"))]
    ds = MSRVTT(root, videos, train, test)
    if check_videos:
        if not videos.is_dir():
            raise FileNotFoundError(f"the MSR-VTT videos folder {videos} does not exist. Download {HOW_TO_GET}.")
        absent = ds.missing_videos("test")
        if absent:
            raise FileNotFoundError(f"{len(absent)} test videos are missing from {videos}, e.g. "
                                    f"{', '.join(a + '.mp4' for a in absent[:3])}")
    return ds
