"""The video-caption sets of Part II (chapters 3-5), as :class:`VideoSets` describes them.

``synthetic``: the video world's videos and their reversal twins, written as mp4 files into a
folder (kept there: a second call with the same settings reuses them) and read back with
decord. ``msrvtt``: MSR-VTT's 9k training captions (a seeded subset of ``train_pairs``) and
the 1k-A test set, fetched into the data root on first use. The other benchmarks of the VoP
and TempMe papers (:data:`BENCHMARKS`: ``didemo``, ``activitynet``, ``lsmdc``, ``msvd``) are
read from ``<data root>/<name>`` by their loaders (fetched first where a public download
exists): a seeded subset of ``train_pairs`` training pairs, and the first ``test_pairs`` test
videos with all their texts (the whole test split with ``test_all``). :func:`for_dataset`
makes the sets read one of them (``python -m clipadapt.reproduce ... --dataset NAME``). What
each profile reads is written in ``clipadapt/experiments/_settings.toml`` (``[videos]``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..core.files import atomic_path
from . import video, world_cache, worlds
from .fetch import download
from .formats import activitynet, didemo, lsmdc, msrvtt, msvd


@dataclass(frozen=True)
class VideoSets:
    """Which video-caption sets Part II reads, and how many pairs of each."""

    source: str  # "synthetic", "msrvtt", or a key of BENCHMARKS
    train_pairs: int  # synthetic: videos, each with its reversal twin; real: caption pairs drawn
    test_pairs: int  # test videos (synthetic: each with its twin)
    near_misses: int  # synthetic: one-attribute variants of each test video, with their twins
    check_sizes: bool  # real: compare each split's size with the published one
    test_all: bool  # other benchmarks: test on the whole test split
    long_frames: bool  # long videos: a method samples its own frame count where its paper does

    def replace(self, **changes) -> "VideoSets":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Benchmark:
    """A retrieval benchmark other than MSR-VTT, as the papers evaluate it."""

    title: str
    load: Callable  # (root, check_sizes=...) -> clipadapt.data.formats.corpus.VideoCorpus
    train_pairs: int  # published training pairs
    # texts cut to this many tokens (CLIP4Clip's and TempMe's max_words for paragraphs; None:
    # the model's context, 77, as for MSR-VTT)
    max_tokens: int | None = None
    download: str = ""  # a file whose absence makes clipadapt.data.fetch.download fetch the public files ("": none)
    protocol: str = "one caption per video"
    seconds: float | None = None  # frames are sampled from each video's first seconds only (None: all)
    long: bool = False  # minutes-long videos, where TempMe samples 64 frames (see for_dataset)


BENCHMARKS: dict[str, Benchmark] = {
    "didemo": Benchmark("DiDeMo", didemo.load_didemo, didemo.SIZES["train"], 64, "test_list.txt",
                        "paragraph-to-video (a video's descriptions joined), test split of 1,004 videos",
                        seconds=31, long=True),  # CLIP4Clip reads 0-31 s: the annotators saw the first 30
    "activitynet": Benchmark("ActivityNet Captions", activitynet.load_activitynet, activitynet.SIZES["train"], 64,
                             "val_1.json", "paragraph-to-video (a video's sentences joined), val_1 split of 4,917 videos",
                             long=True),
    "lsmdc": Benchmark("LSMDC", lsmdc.load_lsmdc, lsmdc.SIZES["train"],
                       protocol="one sentence per clip, the 1,000 clips of the public test file"),
    "msvd": Benchmark("MSVD", msvd.load_msvd, 48774, download="test_list.txt",
                      protocol="every caption of the 670 test videos is a query; a video finds its caption set"),
}
DATASETS = ("msrvtt", *BENCHMARKS)  # what --dataset accepts


def for_dataset(sets: VideoSets, name: str, frames: int, long_frames: int | None = None) -> tuple[VideoSets, int]:
    """``sets`` reading benchmark ``name`` (``msrvtt`` or a key of :data:`BENCHMARKS`), and the
    frames per video: a method that samples more frames from long videos (``long_frames``:
    TempMe's 64) does so on the benchmarks of long videos (``Benchmark.long``) where the sets
    say ``long_frames``. (The paper profile's recipes train the papers' 5 epochs of whatever
    training set they are given; the colab rows keep their T4 budget.)"""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if sets.source == "synthetic":
        raise ValueError(f"this profile uses the synthetic video world; a real dataset ({name}) needs "
                         f"the colab, colab-smoke or paper profile")
    if name == "msrvtt" or name == sets.source:
        return sets.replace(source=name), frames
    if long_frames and sets.long_frames and BENCHMARKS[name].long:
        frames = long_frames
    return sets.replace(source=name), frames


def _benchmark_data(sets: VideoSets, frames: int, size: int, data_root, seed: int) -> dict:
    """The training and test sets of a :data:`BENCHMARKS` entry."""
    bench = BENCHMARKS[sets.source]
    # what has a public download is fetched when missing (at once when present)
    root = (download.ensure(sets.source, data_root) if bench.download
            else download.data_root(data_root) / sets.source)
    corpus = bench.load(root, check_sizes=sets.check_sizes)
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(corpus.train), generator=g)[: sets.train_pairs].tolist()
    keep = set(corpus.videos(corpus.test_split)[: None if sets.test_all else sets.test_pairs])
    train = video.VideoTextDataset([(corpus.video_path(corpus.train[i][0]), corpus.train[i][1]) for i in pick],
                                   frames=frames, image_size=size, train=True, seconds=bench.seconds)
    test = video.VideoTextDataset([(corpus.video_path(v), t) for v, t in corpus.test if v in keep],
                                  frames=frames, image_size=size, seconds=bench.seconds)
    return {"train": train, "test": test, "partners": None, "twins": None, "test_partners": None,
            "max_tokens": bench.max_tokens}


def video_data(sets: VideoSets, frames: int, size: int, folder, data_root=None, seed: int = 0) -> dict:
    """The training and test sets that ``sets`` describe (see the module's docstring), videos
    of ``frames`` frames at ``size`` pixels (the profile's).

    Returns ``train``, ``test`` (datasets),
    ``partners`` / ``test_partners`` (index of each pair's twin, or None), ``twins`` (the
    twin caption of each test pair, or None) and ``max_tokens`` (where texts are cut, or None).
    """
    folder = Path(folder)
    if sets.source == "synthetic":
        out = {}
        for split, n in (("train", sets.train_pairs), ("test", sets.test_pairs)):
            where = folder / split
            manifest = where / "manifest.json"
            misses = sets.near_misses if split == "test" else 0
            settings = {"n": n, "frames": frames, "seed": seed, "size": size, "near_misses": misses}
            records = None
            if manifest.is_file():
                saved = json.loads(manifest.read_text())
                if saved.get("settings") == settings:
                    records = saved["records"]
            if records is None:  # rendered here, or copied from a shared folder (world_cache)
                records = world_cache.render(
                    where, {"split": split, **settings}, lambda out, n=n, split=split, misses=misses:
                    worlds.write_videos(worlds.VideoWorld(size, frames=frames, p_appear=0.0), n,
                                        worlds.generator(seed, "videos", split), out, near_misses=misses))
                with atomic_path(manifest) as tmp:
                    tmp.write_text(json.dumps({"settings": settings, "records": records}))
            index = {r["video"]: i for i, r in enumerate(records)}
            out[split] = (records, [index[r["twin"]] for r in records])
        train_records, partners = out["train"]
        test_records, test_partners = out["test"]
        train = video.VideoTextDataset([(folder / "train" / r["video"], r["caption"]) for r in train_records],
                                       frames=frames, image_size=size, train=True)
        test = video.VideoTextDataset([(folder / "test" / r["video"], r["caption"]) for r in test_records],
                                      frames=frames, image_size=size)
        twins = [test_records[p]["caption"] for p in test_partners]
        return {"train": train, "test": test, "partners": partners, "twins": twins, "test_partners": test_partners,
                "max_tokens": None}
    if sets.source in BENCHMARKS:
        return _benchmark_data(sets, frames, size, data_root, seed)
    root = download.ensure("msrvtt", data_root)  # at once when the CSVs and the videos are there
    ds = msrvtt.load_msrvtt(root)
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(ds.train), generator=g)[: sets.train_pairs].tolist()
    train = video.VideoTextDataset([(ds.video_path(ds.train[i][0]), ds.train[i][1]) for i in pick],
                                   frames=frames, image_size=size, train=True)
    test = video.VideoTextDataset([(ds.video_path(v), c) for v, c in ds.test[: sets.test_pairs]],
                                  frames=frames, image_size=size)
    return {"train": train, "test": test, "partners": None, "twins": None, "test_partners": None, "max_tokens": None}
