import json

import pytest
import torch

from clipadapt import profiles, tasks
from clipadapt.data import fewshot
from clipadapt.methods import registry
from clipadapt.training import driver, recipes

TINY = profiles.get("tiny")


def test_synthetic_task_is_deterministic_nested_and_balanced():
    task = fewshot.SYNTHETIC_TASKS["outlines"]
    x4, y4 = task.train_set(4)
    x16, y16 = task.train_set(16)
    assert x4.shape == (20, 3, 64, 64) and torch.bincount(y4).tolist() == [4] * 5
    assert torch.equal(x16[:20], x4) and torch.equal(y16[:20], y4)  # 4 shots are the first of 16
    again, _ = task.train_set(4)
    assert torch.equal(again, x4)
    xt, yt = task.test_set(10)
    assert len(xt) == 50 and not any(torch.equal(xt[i], x16[j]) for i in range(5) for j in range(5))
    with pytest.raises(ValueError, match=r"shots must lie in \[1, 16\]"):
        task.train_set(17)


def test_the_tiny_clip_does_not_already_solve_the_task(tiny_clip):
    model, _, tok = tiny_clip
    task = fewshot.SYNTHETIC_TASKS["outlines"]
    r = driver.run("zero-shot", model, tok, tasks.ClassificationTask(task, 1, task.test_set(60)), profile=TINY)
    assert 0.2 < r.metrics["accuracy"] < 0.6  # above chance, far from solved


def test_an_adaptation_beats_zero_shot_clearly_at_16_shots(tiny_clip):
    model, _, tok = tiny_clip
    task = fewshot.SYNTHETIC_TASKS["outlines"]
    test = task.test_set(60)
    t = tasks.ClassificationTask(task, 16, test)
    zero = driver.run("zero-shot", model, tok, t, profile=TINY)
    lora = driver.run("LoRA", model, tok, t, profile=TINY)
    assert lora.metrics["accuracy"] > zero.metrics["accuracy"] + 0.15
    assert lora.trainable == 24_576


@pytest.mark.parametrize("method", registry.methods("classification"))
def test_every_method_runs_and_leaves_the_base_model_alone(tiny_clip, method):
    model, _, tok = tiny_clip
    before = {k: v.clone() for k, v in model.state_dict().items()}
    task = fewshot.SYNTHETIC_TASKS["outlines"]
    recipe = recipes.get(method, profiles.get("tiny")).replace(epochs=1, min_steps=3)
    r = driver.run(method, model, tok, tasks.ClassificationTask(task, 1, task.test_set(4)), recipe=recipe)
    assert 0 <= r.metrics["accuracy"] <= 1 and (r.trainable > 0) == (method != "zero-shot")
    assert r.steps == (0 if method == "zero-shot" else 3) and r.macs > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_unknown_method_variant_and_task(tiny_clip):
    with pytest.raises(ValueError, match="unknown method 'prefix tuning'; choose one of zero-shot"):
        driver.run("prefix tuning", None, None, None)
    with pytest.raises(ValueError, match="'CoOp' has no variants"):
        registry.get("CoOp").variant("deep")
    with pytest.raises(ValueError, match=r"unknown variant 'G' of 'VoP'; choose one of \('vop'"):
        registry.get("VoP").variant("G")
    task = tasks.ClassificationTask(fewshot.SYNTHETIC_TASKS["outlines"], 1, fewshot.SYNTHETIC_TASKS["outlines"].test_set(2))
    with pytest.raises(ValueError, match="'VoP' solves retrieval, but the task is classification"):
        driver.run("VoP", tiny_clip[0], tiny_clip[2], task)


def write_eurosat(root, classes=("AnnualCrop", "Forest", "River"), per_class=3):
    from PIL import Image

    images = root / "2750"
    split = {"train": [], "val": [], "test": []}
    for label, cls in enumerate(classes):
        (images / cls).mkdir(parents=True)
        for i in range(per_class * 2):
            rel = f"{cls}/{cls}_{i + 1}.jpg"
            Image.new("RGB", (64, 64), (40 * label, 200 - 50 * label, 30 * i)).save(images / rel)
            split["train" if i < per_class else "test"].append([rel, label, cls.lower()])
    (root / "split_zhou_EuroSAT.json").write_text(json.dumps(split))
    return root


def test_coop_format_loader_on_a_fixture(tmp_path, tiny_clip):
    _, preprocess, _ = tiny_clip
    root = write_eurosat(tmp_path / "eurosat")
    task = fewshot.load_coop_dataset(root, "eurosat", preprocess)
    assert task.classnames == ["annualcrop", "forest", "river"]
    x, y = task.train_set(2)
    assert x.shape == (6, 3, 64, 64) and torch.bincount(y).tolist() == [2, 2, 2]
    x1, y1 = task.train_set(1)
    assert len(x1) == 3
    xt, yt = task.test_set()
    assert len(xt) == 9
    with pytest.raises(ValueError, match="fewer than 4 shots"):
        task.train_set(4)
    assert task.template == "a centered satellite photo of {}."


def test_coop_loader_errors_name_the_file_and_the_way_out(tmp_path, tiny_clip):
    _, preprocess, _ = tiny_clip
    with pytest.raises(fewshot.DatasetMissingError, match="split_zhou_EuroSAT.json.*'tiny' profile"):
        fewshot.load_coop_dataset(tmp_path / "nowhere", "eurosat", preprocess)
    with pytest.raises(fewshot.DatasetMissingError, match="`python -m clipadapt.data.fetch eurosat` fetches it"):
        fewshot.load_coop_dataset(tmp_path / "eurosat", "eurosat", preprocess)  # a data root's folder
    root = write_eurosat(tmp_path / "eurosat")
    (root / "split_zhou_EuroSAT.json").write_text("{not json")
    with pytest.raises(ValueError, match="split_zhou_EuroSAT.json is not valid JSON"):
        fewshot.load_coop_dataset(root, "eurosat", preprocess)
    (root / "split_zhou_EuroSAT.json").write_text(json.dumps({"train": [["a.jpg", "x", "y"]], "val": [], "test": []}))
    with pytest.raises(ValueError, match="entry 0 of 'train'"):
        fewshot.load_coop_dataset(root, "eurosat", preprocess)
    (root / "split_zhou_EuroSAT.json").write_text(json.dumps({"train": [["River/broken.jpg", 0, "river"]], "val": [], "test": []}))
    (root / "2750" / "River" / "broken.jpg").write_bytes(b"not an image")
    task = fewshot.load_coop_dataset(root, "eurosat", preprocess)
    with pytest.raises(OSError, match="broken.jpg"):
        task.train_set(1)
    with pytest.raises(ValueError, match="unknown dataset"):
        fewshot.load_coop_dataset(root, "imagenet-21k", preprocess)


def test_profile_picks_the_task(tiny_clip, tmp_path, monkeypatch):
    """tiny: the synthetic task; colab: EuroSAT, fetched when missing. The fetch goes to a
    closed port on 127.0.0.1 here (never off the machine) and fails with an error that
    names the dataset's file and the URL."""
    import dataclasses

    from clipadapt.data.fetch import download

    assert fewshot.load_task("outlines") is fewshot.SYNTHETIC_TASKS["outlines"]
    closed = {k: dataclasses.replace(r, url=f"http://127.0.0.1:9/{k}") for k, r in download.RESOURCES.items()}
    monkeypatch.setattr(download, "RESOURCES", closed)
    with pytest.raises(download.DownloadError, match=r"eurosat(.|\n)*http://127\.0\.0\.1:9/"):
        fewshot.load_task("eurosat", preprocess=tiny_clip[1], data_root=tmp_path)


def test_parameter_counts_of_every_method_on_vit_b32():
    context = {"classnames": [f"class {i}" for i in range(10)], "template": "a photo of a {}."}
    counts = driver.trainable_parameters("ViT-B-32", context, profile=profiles.get("colab"))
    assert counts == {"zero-shot": 0, "linear probe": 5_130, "CoOp": 8_192, "VPT-deep": 73_728,
                      "LoRA": 491_520, "full fine-tune": 151_277_312}


def test_each_seed_draws_its_own_few_shot_pictures():
    """A run's seed picks its few-shot draw (as CoOp's seeds do); seed 0 is the task's first
    draw, the test pictures are the same for every seed."""
    from clipadapt import experiments, profiles

    bench = experiments.Workbench(profiles.get("tiny"), None, None, None)
    spec = experiments.get("ch02/coop", profiles.get("tiny"))
    zero, one, again = (bench.task(spec, s, 1) for s in (0, 1, 0))
    assert torch.equal(zero.x_train, again.x_train) and not torch.equal(zero.x_train, one.x_train)
    assert torch.equal(zero.y_train, one.y_train) and torch.equal(zero.x_test, one.x_test)
    task = bench.fewshot()
    assert torch.equal(task.train_set(2)[0], zero.task.train_set(2, 0)[0])
    assert torch.equal(task.train_set(4, 1)[0][:10], task.train_set(2, 1)[0])  # nested within a draw
