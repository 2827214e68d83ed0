"""The video-caption sets of Part II for a profile (chapters 3-5).

``synthetic`` profiles: the video world's videos and their reversal twins, written as mp4
files into a folder (kept there: a second call with the same settings reuses them) and
read back with decord. ``msrvtt``: MSR-VTT's 9k training captions (a seeded subset of
``video_train_pairs``) and the 1k-A test set, fetched into the data root on first use.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .. import profiles
from ..core.files import atomic_path
from . import download, msrvtt, video, worlds


def video_data(profile, folder, data_root=None, seed: int = 0) -> dict:
    """The training and test sets of Part II for ``profile`` (see the module's docstring).

    Returns ``train``, ``test`` (datasets),
    ``partners`` / ``test_partners`` (index of each pair's twin, or None) and ``twins`` (the
    twin caption of each test pair, or None).
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
        return {"train": train, "test": test, "partners": partners, "twins": twins, "test_partners": test_partners}
    root = download.ensure("msrvtt", data_root)  # at once when the CSVs and the videos are there
    ds = msrvtt.load_msrvtt(root)
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(ds.train), generator=g)[: prof.video_train_pairs].tolist()
    train = video.VideoTextDataset([(ds.video_path(ds.train[i][0]), ds.train[i][1]) for i in pick],
                                   frames=prof.video_frames, image_size=size, train=True)
    test = video.VideoTextDataset([(ds.video_path(v), c) for v, c in ds.test[: prof.video_test_pairs]],
                                  frames=prof.video_frames, image_size=size)
    return {"train": train, "test": test, "partners": None, "twins": None, "test_partners": None}
