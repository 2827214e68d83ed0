"""What the loaders of the retrieval benchmarks share: the corpus they return and their checks.

Each benchmark's loader (:mod:`.didemo`, :mod:`.activitynet`, :mod:`.lsmdc`, :mod:`.msvd`)
reads its files as the community distributes them and returns a :class:`VideoCorpus`:
``(video id, text)`` pairs per split, in file order, and the file of every video found.
The checks are the same everywhere:

* a missing annotation file is named with where to get it (:func:`require`);
* a malformed line or entry is an error naming the file and the line (or entry);
* a video listed twice in a split is an error naming both lines (its pairs would count twice);
* the number of videos of each split is compared with the published one
  (:func:`check_size`; ``check_sizes=False`` for a subset or a miniature copy);
* every video of every split is looked up before training (:func:`require_videos`);
* annotated videos that a split list leaves out are kept in :attr:`VideoCorpus.skipped`,
  never dropped without a trace.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


class CorpusError(ValueError):
    """A dataset file that is not in the expected format (the message names file and line)."""


@dataclass
class VideoCorpus:
    name: str
    root: Path
    videos_dir: Path
    splits: dict[str, list[tuple[str, str]]]  # split -> (video id, text) pairs, in file order
    files: dict[str, Path]  # video id -> its file, for the videos found
    test_split: str  # the split the papers report
    paragraphs: bool = False  # one text per video: its sentences joined (paragraph-to-video retrieval)
    # split -> annotated video ids that the split's list leaves out (as the reference loaders do)
    skipped: dict[str, list[str]] = field(default_factory=dict)

    @property
    def train(self) -> list[tuple[str, str]]:
        return self.splits["train"]

    @property
    def test(self) -> list[tuple[str, str]]:
        return self.splits[self.test_split]

    def video_path(self, video_id: str) -> Path:
        return self.files.get(video_id, self.videos_dir / video_id)

    def videos(self, split: str) -> list[str]:
        """The split's video ids, each once, in order of first appearance."""
        return list(dict.fromkeys(v for v, _ in self.splits[split]))

    def missing_videos(self, split: str) -> list[str]:
        return [v for v in self.videos(split) if v not in self.files]


def require(paths: list[Path], what: str, how_to_get: str) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{what} files missing: {', '.join(str(p) for p in missing)}. Get {how_to_get}. "
            f"Without the data, use the 'tiny' profile, which needs nothing from the internet.")


def read_lines(path: Path) -> list[tuple[int, str]]:
    """``(line number, text)`` of the non-blank lines of a UTF-8 text file (a byte-order mark
    is dropped; the line's surrounding whitespace too)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise CorpusError(f"{path} is not UTF-8 text ({err})") from err
    return [(i, line.strip()) for i, line in enumerate(text.splitlines(), 1) if line.strip()]


def read_id_list(path: Path) -> list[str]:
    """The ids of a split list, one per line, in order; an id listed twice is an error."""
    first: dict[str, int] = {}
    for line, vid in read_lines(path):
        if vid in first:
            raise CorpusError(f"{path}: line {line} lists {vid} again (first on line {first[vid]}); "
                              f"each video belongs on one line")
        first[vid] = line
    return list(first)


def read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as err:
        raise CorpusError(f"{path} is not valid JSON ({err})") from err


def check_size(path: Path, split: str, found: int, expected: int, what: str = "videos",
               check: bool = True) -> None:
    """The published size of a split, or an error that says what differs."""
    if check and found != expected:
        raise CorpusError(
            f"{path}: the {split} split has {found:,} {what}, but the published split has {expected:,}; "
            f"this is not the standard split (a partial download, another version of the file?). Pass "
            f"check_sizes=False to read it anyway (for a subset or a miniature copy)")


def index_videos(folder: Path, key: Callable[[Path], str] = lambda p: p.stem) -> dict[str, Path]:
    """Every video file under ``folder`` (sub-folders too, hidden files left out) by
    ``key(path)`` (default: the name without its extension). Two files with the same key
    are an error: which one is meant cannot be told."""
    out: dict[str, Path] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.rglob("*")):
        if path.name.startswith(".") or not path.is_file():
            continue
        k = key(path)
        if k in out:
            raise CorpusError(f"two files under {folder} are video {k}: {out[k]} and {path}; keep one")
        out[k] = path
    return out


def require_videos(corpus: VideoCorpus, how_to_get: str) -> None:
    """Every video of every split present, or one error counting what is missing, with examples."""
    if not corpus.videos_dir.is_dir():
        raise FileNotFoundError(f"the {corpus.name} videos folder {corpus.videos_dir} does not exist. "
                                f"Get {how_to_get}.")
    absent = {split: corpus.missing_videos(split) for split in corpus.splits}
    if any(absent.values()):
        counts = " and ".join(f"{len(a):,} {split}" for split, a in absent.items() if a)
        examples = [v for a in absent.values() for v in a[:3]]
        raise FileNotFoundError(f"{counts} videos are missing from {corpus.videos_dir}, e.g. {', '.join(examples)}. "
                                f"Get {how_to_get}, or pass check_videos=False to read the texts only.")


def check_disjoint(corpus: VideoCorpus) -> None:
    """No video in two splits (a test video seen in training would inflate the test)."""
    seen: dict[str, str] = {}
    for split in corpus.splits:
        for v in corpus.videos(split):
            if v in seen:
                raise CorpusError(f"{corpus.name}: video {v} is in both the {seen[v]} and the {split} split "
                                  f"({corpus.root}); the splits must not share videos")
            seen[v] = split


def finish(corpus: VideoCorpus, check_videos: bool, how_to_get: str) -> VideoCorpus:
    """The checks every loader ends with: disjoint splits, then (``check_videos``) every video there."""
    check_disjoint(corpus)
    if check_videos:
        require_videos(corpus, how_to_get)
    return corpus
