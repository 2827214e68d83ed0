"""MSR-VTT in the files that CLIP4Clip, X-Pool, VoP and TempMe use.

* ``MSRVTT_data.json`` -- ``{"videos": [{"video_id": "video0", ...}, ...],
  "sentences": [{"video_id": "video0", "caption": "...", "sen_id": 0}, ...]}`` (20 captions
  per video);
* ``MSRVTT_train.9k.csv`` -- one column ``video_id``: the 9k training videos (training uses
  every caption of each);
* ``MSRVTT_JSFUSION_test.csv`` -- columns ``key, vid_key, video_id, sentence``: the 1k-A test
  set, one caption per video;
* the videos, ``<videos dir>/<video_id>.mp4``.

:func:`load_msrvtt` checks every file and says what is missing and where to get it: every
video of both splits, a training video listed twice (an error naming both lines), a UTF-8
byte-order mark (dropped), a test sentence cut by an unquoted comma (joined back).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from ..fetch.resources import RESOURCES

DATA_JSON = "MSRVTT_data.json"
TRAIN_CSV = "MSRVTT_train.9k.csv"
TEST_CSV = "MSRVTT_JSFUSION_test.csv"
HOW_TO_GET = ("MSR-VTT as packaged by CLIP4Clip (msrvtt_data.zip holds the json and csv files; the videos "
              "are MSRVTT_Videos/*.mp4): `python -m clipadapt.data.fetch msrvtt` fetches both, from "
              f"{RESOURCES['msrvtt-annotations'].url} and {RESOURCES['msrvtt-videos'].url}")


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


def _read_csv(path: Path, columns: tuple[str, ...], rest_joins_last: bool = False) -> list[tuple[int, dict]]:
    """Rows of a CSV file as ``(line number, {column: value})``.

    A UTF-8 byte-order mark (Excel and Notepad write one) is dropped. A row with more fields
    than columns is an error naming its line, unless ``rest_joins_last``: then the fields
    after the last column were cut from it by an unquoted comma and are joined back (the
    sentence is the last column of the test split, and the only one with free text)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = tuple(next(reader, ()))
        if header[: len(columns)] != columns:
            found = ", ".join(repr(h) for h in header) or "none"
            raise MSRVTTError(f"{path}: expected the columns {', '.join(columns)} on line 1, found {found}")
        rows = []
        for fields in reader:
            line = reader.line_num
            if not fields:
                continue
            if len(fields) > len(header):
                if not rest_joins_last or len(header) != len(columns):
                    raise MSRVTTError(f"{path}: line {line} has {len(fields)} fields where the header has "
                                      f"{len(header)}; a value with a comma must be quoted")
                fields = fields[: len(header) - 1] + [",".join(fields[len(header) - 1:])]
            row = dict(zip(header, fields))
            empty = [c for c in columns if not row.get(c, "").strip()]
            if empty:
                raise MSRVTTError(f"{path}: line {line} has an empty {', '.join(empty)}")
            rows.append((line, row))
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
        data = json.loads((root / DATA_JSON).read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as err:
        raise MSRVTTError(f"{root / DATA_JSON} is not valid JSON ({err})") from err
    if "sentences" not in data:
        raise MSRVTTError(f"{root / DATA_JSON} has no 'sentences' list")
    captions: dict[str, list[str]] = {}
    for i, s in enumerate(data["sentences"]):
        if "video_id" not in s or "caption" not in s:
            raise MSRVTTError(f"{root / DATA_JSON}: sentence {i} lacks 'video_id' or 'caption': {s!r}")
        captions.setdefault(s["video_id"], []).append(s["caption"])
    train_rows = _read_csv(root / TRAIN_CSV, ("video_id",))
    first_line: dict[str, int] = {}
    for line, r in train_rows:
        v = r["video_id"].strip()
        if v in first_line:  # each video's captions would be counted twice
            raise MSRVTTError(f"{root / TRAIN_CSV}: line {line} lists {v} again (first on line {first_line[v]}); "
                              f"each training video belongs on one line")
        first_line[v] = line
    train_ids = list(first_line)
    unknown = [v for v in train_ids if v not in captions]
    if unknown:
        raise MSRVTTError(f"{root / TRAIN_CSV} names {len(unknown)} videos without captions in {DATA_JSON}, "
                          f"e.g. {unknown[:3]} (line {first_line[unknown[0]]})")
    train = [(v, c) for v in train_ids for c in captions[v]]
    test_rows = _read_csv(root / TEST_CSV, ("key", "vid_key", "video_id", "sentence"), rest_joins_last=True)
    test = [(r["video_id"].strip(), r["sentence"]) for _, r in test_rows]
    ds = MSRVTT(root, videos, train, test)
    if check_videos:
        if not videos.is_dir():
            raise FileNotFoundError(f"the MSR-VTT videos folder {videos} does not exist. Download {HOW_TO_GET}.")
        absent = {split: ds.missing_videos(split) for split in ("train", "test")}
        if any(absent.values()):
            counts = " and ".join(f"{len(a)} {split}" for split, a in absent.items() if a)
            examples = [a + ".mp4" for split in ("train", "test") for a in absent[split][:3]]
            raise FileNotFoundError(f"{counts} videos are missing from {videos}, e.g. {', '.join(examples)}. "
                                    f"Download {HOW_TO_GET}, or pass check_videos=False to read the captions only.")
    return ds
