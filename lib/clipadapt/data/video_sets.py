"""The video-caption sets of Part II for a profile (chapters 3-5).

``synthetic`` profiles: the video world's videos and their reversal twins, written as mp4
files into a folder (kept there: a second call with the same settings reuses them) and
read back with decord. ``msrvtt``: MSR-VTT's 9k training captions (a seeded subset of
``video_train_pairs``) and the 1k-A test set, fetched into the data root on first use.
The other benchmarks of the VoP and TempMe papers (:data:`BENCHMARKS`: ``didemo``,
``activitynet``, ``lsmdc``, ``msvd``) are read from ``<data root>/<name>`` by their loaders
(fetched first where a public download exists): a seeded subset of ``video_train_pairs``
training pairs, and the first ``video_test_pairs`` test videos with all their texts (the
whole test split where the profile says ``video_test_all``). :func:`for_dataset` makes a
profile read one of them (``python -m clipadapt.reproduce ... --dataset NAME``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .. import profiles
from ..core.files import atomic_path
from . import video, worlds
from .fetch import download
from .formats import activitynet, didemo, lsmdc, msrvtt, msvd


@dataclass(frozen=True)
class Benchmark:
    """A retrieval benchmark other than MSR-VTT, as the papers evaluate it."""

    title: str
    load: Callable  # (root, check_sizes=...) -> clipadapt.data.formats.corpus.VideoCorpus
    train_pairs: int  # published training pairs: the paper profile trains 5 epochs of them
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


def for_dataset(profile, name: str, long_frames: int | None = None) -> profiles.Profile:
    """``profile`` reading benchmark ``name`` (``msrvtt`` or a key of :data:`BENCHMARKS`).
    Under the ``paper`` profile the budget becomes 5 epochs of that benchmark's training pairs
    at the profile's batch, as the papers train (VoP and TempMe: 5 epochs), and a method that
    samples more frames from long videos (``long_frames``: TempMe's 64) does so on the
    benchmarks of long videos (``Benchmark.long``) where the profile says
    ``video_long_frames``."""
    prof = profiles.get(profile)
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if prof.video_data == "synthetic":
        raise ValueError(f"the {prof.name!r} profile uses the synthetic video world; a real dataset ({name}) needs "
                         f"the colab, colab-smoke or paper profile")
    if name == "msrvtt" or name == prof.video_data:
        return prof.replace(video_data=name)
    changes = {"video_data": name}
    if prof.name == "paper":
        changes["video_steps"] = 5 * math.ceil(BENCHMARKS[name].train_pairs / prof.video_batch)
    if long_frames and prof.video_long_frames and BENCHMARKS[name].long:
        changes["video_frames"] = long_frames
    return prof.replace(**changes)


def _benchmark_data(prof: profiles.Profile, data_root, seed: int) -> dict:
    """The training and test sets of a :data:`BENCHMARKS` entry under ``prof``."""
    bench = BENCHMARKS[prof.video_data]
    # what has a public download is fetched when missing (at once when present)
    root = (download.ensure(prof.video_data, data_root) if bench.download
            else download.data_root(data_root) / prof.video_data)
    corpus = bench.load(root, check_sizes=prof.video_check_sizes)
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(corpus.train), generator=g)[: prof.video_train_pairs].tolist()
    keep = set(corpus.videos(corpus.test_split)[: None if prof.video_test_all else prof.video_test_pairs])
    size = prof.video_size
    train = video.VideoTextDataset([(corpus.video_path(corpus.train[i][0]), corpus.train[i][1]) for i in pick],
                                   frames=prof.video_frames, image_size=size, train=True, seconds=bench.seconds)
    test = video.VideoTextDataset([(corpus.video_path(v), t) for v, t in corpus.test if v in keep],
                                  frames=prof.video_frames, image_size=size, seconds=bench.seconds)
    return {"train": train, "test": test, "partners": None, "twins": None, "test_partners": None,
            "max_tokens": bench.max_tokens}


def video_data(profile, folder, data_root=None, seed: int = 0) -> dict:
    """The training and test sets of Part II for ``profile`` (see the module's docstring).

    Returns ``train``, ``test`` (datasets),
    ``partners`` / ``test_partners`` (index of each pair's twin, or None), ``twins`` (the
    twin caption of each test pair, or None) and ``max_tokens`` (where texts are cut, or None).
    """
    prof = profiles.get(profile)
    folder = Path(folder)
    size = prof.video_size
    if prof.video_data == "synthetic":
        out = {}
        for split, n in (("train", prof.video_train_pairs), ("test", prof.video_test_pairs)):
            where = folder / split
            manifest = where / "manifest.json"
            misses = prof.video_test_near_misses if split == "test" else 0
            settings = {"n": n, "frames": prof.video_frames, "seed": seed, "size": size, "near_misses": misses}
            records = None
            if manifest.is_file():
                saved = json.loads(manifest.read_text())
                if saved.get("settings") == settings:
                    records = saved["records"]
            if records is None:
                world = worlds.VideoWorld(size, frames=prof.video_frames, p_appear=0.0)
                records = worlds.write_videos(world, n, worlds.generator(seed, "videos", split), where,
                                              near_misses=misses)
                with atomic_path(manifest) as tmp:
                    tmp.write_text(json.dumps({"settings": settings, "records": records}))
            index = {r["video"]: i for i, r in enumerate(records)}
            out[split] = (records, [index[r["twin"]] for r in records])
        train_records, partners = out["train"]
        test_records, test_partners = out["test"]
        train = video.VideoTextDataset([(folder / "train" / r["video"], r["caption"]) for r in train_records],
                                       frames=prof.video_frames, image_size=size, train=True)
        test = video.VideoTextDataset([(folder / "test" / r["video"], r["caption"]) for r in test_records],
                                      frames=prof.video_frames, image_size=size)
        twins = [test_records[p]["caption"] for p in test_partners]
        return {"train": train, "test": test, "partners": partners, "twins": twins, "test_partners": test_partners,
                "max_tokens": None}
    if prof.video_data in BENCHMARKS:
        return _benchmark_data(prof, data_root, seed)
    root = download.ensure("msrvtt", data_root)  # at once when the CSVs and the videos are there
    ds = msrvtt.load_msrvtt(root)
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(ds.train), generator=g)[: prof.video_train_pairs].tolist()
    train = video.VideoTextDataset([(ds.video_path(ds.train[i][0]), ds.train[i][1]) for i in pick],
                                   frames=prof.video_frames, image_size=size, train=True)
    test = video.VideoTextDataset([(ds.video_path(v), c) for v, c in ds.test[: prof.video_test_pairs]],
                                  frames=prof.video_frames, image_size=size)
    return {"train": train, "test": test, "partners": None, "twins": None, "test_partners": None, "max_tokens": None}
