"""LSMDC in the files that CLIP4Clip and X-Pool read (``dataloader_lsmdc_retrieval.py``,
``datasets/lsmdc_dataset.py``), obtained from MPII with permission (no public download).

* ``LSMDC16_annos_training.csv``, ``LSMDC16_annos_val.csv``,
  ``LSMDC16_challenge_1000_publictect.csv`` -- no header, one clip a line, six tab-separated
  fields: clip id, start and end (aligned), start and end (extracted), sentence;
* the clips, ``<videos dir>/<movie>/<clip id>.avi`` as X-Pool lays them out (any sub-folder
  and extension is found).

Sizes: 101,079 training, 7,408 validation and 1,000 test lines (one sentence each; a clip id
may come back in training with another sentence, and every line is kept, as CLIP4Clip
does). The papers test on the 1,000 clips of the public test file, one sentence each; a clip
listed twice there is an error.
"""

from __future__ import annotations

from pathlib import Path

from .corpus import CorpusError, VideoCorpus, check_size, finish, index_videos, read_lines, require

FILES = {"train": "LSMDC16_annos_training.csv", "val": "LSMDC16_annos_val.csv",
         "test": "LSMDC16_challenge_1000_publictect.csv"}
SIZES = {"train": 101079, "val": 7408, "test": 1000}  # lines (clip, sentence)
VIDEOS = "LSMDC_Videos"
HOW_TO_GET = ("LSMDC from MPII (with their permission: sites.google.com/site/describingmovies/download): the "
              f"three csv files {', '.join(FILES.values())} and the clips, saved as {VIDEOS}/<movie>/<clip id>.avi")


def read_annotations(path: Path) -> list[tuple[int, str, str]]:
    """``(line, clip id, sentence)`` of an LSMDC annotation file."""
    out = []
    for line, text in read_lines(path):
        fields = text.split("\t")
        if len(fields) != 6:
            raise CorpusError(f"{path}: line {line} has {len(fields)} tab-separated fields, expected 6 (clip id, "
                              f"4 times, sentence)")
        clip, sentence = fields[0].strip(), fields[5].strip()
        if not clip or not sentence:
            raise CorpusError(f"{path}: line {line} has an empty {'clip id' if not clip else 'sentence'}")
        out.append((line, clip, sentence))
    return out


def load_lsmdc(root: str | Path, videos_dir: str | Path | None = None, check_videos: bool = True,
               check_sizes: bool = True) -> VideoCorpus:
    """Read LSMDC's three splits from ``root`` as clip-sentence pairs."""
    root = Path(root)
    videos = Path(videos_dir) if videos_dir is not None else root / VIDEOS
    require([root / f for f in FILES.values()], "LSMDC", HOW_TO_GET)
    splits = {}
    for split, name in FILES.items():
        rows = read_annotations(root / name)
        if split == "test":
            first: dict[str, int] = {}
            for line, clip, _ in rows:
                if clip in first:
                    raise CorpusError(f"{root / name}: line {line} lists clip {clip} again (first on line "
                                      f"{first[clip]}); the test set holds each clip once")
                first[clip] = line
        check_size(root / name, split, len(rows), SIZES[split], "lines", check=check_sizes)
        splits[split] = [(clip, sentence) for _, clip, sentence in rows]
    corpus = VideoCorpus("LSMDC", root, videos, splits, index_videos(videos), "test")
    return finish(corpus, check_videos, HOW_TO_GET)
