"""MSVD in the files that CLIP4Clip (``dataloader_msvd_retrieval.py``) and X-Pool read.

* ``train_list.txt``, ``val_list.txt``, ``test_list.txt`` -- collaborative-experts' splits
  (``misc/datasets/msvd/``), one video id a line: 1,200, 100 and 670 videos;
* the captions, either ``raw-captions.pkl`` (CLIP4Clip's ``msvd_data.zip``, from
  collaborative-experts: a pickled ``{video id: [[word, ...], ...]}``, each caption a list of
  words) or ``captions_msvd.json`` (X-Pool's ``data/MSVD/``: ``{video id: ["caption", ...]}``);
  the pickle is read first when both are there. The pickle is read by
  :func:`clipadapt.data.formats.safe_pickle.load_plain`, which refuses anything but plain data;
* the videos, ``<videos dir>/<video id>.avi`` (``YouTubeClips`` of the original release).

Every caption of a video is a pair (X-Pool's caption file: 48,774 training, 4,290 validation
and 27,763 test captions, 21 to 81 per test video). The test protocol is the papers'
multi-caption one: every test caption is a query for its video, and a video retrieves its
captions as a whole (:func:`clipadapt.core.metrics.multi_caption_metrics`).
"""

from __future__ import annotations

from pathlib import Path

from . import safe_pickle
from .corpus import CorpusError, VideoCorpus, check_size, finish, index_videos, read_id_list, read_json, require

SPLITS = ("train", "val", "test")
SIZES = {"train": 1200, "val": 100, "test": 670}  # videos
PICKLE, JSON = "raw-captions.pkl", "captions_msvd.json"
VIDEOS = "MSVD_Videos"
HOW_TO_GET = ("MSVD's splits and captions (CLIP4Clip's msvd_data.zip: github.com/ArrowLuo/CLIP4Clip/releases/"
              "download/v0.0/msvd_data.zip, or X-Pool's data/MSVD/) and the videos (YouTubeClips.tar from "
              f"www.cs.utexas.edu/users/ml/clamp/videoDescription/, saved as {VIDEOS}/<video id>.avi)")


def read_captions(path: Path) -> dict[str, list[str]]:
    """``{video id: [caption, ...]}`` from ``raw-captions.pkl`` (word lists joined by spaces,
    as CLIP4Clip does) or ``captions_msvd.json``."""
    data = safe_pickle.load_plain(path) if path.suffix == ".pkl" else read_json(path)
    if not isinstance(data, dict):
        raise CorpusError(f"{path}: expected {{video id: [captions]}}, found {type(data).__name__}")
    out = {}
    for vid, caps in data.items():
        if not isinstance(vid, str) or not isinstance(caps, list) or not caps:
            raise CorpusError(f"{path}: video {vid!r} has no list of captions: {caps!r:.200}")
        texts = []
        for k, c in enumerate(caps):
            if isinstance(c, (list, tuple)) and all(isinstance(w, str) for w in c):
                c = " ".join(c)
            if not isinstance(c, str) or not c.strip():
                raise CorpusError(f"{path}: caption {k} of video {vid} is not a string or a list of words: {c!r:.200}")
            texts.append(c.strip())
        out[vid] = texts
    return out


def load_msvd(root: str | Path, videos_dir: str | Path | None = None, check_videos: bool = True,
              check_sizes: bool = True) -> VideoCorpus:
    """Read MSVD's three splits from ``root`` as video-caption pairs (every caption of each video)."""
    root = Path(root)
    videos = Path(videos_dir) if videos_dir is not None else root / VIDEOS
    captions_file = root / PICKLE if (root / PICKLE).is_file() else root / JSON
    require([root / f"{s}_list.txt" for s in SPLITS] + [captions_file], "MSVD", HOW_TO_GET)
    captions = read_captions(captions_file)
    splits = {}
    for split in SPLITS:
        path = root / f"{split}_list.txt"
        ids = read_id_list(path)
        absent = [v for v in ids if v not in captions]
        if absent:
            raise CorpusError(f"{path} lists {len(absent)} videos without captions in {captions_file.name}, "
                              f"e.g. {absent[:3]}")
        check_size(path, split, len(ids), SIZES[split], check=check_sizes)
        splits[split] = [(v, c) for v in ids for c in captions[v]]
    corpus = VideoCorpus("MSVD", root, videos, splits, index_videos(videos), "test")
    return finish(corpus, check_videos, HOW_TO_GET)
