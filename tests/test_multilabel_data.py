"""Chapter 6's data: the scene world, incomplete labels, views, and the real-format loaders
(COCO 2014, VOC 2007, SCPNet's list files) on fixtures written in exactly those formats."""

import json

import pytest
import torch

from clipadapt.core.seeds import generator
from clipadapt.data import multilabel as ml
from clipadapt.data.formats import multilabel_sets as sets
from clipadapt.data import worlds


# -- the scene world --------------------------------------------------------------------------
def test_scene_world_labels_match_what_is_drawn():
    w = worlds.SceneWorld(64)
    s = w.sample(200, generator(0, "t"))
    assert s.targets.shape == (200, 30) and set(s.targets.unique().tolist()) <= {0.0, 1.0}
    n = s.targets.sum(1)
    assert n.min() >= 2 and n.max() <= 4
    attrs = s.scenes.attrs
    for b in range(20):
        drawn = {worlds.COLOURS[c] + " " + worlds.SHAPES[sh] for sh, c, *_ in attrs[b].tolist() if sh >= 0}
        assert drawn == {worlds.SCENE_CLASSES[j] for j in s.targets[b].nonzero().flatten().tolist()}
    img = w.render(s)
    assert img.shape == (200, 3, 64, 64) and 0 <= img.min() and img.max() <= 1


def test_scene_world_cooccurs_by_colour_and_repeats():
    w = worlds.SceneWorld(64)
    p = w.cooccurrence(4000)
    same = torch.tensor([[i // 5 == j // 5 and i != j for j in range(30)] for i in range(30)])
    other = ~same & ~torch.eye(30, dtype=torch.bool)
    assert p[same].mean() > 5 * p[other].mean()  # labels of one scene type go together
    a, b = w.sample(5, generator(1, "x")), w.sample(5, generator(1, "x"))
    assert torch.equal(a.targets, b.targets) and torch.equal(w.render(a), w.render(b))


def test_hidden_shape_is_faint_and_small_with_the_same_labels():
    plain, faint = worlds.SceneWorld(64), worlds.SceneWorld(64, hidden="cross", faint=0.25)
    a, b = plain.sample(300, generator(2, "h")), faint.sample(300, generator(2, "h"))
    assert torch.equal(a.targets, b.targets) and torch.equal(a.scenes.attrs, b.scenes.attrs)
    cross = a.scenes.attrs[..., 0] == worlds.SHAPES.index("cross")  # (n, K) drawn crosses
    assert cross.any() and (~cross & (a.scenes.attrs[..., 0] >= 0)).any()
    assert torch.allclose(b.scenes.radius[cross], 0.6 * a.scenes.radius[cross])
    assert torch.equal(b.scenes.radius[~cross], a.scenes.radius[~cross])
    bg = a.scenes.background[:, None, None].expand_as(a.scenes.rgb)
    contrast = lambda s: (s.scenes.rgb - bg).abs()[cross]  # noqa: E731
    assert torch.allclose(contrast(b), 0.25 * contrast(a), atol=1e-6)
    assert torch.equal(b.scenes.rgb[~cross], a.scenes.rgb[~cross])
    with pytest.raises(ValueError, match="hidden"):
        worlds.SceneWorld(hidden="star")
    with pytest.raises(ValueError, match="faint"):
        worlds.SceneWorld(hidden="cross", faint=0.0)
    train, _ = ml.scene_sets((8, 8), hidden="cross")
    plain_train, _ = ml.scene_sets((8, 8))
    assert torch.equal(train.targets, plain_train.targets) and not torch.equal(train.images, plain_train.images)


def test_image_world_unchanged_by_the_render_loop():
    w = worlds.ImageWorld(32, p_two_objects=0.5)
    s = w.sample(4, generator(0, "y"))
    assert w.render(s).shape == (4, 3, 32, 32)


# -- incomplete labels ---------------------------------------------------------------------------
def test_keep_labels_proportion_and_determinism():
    t = worlds.SceneWorld().sample(300, generator(0, "z")).targets
    for p in (0.1, 0.5, 0.9):
        o = ml.keep_labels(t, p, seed=3)
        assert (o != 0).sum().item() == round(p * t.numel())
        known = o != 0
        assert torch.equal((o[known] > 0).float(), t[known])  # kept labels are the true ones
        assert torch.equal(o, ml.keep_labels(t, p, seed=3))
        assert not torch.equal(o, ml.keep_labels(t, p, seed=4))
    with pytest.raises(ValueError, match="proportion"):
        ml.keep_labels(t, 0.0)


def test_single_positive_keeps_one_true_positive():
    t = worlds.SceneWorld().sample(300, generator(0, "z")).targets
    o = ml.single_positive(t, seed=1)
    assert torch.equal(o.sum(1), torch.ones(300, dtype=o.dtype)) and (o >= 0).all()
    assert (t[o > 0] == 1).all()
    assert torch.equal(o, ml.observe(t, "single", 1))
    with pytest.raises(ValueError, match="images \\[1\\]"):
        ml.single_positive(torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="'single'"):
        ml.observe(t, "half")


# jameslahm/SCPNet randaugment.py:146-152: the official augment_list, name, low, high
OFFICIAL_OPS = [("AutoContrast", 0, 1), ("Brightness", 0.05, 0.95), ("Color", 0.05, 0.95), ("Contrast", 0.05, 0.95),
                ("Equalize", 0, 1), ("Identity", 0, 1), ("Posterize", 4, 8), ("Rotate", -30, 30),
                ("Sharpness", 0.05, 0.95), ("ShearX", -0.3, 0.3), ("ShearY", -0.3, 0.3), ("Solarize", 0, 256),
                ("TranslateX", -0.3, 0.3), ("TranslateY", -0.3, 0.3)]


def test_the_official_strong_view_runs_in_scpnets_order(monkeypatch):
    """RandAugment(3, 5) -- three of the fourteen official ops, then a cutout -- on the whole
    picture, then the weak view's flip and crop: jameslahm/SCPNet scpnet.py:33-37 inserts
    RandAugment ahead of the weak transform (:217-221); randaugment.py:162-169."""
    from clipadapt.data import fixmatch

    assert [(n, lo, hi) for n, _, lo, hi in fixmatch.OPS] == OFFICIAL_OPS
    calls, seen = [], []
    spied = [(n, (lambda op, n: lambda img, v: (calls.append(n), op(img, v))[1])(op, n), lo, hi)
             for n, op, lo, hi in fixmatch.OPS]
    monkeypatch.setattr(fixmatch, "OPS", tuple(spied))
    cut, weak = fixmatch.cutout, ml.weak_view
    monkeypatch.setattr(fixmatch, "cutout", lambda img, v, rng: (calls.append("Cutout"), cut(img, v, rng))[1])

    def weak_spy(images, g, *a, **k):
        calls.append("weak view")
        seen.append(images)
        return weak(images, g, *a, **k)

    monkeypatch.setattr(ml, "weak_view", weak_spy)
    x = torch.rand(2, 3, 32, 32)
    out = ml.official_strong_view(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
    names = [n for n, *_ in OFFICIAL_OPS]
    assert [c in names for c in calls] == [True] * 3 + [False] + [True] * 3 + [False, False]
    assert calls[3] == calls[7] == "Cutout" and calls[-1] == "weak view"  # one weak view for the batch
    assert seen[0].shape == x.shape  # the ops saw whole pictures, cropped only after
    again = ml.official_strong_view(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


@pytest.mark.parametrize("profile,official", [("colab", True), ("paper", True), ("tiny", False)])
def test_the_loader_takes_the_official_strong_view_only_under_the_official_augment(
        tiny_clip, monkeypatch, profile, official):
    """Colab and paper (augment weak-strong, fresh views) draw the official strong view; the
    stored pool of views (tiny: augment none, cached) keeps the batched one."""
    from clipadapt import profiles, tasks
    from clipadapt.training import driver, recipes

    used = []
    for name in ("official_strong_view", "strong_view"):
        f = getattr(ml, name)
        monkeypatch.setattr(ml, name, (lambda f, name: lambda *a, **k: (used.append(name), f(*a, **k))[1])(f, name))
    clip, _, tok = tiny_clip
    train, test = ml.scene_sets((8, 8))
    task = tasks.MultiLabelTask(train, ml.observe(train.targets, 0.3, seed=0), test)
    recipe = recipes.get("SCPNet", profiles.get(profile))
    assert recipe.augment == ("weak-strong" if official else "none")
    recipe = recipe.replace(steps=1, batch_size=4, options={**recipe.options, "topk": 5})
    driver.prepare("SCPNet", clip, tok, task, recipe=recipe).loader.load(torch.arange(4), 0)
    assert used and set(used) == {"official_strong_view" if official else "strong_view"}


def test_views_shapes_range_and_seed():
    x = torch.rand(6, 3, 32, 32)
    w1 = ml.weak_view(x, torch.Generator().manual_seed(0))
    w2 = ml.weak_view(x, torch.Generator().manual_seed(0))
    s = ml.strong_view(x, torch.Generator().manual_seed(0))
    assert torch.equal(w1, w2) and w1.shape == x.shape and s.shape == x.shape
    assert 0 <= s.min() and s.max() <= 1 and not torch.allclose(s, w1)
    full = ml.weak_view(x, torch.Generator().manual_seed(0), scale=(1.0, 1.0), ratio=(1.0, 1.0))  # the whole image
    per = [torch.allclose(full[i], x[i], atol=1e-4) or torch.allclose(full[i], x[i].flip(-1), atol=1e-4)
           for i in range(6)]
    assert all(per)


def test_scene_sets_of_the_sizes_asked():
    tr, te = ml.scene_sets((20, 10))
    assert tr.images.shape == (20, 3, 64, 64) and te.targets.shape == (10, 30)
    with pytest.raises(ValueError, match=r"sizes: two positive counts \(training, test pictures\), got \(0, 5\)"):
        ml.scene_sets((0, 5))


# -- COCO 2014 -------------------------------------------------------------------------------
def _coco(root, split="val"):
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    data = {
        "info": {"description": "COCO 2014 Dataset"}, "licenses": [],
        "images": [{"license": 3, "file_name": f"COCO_{split}2014_000000000042.jpg", "height": 480, "width": 640,
                    "id": 42},
                   {"license": 1, "file_name": f"COCO_{split}2014_000000000073.jpg", "height": 427, "width": 640,
                    "id": 73},
                   {"license": 1, "file_name": f"COCO_{split}2014_000000000074.jpg", "height": 427, "width": 640,
                    "id": 74}],
        "annotations": [
            {"segmentation": [[1, 2, 3, 4]], "area": 10.0, "iscrowd": 0, "image_id": 42, "bbox": [1, 2, 3, 4],
             "category_id": 18, "id": 1},
            {"segmentation": [[1, 2, 3, 4]], "area": 10.0, "iscrowd": 0, "image_id": 42, "bbox": [1, 2, 3, 4],
             "category_id": 1, "id": 2},
            {"segmentation": [[1, 2, 3, 4]], "area": 10.0, "iscrowd": 0, "image_id": 73, "bbox": [1, 2, 3, 4],
             "category_id": 90, "id": 3},
            {"segmentation": [[1, 2, 3, 4]], "area": 5.0, "iscrowd": 0, "image_id": 73, "bbox": [1, 2, 3, 4],
             "category_id": 90, "id": 4}],
        "categories": [{"supercategory": "indoor", "id": 90, "name": "toothbrush"},
                       {"supercategory": "person", "id": 1, "name": "person"},
                       {"supercategory": "animal", "id": 18, "name": "dog"}],
    }
    (root / "annotations" / f"instances_{split}2014.json").write_text(json.dumps(data))
    return data


def test_coco_loader(tmp_path):
    _coco(tmp_path, "val")
    d = sets.load_coco(tmp_path, "val")
    assert d.classnames == ["person", "dog", "toothbrush"]  # increasing category id
    assert d.targets.tolist() == [[1, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert d.paths[0] == tmp_path / "val2014" / "COCO_val2014_000000000042.jpg"
    with pytest.raises(FileNotFoundError, match="missing"):
        d.image(0)


def test_coco_loader_errors(tmp_path):
    with pytest.raises(sets.MultiLabelFormatError, match="instances_train2014.json"):
        sets.load_coco(tmp_path, "train")
    data = _coco(tmp_path, "train")
    path = tmp_path / "annotations" / "instances_train2014.json"
    path.write_text("{not json")
    with pytest.raises(sets.MultiLabelFormatError, match="not valid JSON"):
        sets.load_coco(tmp_path, "train")
    data["annotations"][0]["category_id"] = 77
    path.write_text(json.dumps(data))
    with pytest.raises(sets.MultiLabelFormatError, match="category 77"):
        sets.load_coco(tmp_path, "train")
    path.write_text(json.dumps({"images": []}))
    with pytest.raises(sets.MultiLabelFormatError, match="'annotations'"):
        sets.load_coco(tmp_path, "train")


# -- VOC 2007 --------------------------------------------------------------------------------
XML = """<annotation>
	<folder>VOC2007</folder>
	<filename>{id}.jpg</filename>
	<size><width>353</width><height>500</height><depth>3</depth></size>
{objects}</annotation>
"""
OBJ = """	<object>
		<name>{name}</name>
		<pose>Unspecified</pose>
		<truncated>0</truncated>
		<difficult>{difficult}</difficult>
		<bndbox><xmin>1</xmin><ymin>2</ymin><xmax>30</xmax><ymax>40</ymax></bndbox>
	</object>
"""


def _voc(root):
    objects = {"000005": [("chair", 0), ("chair", 1)], "000007": [("car", 0)], "000009": [("horse", 0),
               ("person", 0), ("cat", 1)]}
    main = root / "ImageSets" / "Main"
    main.mkdir(parents=True)
    (root / "Annotations").mkdir()
    ids = list(objects)
    (main / "trainval.txt").write_text("".join(f"{i}\n" for i in ids))
    for i, objs in objects.items():
        (root / "Annotations" / f"{i}.xml").write_text(
            XML.format(id=i, objects="".join(OBJ.format(name=n, difficult=d) for n, d in objs)))
    for c in sets.VOC_CLASSES:
        lines = []
        for i in ids:
            flags = [d for n, d in objects[i] if n == c]
            v = -1 if not flags else (1 if 0 in flags else 0)
            lines.append(f"{i} {v:2d}\n")  # VOC pads the label to two characters: "000005 -1", "000007  1"
        (main / f"{c}_trainval.txt").write_text("".join(lines))
    return ids


def test_voc_loader_both_sources_agree(tmp_path):
    ids = _voc(tmp_path)
    a = sets.load_voc2007(tmp_path, "trainval", "imagesets")
    b = sets.load_voc2007(tmp_path, "trainval", "annotations")
    assert torch.equal(a.targets, b.targets) and torch.equal(a.difficult, b.difficult)
    c = sets.VOC_CLASSES.index
    assert a.targets[0, c("chair")] == 1 and a.targets[1, c("car")] == 1
    assert a.targets[2, c("cat")] == 0 and a.difficult[2, c("cat")]  # difficult only
    assert a.targets.sum().item() == 4 and a.paths[2].name == f"{ids[2]}.jpg"


def test_voc_loader_errors(tmp_path):
    with pytest.raises(sets.MultiLabelFormatError, match="aeroplane_trainval.txt"):
        sets.load_voc2007(tmp_path)
    _voc(tmp_path)
    bad = tmp_path / "ImageSets" / "Main" / "bird_trainval.txt"
    bad.write_text("000005 -1\n000007  2\n000009 -1\n")
    with pytest.raises(sets.MultiLabelFormatError, match="bird_trainval.txt, line 2"):
        sets.load_voc2007(tmp_path)
    bad.write_text("000005 -1\n000009 -1\n000007 -1\n")
    with pytest.raises(sets.MultiLabelFormatError, match="other images"):
        sets.load_voc2007(tmp_path)
    (tmp_path / "Annotations" / "000007.xml").write_text(XML.format(id="000007", objects=OBJ.format(name="unicorn",
                                                                                                    difficult=0)))
    with pytest.raises(sets.MultiLabelFormatError, match="unicorn"):
        sets.load_voc2007(tmp_path, source="annotations")
    (tmp_path / "Annotations" / "000007.xml").write_text("<annotation><object>")
    with pytest.raises(sets.MultiLabelFormatError, match="not valid XML"):
        sets.load_voc2007(tmp_path, source="annotations")


# -- SCPNet's list files ----------------------------------------------------------------------
def test_scpnet_list_files(tmp_path):
    (tmp_path / "voc_labels.txt").write_text("\n".join(sets.VOC_CLASSES))
    (tmp_path / "voc_train.txt").write_text("2008_000008.jpg,12\n2008_000015.jpg,4\n")
    (tmp_path / "voc_val.txt").write_text("2008_000002.jpg,19\n2008_000003.jpg,14 18\n")
    names = sets.read_classnames(tmp_path / "voc_labels.txt")
    assert names == list(sets.VOC_CLASSES)
    train = sets.load_list(tmp_path / "voc_train.txt", names, "VOC2012/JPEGImages")
    assert train.targets.sum(1).tolist() == [1, 1] and train.targets[0, 12] == 1
    assert str(train.paths[1]) == "VOC2012/JPEGImages/2008_000015.jpg"
    val = sets.load_list(tmp_path / "voc_val.txt", names)
    assert val.targets[1].nonzero().flatten().tolist() == [14, 18]
    (tmp_path / "bad.txt").write_text("2008_000008.jpg,12\n2008_000015.jpg 4\n")
    with pytest.raises(sets.MultiLabelFormatError, match="bad.txt, line 2"):
        sets.load_list(tmp_path / "bad.txt", names)
    (tmp_path / "bad.txt").write_text("2008_000008.jpg,20\n")
    with pytest.raises(sets.MultiLabelFormatError, match="0..19"):
        sets.load_list(tmp_path / "bad.txt", names)
    with pytest.raises(sets.MultiLabelFormatError, match="not found"):
        sets.load_list(tmp_path / "nope.txt", names)
