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
  :mod:`clipadapt.data.formats.classnames`) in their real folders (``SUN397/a/apartment_building/outdoor/``,
  ``UCF-101-midframes/Apply_Eye_Makeup/v_ApplyEyeMakeup_g01_c01.jpg``); the others have numbered
  stand-ins (``dtd_class_000``);
* ``msrvtt/`` -- CLIP4Clip's files (``MSRVTT_data.json``, ``MSRVTT_train.9k.csv``,
  ``MSRVTT_JSFUSION_test.csv``) and ``MSRVTT_Videos/video<N>.mp4``, 16 frames each (more
  than the profile's 12, so frames are chosen among them as in a real video);
* ``didemo/``, ``activitynet/``, ``lsmdc/``, ``msvd/`` -- the other retrieval benchmarks in the
  files their loaders read (:mod:`clipadapt.data.formats.didemo` and its siblings), with videos named
  and placed as in the real sets (DiDeMo's Flickr names with their mixed extensions,
  ActivityNet's ``v_`` ids, LSMDC's movie folders, MSVD's ``.avi`` clips), 38 videos in all;
  :func:`write_retrieval_sets` writes all four.

The pictures and videos are made from the synthetic worlds, so that they hold shapes and
motion rather than noise; the captions say what is in them.
"""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path
from typing import Sequence

from PIL import Image

from ..core.files import atomic_path
from . import worlds
from .formats import activitynet, classnames, didemo, lsmdc, msrvtt, msvd
from .multitask import GENERAL10

EUROSAT_CLASSES = ("AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture",
                   "PermanentCrop", "Residential", "River", "SeaLake")
COOP_NAMES = ("Annual Crop Land", "Forest", "Herbaceous Vegetation Land", "Highway or Road", "Industrial Buildings",
              "Pasture Land", "Permanent Crop Land", "Residential Buildings", "River", "Sea or Lake")


def write_eurosat(root: str | Path, train_per_class: int = 16, test_per_class: int = 2, seed: int = 0) -> Path:
    """``root/eurosat`` in CoOp's layout; returns that folder."""
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


def _world_videos(folder: Path, names: list[str], seed: int, tag: str, frames: int = 16,
                  size: int = 64) -> list[str]:
    """Videos of the video world written as ``folder/<name>`` (sub-folders made; the real
    extension is only a name: the content is mp4, which the decoder recognises); returns
    each video's caption."""
    world = worlds.VideoWorld(size, frames=frames, p_appear=0.0)
    scratch = folder / f".{tag}-scratch"
    records = worlds.write_videos(world, (len(names) + 1) // 2, worlds.generator(seed, tag), scratch)[: len(names)]
    for r, name in zip(records, names):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (scratch / r["video"]).replace(folder / name)
    for leftover in scratch.iterdir():
        leftover.unlink()
    scratch.rmdir()
    return [r["caption"] for r in records]


def _write_lines(path: Path, lines: list[str]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{x}\n" for x in lines))


def _write_json(path: Path, data) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data))


def write_didemo(root: str | Path, sizes=(4, 2, 4), seed: int = 0) -> Path:
    """``root/didemo``: LocalizingMoments' ``*_data.json`` (2-3 moments per video, and one
    described video per split that the list leaves out), collaborative-experts' ``*_list.txt``
    and ``DiDeMo_Videos/<flickr name>``; returns that folder."""
    out = Path(root) / "didemo"
    exts = (".mp4", ".mov", ".avi", ".m4v", ".")  # the real lists mix them (one name even ends in a dot)
    names = {s: [f"{1000 + 37 * k}@N0{k % 9}_{4000 + k}_{k:010x}{exts[k % len(exts)]}" for k in range(a, a + n)]
             for s, a, n in zip(didemo.SPLITS, (0, sizes[0], sizes[0] + sizes[1]), sizes)}
    captions = _world_videos(out / didemo.VIDEOS, [v for s in didemo.SPLITS for v in names[s]], seed, "didemo-fixture")
    k = 0
    for split in didemo.SPLITS:
        notes = []
        for v in names[split] + [f"999@N00_{split}_unlisted.mp4"]:
            text = captions[k % len(captions)]
            k += 1
            for m in range(2 + k % 2):
                notes.append({"annotation_id": len(notes), "description": f"{text} (moment {m + 1})", "video": v,
                              "times": [[m, m]] * 4, "dl_link": "", "num_segments": 6})
        _write_json(out / f"{split}_data.json", notes)
        _write_lines(out / f"{split}_list.txt", names[split])
    return out


def write_activitynet(root: str | Path, sizes=(4, 4), seed: int = 0) -> Path:
    """``root/activitynet``: captions.zip's ``train.json``, ``val_1.json``, ``train_ids.json``,
    ``val_ids.json`` and ``Activity_Videos/<id>.mp4`` (half with the ``v_`` prefix, as in
    ActivityNet's download, half without, as in CLIP4Clip's folder); returns that folder."""
    out = Path(root) / "activitynet"
    ids = [f"v_{k:03d}Xy{k % 7}-Q_Za" for k in range(sum(sizes))]
    files = [(v if k % 2 else v[2:]) + ".mp4" for k, v in enumerate(ids)]
    captions = _world_videos(out / activitynet.VIDEOS, files, seed, "activitynet-fixture")
    start = 0
    for split, n in zip(activitynet.FILES, sizes):
        ids_file, captions_file = activitynet.FILES[split]
        mine = ids[start:start + n]
        _write_json(out / ids_file, mine)
        _write_json(out / captions_file, {v: {"duration": 2.0, "timestamps": [[0.0, 1.0], [0.5, 2.0]],
                                              "sentences": [f" {captions[start + i]}", " Then it goes on."]}
                                          for i, v in enumerate(mine)})
        start += n
    return out


def write_lsmdc(root: str | Path, sizes=(4, 2, 4), seed: int = 0) -> Path:
    """``root/lsmdc``: the three tab-separated LSMDC16 files and ``LSMDC_Videos/<movie>/<clip>.avi``;
    the first training clip has a second sentence, as real clips may; returns that folder."""
    out = Path(root) / "lsmdc"
    movies = ("1001_Flight", "1012_Unbreakable", "3001_21_JUMP_STREET")
    clips = [f"{movies[k % 3]}_00.{k // 60:02d}.{k % 60:02d}.017-00.{k // 60:02d}.{k % 60:02d}.616"
             for k in range(sum(sizes))]
    captions = _world_videos(out / lsmdc.VIDEOS, [f"{c.rsplit('_', 1)[0]}/{c}.avi" for c in clips], seed,
                             "lsmdc-fixture")
    start = 0
    for split, n in zip(lsmdc.FILES, sizes):
        rows = [f"{c}\t00.00.00.000\t00.00.01.000\t00.00.00.000\t00.00.01.000\t{captions[start + i]}"
                for i, c in enumerate(clips[start:start + n])]
        if split == "train":
            rows.insert(1, rows[0].rsplit("\t", 1)[0] + "\tSOMEONE looks again.")
        _write_lines(out / lsmdc.FILES[split], rows)
        start += n
    return out


def write_msvd(root: str | Path, sizes=(4, 2, 4), captions_per_video=(2, 5), seed: int = 0,
               captions_file: str = msvd.PICKLE) -> Path:
    """``root/msvd``: collaborative-experts' ``*_list.txt``, the captions as ``raw-captions.pkl``
    (word lists, CLIP4Clip's) or ``captions_msvd.json`` (strings, X-Pool's), 2 to 5 captions
    per video, and ``MSVD_Videos/<youtube id>_<start>_<end>.avi``; returns that folder."""
    out = Path(root) / "msvd"
    ids = [f"-{k:02d}wsuPCjDB_{5 * k}_{5 * k + 7}" for k in range(sum(sizes))]
    texts = _world_videos(out / msvd.VIDEOS, [f"{v}.avi" for v in ids], seed, "msvd-fixture")
    lo, hi = captions_per_video
    captions = {v: [texts[k]] + [f"{texts[k]} take {j}" for j in range(1, lo + k % (hi - lo + 1))]
                for k, v in enumerate(ids)}
    if captions_file == msvd.PICKLE:
        with atomic_path(out / msvd.PICKLE) as tmp:
            tmp.write_bytes(pickle.dumps({v: [c.split() for c in cs] for v, cs in captions.items()}, protocol=2))
    else:
        _write_json(out / msvd.JSON, captions)
    start = 0
    for split, n in zip(msvd.SPLITS, sizes):
        _write_lines(out / f"{split}_list.txt", ids[start:start + n])
        start += n
    return out


def write_retrieval_sets(root: str | Path) -> Path:
    """DiDeMo, ActivityNet Captions, LSMDC and MSVD under ``root``; returns ``root``."""
    for write in (write_didemo, write_activitynet, write_lsmdc, write_msvd):
        write(root)
    return Path(root)


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


def write_all(root: str | Path, general10: Sequence[str]) -> Path:
    """EuroSAT, MSR-VTT and the ``general10`` datasets (a profile's suite:
    ``clipadapt.experiments.settings.of(profile).suites.datasets``) under ``root`` (use it as
    ``$CLIPADAPT_DATA``); returns ``root``."""
    write_eurosat(root)
    write_msrvtt(root)
    write_general10(root, [f for f in general10 if f != "eurosat"])
    return Path(root)
