"""DiDeMo in the files that CLIP4Clip reads (``dataloaders/dataloader_didemo_retrieval.py``).

* ``{train,val,test}_data.json`` -- DiDeMo's own annotations (github.com/LisaAnne/
  LocalizingMoments, ``data/``): a list of ``{"annotation_id", "description", "video",
  "times", "dl_link", "num_segments"}``, one per described moment (about four per video;
  the test file: 4,021 moments of 1,037 videos);
* ``{train,val,test}_list.txt`` -- the splits of collaborative-experts
  (``misc/datasets/didemo/``), one video file name a line (``<flickr id>.mp4``, ``.mov``, ...):
  8,392 training, 1,065 validation and 1,004 test videos;
* the videos, ``<videos dir>/<name as listed>`` (sub-folders allowed).

The protocol is CLIP4Clip's paragraph-to-video retrieval: a video's descriptions, in file
order, are joined by spaces into one paragraph, in training and at test; the papers report
the test split (1,004 paragraphs and videos). Annotated videos that a list leaves out (the
test json describes 1,037 videos; collaborative-experts' list keeps the 1,004 that could be
downloaded) are kept in :attr:`~clipadapt.data.formats.corpus.VideoCorpus.skipped`. CLIP4Clip reads
only each video's first 31 seconds (the annotators saw 30); so does the dataset that
:mod:`clipadapt.data.video_sets` builds (``VideoTextDataset(seconds=31)``).
"""

from __future__ import annotations

from pathlib import Path

from .corpus import CorpusError, VideoCorpus, check_size, finish, index_videos, read_id_list, read_json, require

SPLITS = ("train", "val", "test")
SIZES = {"train": 8392, "val": 1065, "test": 1004}  # videos (= paragraphs), collaborative-experts' lists
VIDEOS = "DiDeMo_Videos"
HOW_TO_GET = ("DiDeMo's annotations (train_data.json, val_data.json, test_data.json from "
              "github.com/LisaAnne/LocalizingMoments/tree/master/data), collaborative-experts' split lists "
              "(train_list.txt, val_list.txt, test_list.txt from github.com/albanie/collaborative-experts/tree/"
              "master/misc/datasets/didemo) and the videos (LocalizingMoments' README, 'Getting the Videos', "
              f"saved as {VIDEOS}/<name as listed>)")


def _paragraphs(path: Path, wanted: list[str]) -> tuple[dict[str, str], list[str]]:
    """``{video: paragraph}`` of the videos in ``wanted``, and the other annotated videos."""
    data = read_json(path)
    if not isinstance(data, list):
        raise CorpusError(f"{path}: expected a list of annotations, found {type(data).__name__}")
    wanted_set, sentences, others = set(wanted), {}, {}
    for i, a in enumerate(data):
        if not isinstance(a, dict) or not isinstance(a.get("video"), str) or not isinstance(a.get("description"), str):
            raise CorpusError(f"{path}: annotation {i} lacks a 'video' or 'description' string: {a!r:.200}")
        if a["video"] in wanted_set:
            sentences.setdefault(a["video"], []).append(a["description"].strip())
        else:
            others[a["video"]] = None
    return {v: " ".join(s) for v, s in sentences.items()}, list(others)


def load_didemo(root: str | Path, videos_dir: str | Path | None = None, check_videos: bool = True,
                check_sizes: bool = True) -> VideoCorpus:
    """Read DiDeMo's three splits from ``root`` as paragraph-video pairs (see the module's docstring)."""
    root = Path(root)
    videos = Path(videos_dir) if videos_dir is not None else root / VIDEOS
    files = [root / f"{s}_{kind}" for s in SPLITS for kind in ("list.txt", "data.json")]
    require(files, "DiDeMo", HOW_TO_GET)
    splits, skipped = {}, {}
    for split in SPLITS:
        listed = read_id_list(root / f"{split}_list.txt")
        paragraphs, others = _paragraphs(root / f"{split}_data.json", listed)
        absent = [v for v in listed if v not in paragraphs]
        if absent:
            raise CorpusError(f"{root / f'{split}_list.txt'} lists {len(absent)} videos that {split}_data.json does "
                              f"not describe, e.g. {absent[:3]}")
        check_size(root / f"{split}_list.txt", split, len(listed), SIZES[split], check=check_sizes)
        splits[split] = [(v, paragraphs[v]) for v in listed]
        skipped[split] = others
    corpus = VideoCorpus("DiDeMo", root, videos, splits, index_videos(videos, key=lambda p: p.name), "test",
                         paragraphs=True, skipped=skipped)
    return finish(corpus, check_videos, HOW_TO_GET)
