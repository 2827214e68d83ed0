"""ActivityNet Captions in the files that CLIP4Clip reads (``dataloader_activitynet_retrieval.py``).

The official ``captions.zip`` of ActivityNet Captions (cs.stanford.edu/people/ranjaykrishna/
densevid/) holds, among others:

* ``train.json``, ``val_1.json`` -- ``{"v_<youtube id>": {"duration": seconds, "timestamps":
  [[start, end], ...], "sentences": ["...", ...]}, ...}``;
* ``train_ids.json``, ``val_ids.json`` -- the lists of ``"v_<youtube id>"`` of each split.

The protocol is CLIP4Clip's paragraph-to-video retrieval: a video's sentences joined by
spaces into one paragraph, trained on ``train`` (10,009 videos) and tested on ``val_1``
(4,917), as collaborative-experts and every CLIP-based paper do. A split is the videos of its
id list that its json describes, in list order; ids on one side only are kept in
:attr:`~clipadapt.data.formats.corpus.VideoCorpus.skipped` (CLIP4Clip drops them quietly).

Videos: ``<videos dir>/<youtube id>.<any extension>``, with or without the ``v_`` prefix
(CLIP4Clip's folder drops it; ActivityNet's own download keeps it), sub-folders allowed.
"""

from __future__ import annotations

from pathlib import Path

from .corpus import CorpusError, VideoCorpus, check_size, finish, index_videos, read_json, require

FILES = {"train": ("train_ids.json", "train.json"), "val_1": ("val_ids.json", "val_1.json")}
SIZES = {"train": 10009, "val_1": 4917}  # videos (= paragraphs)
VIDEOS = "Activity_Videos"
HOW_TO_GET = ("ActivityNet Captions' captions.zip (cs.stanford.edu/people/ranjaykrishna/densevid/captions.zip: "
              "train.json, val_1.json, train_ids.json, val_ids.json) and the ActivityNet videos (activity-net.org/"
              f"download.html, saved as {VIDEOS}/<youtube id>.mp4)")


def _ids(path: Path) -> list[str]:
    data = read_json(path)
    if not isinstance(data, list) or not all(isinstance(v, str) for v in data):
        raise CorpusError(f"{path}: expected a list of video ids like 'v_QOlSCBRmfWY'")
    seen: dict[str, int] = {}
    for i, v in enumerate(data):
        if v in seen:
            raise CorpusError(f"{path}: entry {i} is {v} again (first at entry {seen[v]}); each video once")
        seen[v] = i
    return data


def _paragraphs(path: Path) -> dict[str, str]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise CorpusError(f"{path}: expected {{video id: {{'sentences': [...]}}}}, found {type(data).__name__}")
    out = {}
    for vid, entry in data.items():
        sentences = entry.get("sentences") if isinstance(entry, dict) else None
        if not isinstance(sentences, list) or not sentences or not all(isinstance(s, str) for s in sentences):
            raise CorpusError(f"{path}: video {vid} has no list of sentences: {entry!r:.200}")
        out[vid] = " ".join(s.strip() for s in sentences)
    return out


def _find(files: dict[str, Path], vid: str) -> Path | None:
    bare = vid[2:] if vid.startswith("v_") else vid
    found = [files[k] for k in dict.fromkeys((vid, bare)) if k in files]
    if len(found) > 1:
        raise CorpusError(f"video {vid} is there twice: {found[0]} and {found[1]}; keep one")
    return found[0] if found else None


def load_activitynet(root: str | Path, videos_dir: str | Path | None = None, check_videos: bool = True,
                     check_sizes: bool = True) -> VideoCorpus:
    """Read ActivityNet Captions' train and val_1 splits from ``root`` as paragraph-video pairs."""
    root = Path(root)
    videos = Path(videos_dir) if videos_dir is not None else root / VIDEOS
    require([root / f for pair in FILES.values() for f in pair], "ActivityNet Captions", HOW_TO_GET)
    splits, skipped = {}, {}
    for split, (ids_file, captions_file) in FILES.items():
        ids, paragraphs = _ids(root / ids_file), _paragraphs(root / captions_file)
        kept = [v for v in ids if v in paragraphs]
        skipped[split] = [v for v in ids if v not in paragraphs] + [v for v in paragraphs if v not in set(ids)]
        check_size(root / captions_file, split, len(kept), SIZES[split], "videos with captions and ids",
                   check=check_sizes)
        splits[split] = [(v, paragraphs[v]) for v in kept]
    on_disk = index_videos(videos)
    found = {}
    for split in splits:
        for vid, _ in splits[split]:
            path = _find(on_disk, vid)
            if path is not None:
                found[vid] = path
    corpus = VideoCorpus("ActivityNet Captions", root, videos, splits, found, "val_1", paragraphs=True,
                         skipped=skipped)
    return finish(corpus, check_videos, HOW_TO_GET)
