"""Multi-task few-shot suites: the synthetic world, the shuffled-names control, and the
loaders of real suites in CoOp's formats (on a fixture suite written in those formats)."""

import json

import pytest
import torch
from PIL import Image

from clipadapt.data import fewshot
from clipadapt.data import multitask as mt


def test_world_suite_names_and_classes():
    s = mt.world_suite(4, classes=3)
    assert len(s) == 12 and s.domains.count("shape") == 4 and s.n_classes == 36
    assert s.names[0] == "red objects: circle, square or triangle"
    assert s.names[5] == "small objects: orange, yellow or green"
    assert s.names[8] == "red objects: on the left, on the right or at the top"
    assert len(set(s.names)) == 12
    assert s.tasks[0].classnames == ["circle", "square", "triangle"]
    assert s.tasks[1].classnames == ["square", "triangle", "diamond"]  # related tasks share some classes
    assert s.tasks[8].classnames == ["on the left", "on the right", "at the top"]
    with pytest.raises(ValueError, match="the shape domain has 1 to"):
        mt.world_suite(40)
    with pytest.raises(ValueError, match="unknown domain"):
        mt.world_suite(2, domains=("smell",))


def test_world_tasks_are_nested_deterministic_and_conditioned():
    s = mt.world_suite(2, classes=3)
    task = s.tasks[0]  # shapes of red objects
    x16, y16 = task.train_set(16)
    for k in (1, 2, 4, 8):
        xk, yk = task.train_set(k)
        assert torch.equal(xk, x16[: 3 * k]) and torch.equal(yk, y16[: 3 * k])
        assert torch.bincount(yk).tolist() == [k] * 3
    assert torch.equal(task.train_set(4)[0], mt.world_suite(2, classes=3).tasks[0].train_set(4)[0])
    other_seed = mt.world_suite(2, classes=3, seed=1).tasks[0]
    assert not torch.equal(other_seed.train_set(1)[0], task.train_set(1)[0])
    assert torch.equal(other_seed.test_set(5)[0], task.test_set(5)[0])  # one test set for every seed
    g = mt.worlds.generator(0, "multitask", task.name, "train", "0")
    scenes = task.world().sample(16, g, colour=0, shape=0)
    assert (scenes.attribute("colour") == 0).all()


def test_label_suite_names_say_which_half_of_a_class_name_counts():
    s = mt.label_suite(4, classes=3)
    assert len(s) == 8 and s.domains == ("shape",) * 4 + ("colour",) * 4 and len(set(s.names)) == 8
    assert s.names[0] == "circle, triangle or cross" and s.names[4] == "red, orange or yellow"
    for k in range(4):  # task k of both domains: the same class names, different labels
        assert s.tasks[k].classnames == s.tasks[4 + k].classnames
        assert s.tasks[k].attribute == "shape" and s.tasks[4 + k].attribute == "colour"
    assert s.tasks[0].classnames == ["red circle", "orange triangle", "yellow cross"]
    assert s.tasks[0].template.format(s.tasks[0].classnames[0]) == "a photo of a red circle."
    with pytest.raises(ValueError, match="2 to 5 classes"):
        mt.label_suite(4, classes=6)
    with pytest.raises(ValueError, match="coherent"):
        mt.label_suite(coherent=1.0)


def test_label_tasks_test_on_conflicting_pairs_and_train_on_mostly_coherent_ones():
    s = mt.label_suite(2, classes=3, coherent=0.75)
    for task in (s.tasks[0], s.tasks[2]):  # a shape task and a colour task
        own, other = ("shape", "colour") if task.attribute == "shape" else ("colour", "shape")
        i_own, i_other = (0, 1) if own == "shape" else (1, 0)
        coherent = 0
        for c, pair in enumerate(task.pairs):
            for split in ("train", "test"):
                sc = task.scenes(c, 200, split)
                assert (sc.attribute(own) == pair[i_own]).all()  # the label's attribute
                values = {p[i_other] for p in task.pairs}
                assert set(sc.attribute(other).tolist()) <= values  # some class's value
                same = sc.attribute(other) == pair[i_other]
                if split == "test":
                    assert not same.any()  # always another class's value
                else:
                    coherent += int(same.sum())
        assert 0.65 < coherent / (200 * len(task.pairs)) < 0.85
    x16, y16 = s.tasks[0].train_set(16)
    x1, y1 = s.tasks[0].train_set(1)
    assert torch.equal(x1, x16[:3]) and y1.tolist() == [0, 1, 2]
    assert torch.equal(mt.label_suite(2, 3).tasks[0].test_set(4)[0],
                       mt.label_suite(2, 3, seed=5).tasks[0].test_set(4)[0])  # one test set for every seed
    assert not torch.equal(x1, mt.label_suite(2, 3, seed=5).tasks[0].train_set(1)[0])


def test_shuffled_names_is_a_derangement():
    s = mt.world_suite(3)
    sh = mt.shuffled_names(s, seed=3)
    assert sh.tasks == s.tasks and sorted(sh.names) == sorted(s.names)
    assert all(a != b for a, b in zip(sh.names, s.names))
    with pytest.raises(ValueError, match="at least two"):
        mt.shuffled_names(s.subset([0]))


def test_general10_has_1191_classes():
    assert [e.n_classes for e in mt.GENERAL10] == [100, 47, 10, 100, 101, 102, 37, 196, 397, 101]
    assert sum(e.n_classes for e in mt.GENERAL10) == 1_191
    assert {e.metric for e in mt.GENERAL10} == set(mt.METRICS)


def _image(path, colour):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), colour).save(path)


@pytest.fixture
def fixture_suite(tmp_path):
    """Two datasets: EuroSAT in CoOp's split-json format, FGVC-Aircraft in its variant files."""
    root = tmp_path / "data"
    euro = root / "eurosat"
    split = {"train": [], "val": [], "test": []}
    for label, name in enumerate(["Forest", "River"]):
        for i in range(4):
            _image(euro / "2750" / name / f"{name}_{i}.jpg", (40 * label, 100, 20 * i))
            split["train" if i < 3 else "test"].append([f"{name}/{name}_{i}.jpg", label, name.lower()])
    (euro / "split_zhou_EuroSAT.json").write_text(json.dumps(split))
    air = root / "fgvc_aircraft"
    air.mkdir(parents=True)
    (air / "variants.txt").write_text("707-320\nA300B4\n")
    rows = {"train": [], "val": [], "test": []}
    for label, name in enumerate(["707-320", "A300B4"]):
        for i in range(4):
            ident = f"{label}{i:06d}"
            _image(air / "images" / f"{ident}.jpg", (200, 40 * label, 10 * i))
            rows["train" if i < 3 else "test"].append(f"{ident} {name}")
    for key, lines in rows.items():
        (air / f"images_variant_{key}.txt").write_text("\n".join(lines) + "\n")
    entries = tuple(e for e in mt.GENERAL10 if e.folder in ("eurosat", "fgvc_aircraft"))
    entries = tuple(mt.SuiteEntry(e.task_name, e.folder, e.dataset, 2, e.metric) for e in entries)
    return root, entries


def _preprocess(im):
    return torch.tensor(list(im.getpixel((0, 0))), dtype=torch.float32)


def test_load_fixture_suite(fixture_suite):
    root, entries = fixture_suite
    s = mt.load_suite(root, entries, preprocess=_preprocess)
    assert s.names == ("satellite land use", "aircraft models")
    assert s.tasks[0].classnames == ["forest", "river"] and s.tasks[1].classnames == ["707-320", "A300B4"]
    assert s.metrics == ("accuracy", "mean_per_class")
    x1, y1 = s.tasks[1].train_set(1)
    x2, y2 = s.tasks[1].train_set(2)
    assert y1.tolist() == [0, 1] and y2.tolist() == [0, 0, 1, 1]
    assert any(torch.equal(x1[0], r) for r in x2[:2]) and any(torch.equal(x1[1], r) for r in x2[2:])
    xt, yt = s.tasks[0].test_set()
    assert yt.tolist() == [0, 1] and s.tasks[0].template == "a centered satellite photo of {}."


def test_fixture_suite_errors(fixture_suite):
    root, entries = fixture_suite
    with pytest.raises(ValueError, match="expected 5 classes"):
        mt.load_suite(root, (mt.SuiteEntry("x", "eurosat", entries[0].dataset, 5, "accuracy"),), _preprocess)
    (root / "fgvc_aircraft" / "images_variant_val.txt").write_text("0000001 Concorde\n")
    with pytest.raises(ValueError, match=r"images_variant_val.txt:1: class 'Concorde' is not in"):
        mt.load_suite(root, entries, _preprocess)
    with pytest.raises(fewshot.DatasetMissingError, match="caltech-101"):
        mt.load_suite(root, mt.GENERAL10, _preprocess)
    with pytest.raises(ValueError, match="one name per task"):
        mt.Suite(("a",), ())
    with pytest.raises(ValueError, match="unknown task metrics"):
        mt.Suite(("a",), (object(),), metrics=("top5",))


def test_task_accuracy_as_softcpt_measures_it():
    from clipadapt.core import metrics

    labels = torch.tensor([0, 0, 0, 1])
    preds = torch.tensor([0, 0, 0, 0])
    assert metrics.task_accuracy(preds, labels) == pytest.approx(0.75)
    assert metrics.task_accuracy(preds, labels, "mean_per_class") == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unknown task metric"):
        metrics.task_accuracy(preds, labels, "top5")


def test_the_profiles_suites(tmp_path, monkeypatch):
    from clipadapt import profiles
    from clipadapt.data import fixtures
    from clipadapt.data.fetch import download

    from clipadapt.experiments import settings

    def suite(name, **kw):  # the suite chapter 7 reads under profile ``name``
        s = settings.of(name if isinstance(name, profiles.Profile) else profiles.get(name))
        return mt.suite_for(s.fewshot.dataset in fewshot.SYNTHETIC_TASKS, s.suites.datasets, s.suites.classes, **kw)

    s = suite("tiny")
    assert len(s) == 12 and s.n_classes == 36
    asked = []

    def ensure(folder, root=None, **kw):  # the real one's answer when the network is down
        if all(download.is_complete(download.RESOURCES[n], root) for n in download.DATASETS[folder]):
            return download.data_root(root) / folder
        asked.append(folder)
        raise download.DownloadError(f"{folder}: offline")

    monkeypatch.setattr(download, "ensure", ensure)  # every dataset goes through the download layer
    with pytest.raises(download.DownloadError, match="caltech-101: offline"):
        suite("colab", preprocess=_preprocess, data_root=tmp_path)
    colab = settings.of(profiles.get("colab")).suites.datasets
    assert set(colab) <= set(download.DATASETS)  # every colab dataset has a download
    fixtures.write_general10(tmp_path, colab)
    s = suite("colab", preprocess=_preprocess, data_root=tmp_path)  # present: nothing fetched
    assert asked == ["caltech-101"]
    assert s.domains == colab and s.n_classes == 259
    smoke = suite("colab-smoke", preprocess=_preprocess, data_root=tmp_path)
    assert smoke.n_classes == 4 * 3 and smoke.tasks[1].classnames == ["dtd class 000", "dtd class 001", "dtd class 002"]
    assert [len(t.test_set()[1]) for t in smoke.tasks] == [3, 3, 3, 3]  # one test picture a class
    with pytest.raises(ValueError, match=r"\['imagenet'\] are not General-10 folders"):
        mt.suite_for(False, ("imagenet",), None, _preprocess, tmp_path)


def test_every_general10_dataset_has_a_fixture_in_its_real_format(tmp_path):
    """All ten, written with their real class counts, read back by the loaders."""
    from clipadapt.data import fixtures

    fixtures.write_general10(tmp_path)
    s = mt.load_suite(tmp_path, mt.GENERAL10, _preprocess, classes=2)
    assert s.n_classes == 20 and len(s) == 10
    for task in s.tasks:
        x, y = task.train_set(1)
        assert y.tolist() == [0, 1] and x.shape == (2, 3)
    assert (tmp_path / "oxford_flowers" / "jpg" / "image_00001.jpg").is_file()
    assert (tmp_path / "caltech-101" / "101_ObjectCategories" / "caltech_101_class_000" / "image_0001.jpg").is_file()
    assert len((tmp_path / "fgvc_aircraft" / "variants.txt").read_text().splitlines()) == 100
