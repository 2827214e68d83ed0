"""Miniature copies of the real datasets, in exactly their real formats.

The ``colab-smoke`` profile runs the ``colab`` profile's data code on them, so that the
real-data paths of every chapter execute in CI without a download:

* ``eurosat/`` -- CoOp's layout: ``split_zhou_EuroSAT.json`` (``[path, label, class]``
  rows) and 64x64 JPEGs in ``2750/<Class>/<Class>_<n>.jpg``, EuroSAT's ten classes;
* General-10's datasets (SoftCPT, chapter 7) in the folders and formats of CoOp's DATASETS.md:
  a ``split_zhou_*.json`` and the dataset's own image layout (``caltech-101/101_ObjectCategories/
  <class>/image_0001.jpg``, ``oxford_flowers/jpg/image_00001.jpg``, ...; FGVC-Aircraft's variant
  files), each with its real number of classes and a few pictures per class. Oxford Pets,
  Food-101, SUN397 and UCF-101 carry their real class names as CoOp's split files write them
  (``american_bulldog``, ``apple_pie``, ``outdoor apartment_building``, ``Apply_Eye_Makeup``:
  :mod:`clipadapt.data.classnames`) in their real folders (``SUN397/a/apartment_building/outdoor/``,
  ``UCF-101-midframes/Apply_Eye_Makeup/v_ApplyEyeMakeup_g01_c01.jpg``); the others have numbered
  stand-ins (``dtd_class_000``);
* ``msrvtt/`` -- CLIP4Clip's files (``MSRVTT_data.json``, ``MSRVTT_train.9k.csv``,
  ``MSRVTT_JSFUSION_test.csv``) and ``MSRVTT_Videos/video<N>.mp4``, 16 frames each (more
  than the profile's 12, so frames are chosen among them as in a real video).

The pictures and videos are made from the synthetic worlds, so that they hold shapes and
motion rather than noise; the captions say what is in them.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..core.files import atomic_path
from . import classnames, msrvtt, video, worlds

EUROSAT_CLASSES = ("AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture",
                   "PermanentCrop", "Residential", "River", "SeaLake")
COOP_NAMES = ("Annual Crop Land", "Forest", "Herbaceous Vegetation Land", "Highway or Road", "Industrial Buildings",
              "Pasture Land", "Permanent Crop Land", "Residential Buildings", "River", "Sea or Lake")


def write_eurosat(root: str | Path, train_per_class: int = 16, test_per_class: int = 2, seed: int = 0) -> Path:
    """``root/eurosat`` in CoOp's layout; returns that folder."""
    from PIL import Image

    out = Path(root) / "eurosat"
    world = worlds.ImageWorld(64)
    split = {"train": [], "val": [], "test": []}
    per_class = train_per_class + test_per_class
    for label, cls in enumerate(EUROSAT_CLASSES):
        scenes = world.sample(per_class, worlds.generator(seed, "eurosat-fixture", cls))
        pixels = (world.render(scenes).clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
        for i in range(per_class):
            rel = f"{cls}/{cls}_{i + 1}.jpg"
            path = out / "2750" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels[i]).save(path, format="JPEG", quality=90)
            split["train" if i < train_per_class else "test"].append([rel, label, COOP_NAMES[label]])
    with atomic_path(out / "split_zhou_EuroSAT.json") as tmp:
        tmp.write_text(json.dumps(split))
    return out


def write_msrvtt(root: str | Path, n_train: int = 8, n_test: int = 6, captions: int = 2, frames: int = 16,
                 size: int = 64, seed: int = 0) -> Path:
    """``root/msrvtt`` in CLIP4Clip's files with mp4 videos; returns that folder."""
    out = Path(root) / "msrvtt"
    world = worlds.VideoWorld(size, frames=frames, p_appear=0.0)
    # the video world writes each video with its reversal twin: half as many draws
    records = worlds.write_videos(world, (n_train + n_test + 1) // 2, worlds.generator(seed, "msrvtt-fixture"),
                                  out / "MSRVTT_Videos")[: n_train + n_test]
    ids = []
    for i, r in enumerate(records):  # video world names -> MSR-VTT names
        src = out / "MSRVTT_Videos" / r["video"]
        vid = f"video{i}"
        src.replace(out / "MSRVTT_Videos" / f"{vid}.mp4")
        ids.append((vid, r["caption"]))
    data = {
        "info": {"contributor": "clipadapt fixture", "year": "2016"},
        "videos": [{"category": 0, "url": "", "video_id": v, "start time": 0.0, "end time": 1.0, "id": i,
                    "split": "train" if i < n_train else "test"} for i, (v, _) in enumerate(ids)],
        "sentences": [{"caption": c if k == 0 else f"{c} (take {k + 1})", "video_id": v, "sen_id": i * captions + k}
                      for i, (v, c) in enumerate(ids) for k in range(captions)],
    }
    with atomic_path(out / msrvtt.DATA_JSON) as tmp:
        tmp.write_text(json.dumps(data))
    with atomic_path(out / msrvtt.TRAIN_CSV) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["video_id"])
        w.writerows([v] for v, _ in ids[:n_train])
    with atomic_path(out / msrvtt.TEST_CSV) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "vid_key", "video_id", "sentence"])
        for i, (v, c) in enumerate(ids[n_train:]):
            w.writerow([f"ret{i}", f"msr{n_train + i}", v, c])
    return out


# where image n (of class c, named f in file paths; its i-th picture) lies under a dataset's image
# folder, as in the real one
_LAYOUTS = {
    "caltech-101": "{f}/image_{i:04d}.jpg",
    "dtd": "{f}/{f}_{i:04d}.jpg",
    "oxford_flowers": "image_{n:05d}.jpg",
    "oxford_pets": "{f}_{i}.jpg",
    "food-101": "{f}/{n}.jpg",
    "stanford_cars": "cars_{split}/{n:05d}.jpg",
    "sun397": "{f}/sun_{n:08d}.jpg",
    "ucf101": "{c}/v_{f}_g01_c{i:02d}.jpg",
}


def _names(folder: str, n_classes: int) -> list[tuple[str, str]]:
    """``(class name in the split file, its name in image paths)`` per class of ``folder``."""
    if folder == "oxford_pets":  # images/Abyssinian_1.jpg; CoOp's class name is the stem lowered
        return [(stem.lower(), stem) for stem in classnames.OXFORD_PETS]
    if folder == "food-101":
        return [(c, c) for c in classnames.FOOD101]
    if folder == "sun397":  # "outdoor apartment_building" lives in a/apartment_building/outdoor/
        parts = [c.split(" ")[::-1] for c in classnames.SUN397]  # the folder's parts, its letter first
        return [(c, "/".join([p[0][0], *p])) for c, p in zip(classnames.SUN397, parts)]
    if folder == "ucf101":  # UCF-101-midframes/Apply_Eye_Makeup/v_ApplyEyeMakeup_g01_c01.jpg
        return [(c, "".join(c.split("_"))) for c in classnames.UCF101]
    stand_ins = [f"{folder.replace('-', '_')}_class_{k:03d}" for k in range(n_classes)]
    return [(c, c) for c in stand_ins]


def write_general10(root: str | Path, folders=None, train_per_class: int = 1, test_per_class: int = 1,
                    seed: int = 0) -> Path:
    """General-10's datasets (``folders``: some of :data:`clipadapt.data.multitask.GENERAL10`'s,
    default all) under ``root`` in CoOp's formats, with their real class counts; returns ``root``."""
    from PIL import Image

    from .multitask import GENERAL10

    root = Path(root)
    world = worlds.ImageWorld(64)
    for e in GENERAL10:
        if folders is not None and e.folder not in folders:
            continue
        if e.folder == "eurosat":
            write_eurosat(root, train_per_class, test_per_class, seed)
            continue
        out, per = root / e.folder, train_per_class + test_per_class
        scenes = world.sample(e.n_classes * per, worlds.generator(seed, "general10-fixture", e.folder))
        pixels = (world.render(scenes).clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
        named = _names(e.folder, e.n_classes)
        if len(named) != e.n_classes:
            raise AssertionError(f"{e.folder}: {len(named)} class names for {e.n_classes} classes")
        classes = [c for c, _ in named]
        rows = {"train": [], "val": [], "test": []}
        for n in range(e.n_classes * per):
            k, i = divmod(n, per)
            split = "train" if i < train_per_class else "test"
            if e.folder == "fgvc_aircraft":
                rel = f"{n:07d}.jpg"
                rows[split].append(f"{n:07d} {classes[k]}")
            else:
                rel = _LAYOUTS[e.folder].format(c=classes[k], f=named[k][1], i=i + 1, n=n + 1, split=split)
                rows[split].append([rel, k, classes[k]])
            path = out / e.dataset.image_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels[n]).save(path, format="JPEG", quality=90)
        if e.folder == "fgvc_aircraft":  # CoOp reads FGVC-Aircraft's own variant files
            (out / "variants.txt").write_text("".join(f"{c}\n" for c in classes))
            for split, lines in rows.items():
                (out / f"images_variant_{split}.txt").write_text("".join(f"{x}\n" for x in lines))
        else:
            with atomic_path(out / e.dataset.split_file) as tmp:
                tmp.write_text(json.dumps(rows))
    return root


def write_all(root: str | Path, general10=None) -> Path:
    """EuroSAT, MSR-VTT and the ``general10`` datasets (default: the colab profile's suite)
    under ``root`` (use it as ``$CLIPADAPT_DATA``); returns ``root``."""
    from .. import profiles

    write_eurosat(root)
    write_msrvtt(root)
    folders = profiles.get("colab").multitask_datasets if general10 is None else general10
    write_general10(root, [f for f in folders if f != "eurosat"])
    return Path(root)
