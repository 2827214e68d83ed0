"""Class and task names reach the prompts as the official code writes them (issue 18, finding 2).

CoOp's split files keep ``american_bulldog``, ``apple_pie``, ``indoor shopping_mall`` and
``Apply_Eye_Makeup``; CoOp's and SoftCPT's trainers turn ``_`` into a space before
tokenising, and CoOp's datasets rename some classes (EuroSAT's and Caltech-101's
``NEW_CNAMES``). The fixtures carry the real names in the real formats; the loaders and every
method that writes a prompt go through :func:`clipadapt.data.names.prompt_name`.
"""

import json
import re
from pathlib import Path

import pytest
import torch

from clipadapt.data import fewshot, fixtures, names
from clipadapt.data import multitask as mt
from clipadapt.methods import baselines, coop, softcpt

LIB = Path(__file__).resolve().parents[1] / "lib" / "clipadapt"
# CoOp trainers/zsclip.py CUSTOM_TEMPLATES, by our General-10 folder
COOP_TEMPLATES = {
    "caltech-101": "a photo of a {}.", "dtd": "{} texture.", "eurosat": "a centered satellite photo of {}.",
    "fgvc_aircraft": "a photo of a {}, a type of aircraft.", "food-101": "a photo of {}, a type of food.",
    "oxford_flowers": "a photo of a {}, a type of flower.", "oxford_pets": "a photo of a {}, a type of pet.",
    "stanford_cars": "a photo of a {}.", "sun397": "a photo of a {}.", "ucf101": "a photo of a person doing {}.",
}
REAL = ("oxford_pets", "food-101", "sun397", "ucf101")


def test_prompt_name_writes_names_as_coop_and_softcpt_do():
    assert names.prompt_name("american_bulldog") == "american bulldog"
    assert names.prompt_name("Apply_Eye_Makeup") == "Apply Eye Makeup"
    assert names.prompt_name("indoor shopping_mall") == "indoor shopping mall"
    assert names.prompt_name("707-320") == "707-320" and names.prompt_name("pink primrose") == "pink primrose"
    # CoOp's NEW_CNAMES, under the spellings a dataset goes by
    for dataset in ("eurosat", "EuroSAT", "euro_sat"):
        assert names.prompt_name("AnnualCrop", dataset) == "Annual Crop Land"
    assert names.prompt_name("SeaLake", "eurosat") == "Sea or Lake"
    assert names.prompt_name("Faces", "caltech-101") == "face" and names.prompt_name("airplanes", "Caltech101") == "airplane"
    assert names.prompt_name("AnnualCrop") == "AnnualCrop"  # no dataset, no rename
    assert names.prompt_name("Faces", "eurosat") == "Faces"  # another dataset's rename does not apply
    # a prompt name goes through unchanged, so loaders and methods may both apply it
    for raw, dataset in [("AnnualCrop", "eurosat"), ("airplanes", "caltech101"), ("a__b_c", None)]:
        once = names.prompt_name(raw, dataset)
        assert names.prompt_name(once, dataset) == once and names.prompt_name(once) == once
    assert names.prompts("a photo of {}, a type of food.", ["apple_pie"]) == ["a photo of apple pie, a type of food."]
    for bad in ("", "  ", None, 3):
        with pytest.raises(ValueError, match="non-empty string"):
            names.prompt_name(bad)
    with pytest.raises(ValueError, match="needs a '{}'"):
        names.prompts("a photo of a thing.", ["cat"])


def test_no_module_writes_prompt_names_by_hand():
    """``replace("_", " ")`` lives in data/names.py only, among the layers that handle names
    (the benchmark's table labels are not prompts)."""
    pattern = re.compile(r"""replace\(\s*['"]_['"]\s*,\s*['"] ['"]\s*\)""")
    found = []
    for package in ("core", "data", "methods", "tasks", "training"):
        for path in (LIB / package).rglob("*.py"):
            code = "\n".join(line.split("#")[0] for line in path.read_text().splitlines())
            if pattern.search(code):
                found.append(str(path.relative_to(LIB)))
    assert found == ["data/names.py"], found


def test_the_general10_templates_are_coops():
    assert {e.folder: e.dataset.template for e in mt.GENERAL10} == COOP_TEMPLATES


@pytest.fixture(scope="module")
def real_suite(tmp_path_factory):
    root = tmp_path_factory.mktemp("general10")
    fixtures.write_general10(root, REAL + ("eurosat",))
    entries = tuple(e for e in mt.GENERAL10 if e.folder in REAL + ("eurosat",))
    return root, mt.load_suite(root, entries, preprocess=lambda im: torch.zeros(3))


def test_fixtures_write_the_real_names_in_the_real_formats(real_suite):
    root, _ = real_suite

    def split(folder, name):
        return json.loads((root / folder / name).read_text())

    pets = split("oxford_pets", "split_zhou_OxfordPets.json")
    assert ["american_bulldog_1.jpg", 1, "american_bulldog"] in pets["train"]
    assert ["Abyssinian_1.jpg", 0, "abyssinian"] in pets["train"]  # cats' images are capitalised
    assert (root / "oxford_pets" / "images" / "Abyssinian_1.jpg").is_file()
    food = split("food-101", "split_zhou_Food101.json")
    assert food["train"][0][1:] == [0, "apple_pie"] and (root / "food-101" / "images" / food["train"][0][0]).is_file()
    sun = split("sun397", "split_zhou_SUN397.json")
    row = next(r for r in sun["train"] if r[2] == "outdoor apartment_building")
    assert row[0].startswith("a/apartment_building/outdoor/sun_") and (root / "sun397" / "SUN397" / row[0]).is_file()
    ucf = split("ucf101", "split_zhou_UCF101.json")
    assert ucf["train"][0] == ["Apply_Eye_Makeup/v_ApplyEyeMakeup_g01_c01.jpg", 0, "Apply_Eye_Makeup"]
    assert (root / "ucf101" / "UCF-101-midframes" / ucf["train"][0][0]).is_file()
    assert len({r[2] for r in ucf["test"]}) == 101 and len({r[2] for r in sun["test"]}) == 397


def test_loaders_give_prompt_names_and_keep_the_raw_ones(real_suite):
    _, suite = real_suite
    tasks = dict(zip(suite.domains, suite.tasks))
    assert tasks["oxford_pets"].classnames[:3] == ["abyssinian", "american bulldog", "american pit bull terrier"]
    assert tasks["oxford_pets"].raw_classnames[1] == "american_bulldog"
    assert tasks["food-101"].classnames[0] == "apple pie"
    assert "outdoor apartment building" in tasks["sun397"].classnames
    assert tasks["ucf101"].classnames[0] == "Apply Eye Makeup"
    assert tasks["eurosat"].classnames[0] == "Annual Crop Land"  # CoOp's split holds the renamed name
    assert not any("_" in c for t in suite.tasks for c in t.classnames)
    assert suite.names == ("satellite land use", "food dishes", "pet breeds", "scene categories", "human actions")


def test_a_coop_split_with_folder_names_gets_coops_renames(tmp_path):
    root = tmp_path / "eurosat"
    (root / "2750" / "AnnualCrop").mkdir(parents=True)
    rows = [["AnnualCrop/AnnualCrop_1.jpg", 0, "AnnualCrop"], ["SeaLake/SeaLake_1.jpg", 1, "SeaLake"]]
    (root / "split_zhou_EuroSAT.json").write_text(json.dumps({"train": rows, "val": [], "test": []}))
    task = fewshot.load_coop_dataset(root, "eurosat", preprocess=None)
    assert task.raw_classnames == ["AnnualCrop", "SeaLake"]
    assert task.classnames == ["Annual Crop Land", "Sea or Lake"]


class Recorder:
    """A tokenizer that remembers every text it is given."""

    def __init__(self, tokenizer):
        self.tokenizer, self.texts = tokenizer, []

    def __call__(self, texts):
        self.texts.extend(texts)
        return self.tokenizer(texts)


def test_the_prompts_that_reach_the_tokenizer(real_suite, tiny_clip):
    """What the methods tokenise, for the real names: CoOp's templates with spaces."""
    clip, _, tokenizer = tiny_clip
    _, suite = real_suite
    tasks = dict(zip(suite.domains, suite.tasks))
    expected = {
        "oxford_pets": "a photo of a american bulldog, a type of pet.",
        "food-101": "a photo of apple pie, a type of food.",
        "sun397": "a photo of a outdoor apartment building.",
        "ucf101": "a photo of a person doing Apply Eye Makeup.",
        "eurosat": "a centered satellite photo of Annual Crop Land.",
    }
    for folder, prompt in expected.items():
        task = tasks[folder]
        rec = Recorder(tokenizer)
        baselines.ZeroShot(clip, rec, task.classnames[:10], task.template)
        assert prompt in rec.texts, (folder, rec.texts[:3])
        raw = Recorder(tokenizer)  # a raw name handed straight to a method is written the same way
        baselines.ZeroShot(clip, raw, task.raw_classnames[:10], task.template)
        assert raw.texts == rec.texts or folder == "eurosat"  # EuroSAT's split already holds the new names
    rec = Recorder(tokenizer)
    coop.CoOp(clip, rec, ["american_bulldog", "Apply_Eye_Makeup"], n_ctx=4)
    assert "X X X X american bulldog." in rec.texts and "X X X X Apply Eye Makeup." in rec.texts
    assert not any("_" in t for t in rec.texts)


def test_softcpt_writes_task_and_class_names_with_spaces(tiny_clip):
    clip, _, tokenizer = tiny_clip
    tasks = [{"name": "pet_breeds", "classnames": ["american_bulldog", "beagle"], "template": "a photo of a {}."},
             {"name": "food dishes", "classnames": ["apple_pie", "baklava"], "template": "a photo of {}."}]
    rec = Recorder(tokenizer)
    m = softcpt.SoftCPT(clip, rec, tasks, variant="CATA", n_ctx=4, task_n_ctx=4, class_n_ctx=4)
    assert "X X X X pet breeds." in rec.texts and "X X X X american bulldog." in rec.texts
    assert not any("_" in t for t in rec.texts)
    # the same prompts as from names written with spaces: the same token ids
    clean = [{**t, "name": names.prompt_name(t["name"]), "classnames": names.prompt_names(t["classnames"])}
             for t in tasks]
    other = softcpt.SoftCPT(clip, tokenizer, clean, variant="CATA", n_ctx=4, task_n_ctx=4, class_n_ctx=4)
    assert torch.equal(m.task_prompts.ids, other.task_prompts.ids)
    assert torch.equal(torch.cat([c.ids for c in m.coops]), torch.cat([c.ids for c in other.coops]))
    rec = Recorder(tokenizer)
    softcpt.MultiTaskZeroShot(clip, rec, tasks)
    assert rec.texts == ["a photo of a american bulldog.", "a photo of a beagle.", "a photo of apple pie.",
                         "a photo of baklava."]
    with pytest.raises(ValueError, match="task names must differ"):
        softcpt.SoftCPT(clip, tokenizer, [tasks[0], {**tasks[1], "name": "pet breeds"}])
