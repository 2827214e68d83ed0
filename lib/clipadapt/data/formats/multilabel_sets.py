"""Real multi-label datasets in their own formats (chapter 6, ``colab`` and ``paper`` profiles).

* MS-COCO 2014: ``annotations/instances_{train,val}2014.json`` -> 80-class multi-hot labels;
  the category ids (1..90 with gaps) map to indices 0..79 in increasing id order, the
  standard order (``person`` 0 ... ``toothbrush`` 79), which SCPNet's list files use too;
* PASCAL VOC 2007: ``VOC2007/ImageSets/Main/<class>_<split>.txt`` (``1`` present, ``-1``
  absent, ``0`` difficult only) or the ``Annotations/<id>.xml`` files (``<object><name>``
  and ``<difficult>``);
* SCPNet's list files: ``dataset/coco_train_singlelabel.txt``, ``voc_train.txt``, ...:
  one image a line, ``<file>,<index> <index> ...`` (the training files hold one index, the
  single known positive).

Each loader returns a :class:`LabelledImages` (image paths, labels ``(N, C)`` 0/1, class
names); missing or malformed files raise :class:`MultiLabelFormatError` naming the file,
the line and what was expected. Images are opened only when asked for (:meth:`LabelledImages.image`).
Class names come back as prompt text (:func:`clipadapt.data.names.prompt_name`, as SCPNet's
``model.py`` writes them).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from ..names import prompt_names

# MS-COCO's 80 object categories in the standard order (ascending category id)
COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow", "elephant",
    "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard",
    "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli",
    "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "dining table", "toilet",
    "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush")
VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
               "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")


class MultiLabelFormatError(ValueError):
    """A dataset file is missing or not in the expected format."""


@dataclass
class LabelledImages:
    paths: list[Path]
    targets: torch.Tensor  # (N, C) float 0/1
    classnames: list[str]
    difficult: torch.Tensor | None = field(default=None)  # (N, C) bool, VOC only

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, i: int):
        """Image ``i`` as an RGB PIL image (clear error when the file is missing)."""
        path = self.paths[i]
        if not path.exists():
            raise FileNotFoundError(f"image {i} of the dataset is missing: {path}")
        return Image.open(path).convert("RGB")


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise MultiLabelFormatError(f"{what} not found: expected {path}")
    return path


# -- COCO 2014 ---------------------------------------------------------------------------------
def load_coco(root, split: str = "train") -> LabelledImages:
    """COCO 2014 ``split`` ("train" or "val") from ``root`` (holding ``annotations/`` and the
    ``train2014/`` / ``val2014/`` image folders). Images without annotations are kept with
    no positives, as the standard benchmarks do."""
    if split not in ("train", "val"):
        raise ValueError(f"COCO 2014 splits are 'train' and 'val', got {split!r}")
    root = Path(root)
    path = _need(root / "annotations" / f"instances_{split}2014.json", f"COCO {split}2014 annotations")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise MultiLabelFormatError(f"{path} is not valid JSON: {err}") from err
    for key in ("images", "annotations", "categories"):
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise MultiLabelFormatError(f"{path}: expected a JSON object with a list {key!r} (a COCO instances file)")
    try:
        cats = sorted((int(c["id"]), str(c["name"])) for c in data["categories"])
        images = [(int(im["id"]), str(im["file_name"])) for im in data["images"]]
        pairs = [(int(a["image_id"]), int(a["category_id"])) for a in data["annotations"]]
    except (KeyError, TypeError, ValueError) as err:
        raise MultiLabelFormatError(f"{path}: an entry lacks a field or has a bad value ({err!r}); expected categories "
                                    f"with id/name, images with id/file_name, annotations with image_id/category_id") from err
    column = {cid: i for i, (cid, _) in enumerate(cats)}
    row = {iid: i for i, (iid, _) in enumerate(images)}
    targets = torch.zeros(len(images), len(cats))
    for iid, cid in pairs:
        if iid not in row or cid not in column:
            raise MultiLabelFormatError(f"{path}: an annotation refers to image {iid} or category {cid}, which the file "
                                        f"does not list")
        targets[row[iid], column[cid]] = 1
    folder = root / f"{split}2014"
    return LabelledImages([folder / name for _, name in images], targets, prompt_names(name for _, name in cats))


# -- VOC 2007 ----------------------------------------------------------------------------------
def load_voc2007(root, split: str = "trainval", source: str = "imagesets") -> LabelledImages:
    """VOC 2007 ``split`` from ``root`` (the ``VOC2007`` folder of ``VOCdevkit``). ``source``
    "imagesets" reads the per-class ``ImageSets/Main/<class>_<split>.txt`` files; "annotations"
    reads ``ImageSets/Main/<split>.txt`` and the XML of each image. Difficult-only labels are
    negatives in ``targets`` and flagged in ``difficult``."""
    root = Path(root)
    main = root / "ImageSets" / "Main"
    if source == "imagesets":
        ids, labels = None, []
        for c in VOC_CLASSES:
            path = _need(main / f"{c}_{split}.txt", f"VOC 2007 class list of {c!r}")
            rows = []
            for n, line in enumerate(path.read_text().splitlines(), 1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 2 or parts[1] not in ("1", "-1", "0"):
                    raise MultiLabelFormatError(f"{path}, line {n}: expected '<image id> <1|-1|0>', got {line!r}")
                rows.append((parts[0], int(parts[1])))
            order = [r[0] for r in rows]
            if ids is None:
                ids = order
            elif order != ids:
                raise MultiLabelFormatError(f"{path} lists other images (or another order) than "
                                            f"{main / f'{VOC_CLASSES[0]}_{split}.txt'}")
            labels.append([r[1] for r in rows])
        values = torch.tensor(labels).t()  # (N, 20)
    elif source == "annotations":
        path = _need(main / f"{split}.txt", f"VOC 2007 {split} list")
        ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        values = torch.full((len(ids), len(VOC_CLASSES)), -1)
        for i, image_id in enumerate(ids):
            values[i] = _voc_xml(_need(root / "Annotations" / f"{image_id}.xml", f"annotation of image {image_id}"))
    else:
        raise ValueError(f"source must be 'imagesets' or 'annotations', got {source!r}")
    folder = root / "JPEGImages"
    return LabelledImages([folder / f"{i}.jpg" for i in ids], (values == 1).float(), prompt_names(VOC_CLASSES), values == 0)


def _voc_xml(path: Path) -> torch.Tensor:
    """One image's labels from its annotation XML: 1 if a non-difficult object of the
    class is present, 0 if only difficult ones are, -1 otherwise."""
    try:
        tree = ET.parse(path)
    except ET.ParseError as err:
        raise MultiLabelFormatError(f"{path} is not valid XML: {err}") from err
    out = torch.full((len(VOC_CLASSES),), -1)
    for obj in tree.getroot().iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in VOC_CLASSES:
            raise MultiLabelFormatError(f"{path}: unknown object class {name!r}; expected one of the 20 VOC classes")
        c = VOC_CLASSES.index(name)
        hard = (obj.findtext("difficult") or "0").strip() == "1"
        out[c] = max(int(out[c]), 0 if hard else 1)
    return out


# -- SCPNet's list files -----------------------------------------------------------------------
def load_list(path, classnames, image_root=".") -> LabelledImages:
    """An SCPNet list file (``<file>,<index> <index> ...`` a line; indices into
    ``classnames``), with image paths under ``image_root``."""
    path = _need(Path(path), "SCPNet list file")
    paths, rows = [], []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        name, sep, rest = line.partition(",")
        try:
            idx = [int(x) for x in rest.split()]
        except ValueError:
            idx = None
        if not sep or not name.strip() or not idx or any(not 0 <= i < len(classnames) for i in idx):
            raise MultiLabelFormatError(f"{path}, line {n}: expected '<image file>,<class index> ...' with indices in "
                                        f"0..{len(classnames) - 1}, got {line!r}")
        paths.append(Path(image_root) / name.strip())
        rows.append(idx)
    if not rows:
        raise MultiLabelFormatError(f"{path} lists no images")
    targets = torch.zeros(len(rows), len(classnames))
    for i, idx in enumerate(rows):
        targets[i, idx] = 1
    return LabelledImages(paths, targets, prompt_names(classnames))


def read_classnames(path) -> list[str]:
    """Class names, one a line (SCPNet's ``voc_labels.txt``, ``nuswide_labels.txt``)."""
    path = _need(Path(path), "class-name list")
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names:
        raise MultiLabelFormatError(f"{path} holds no class names")
    return names
