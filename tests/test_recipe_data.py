"""The recipe files (clipadapt/recipes/*.toml) and their one reader, clipadapt.training.recipes:
a bad file is refused by file and key, every value of every row carries its source or
reason, and the rows hold the values the chapters ran before the recipes became data.

``python tests/test_recipe_data.py OUT.json`` writes every row, official row and card as
JSON: compare two such dumps to check that a change of the files or the reader moved only
what it meant to (how the move to data files was checked).
"""

import dataclasses
import json
import math
import sys

import pytest

from clipadapt import profiles
from clipadapt.methods import registry
from clipadapt.training import recipes

GOOD = '''
method = "CoOp"
backbone = "ViT-B/32"

[official]
source = "one source for every key"

[official.lr]
lr = 0.002

[official.options.n_ctx]
value = 16

[tiny.lr]
lr = 2e-2

[colab.budget]
epochs = { budget = "fewshot_epochs" }
reason = "{fewshot_epochs} epochs: {T4}"

[paper]
'''


def write(tmp_path, text, name="coop.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_good_small_file_reads(tmp_path):
    f = recipes.read(write(tmp_path, GOOD))
    assert f.official().lr == 0.002 and f.official().sources["grad_clip"] == "one source for every key"
    colab = f.row(None, profiles.get("colab"))
    assert colab.epochs == 50 and colab.sources["budget"] == "ours: 50 epochs: one T4 session (profiles.colab)"
    assert colab.options == {"n_ctx": 16} and f.row(None, profiles.get("colab-smoke")).epochs == 1


@pytest.mark.parametrize("change,key,says", [
    (("[colab.budget]", "[colab.budgets]"), "colab.budgets", "unknown key"),  # a key no recipe has
    (("lr = 0.002", "lr = 0.002\nlearning_rate = 1"), "official.lr.learning_rate", "unknown key"),
    (('reason = "{fewshot_epochs} epochs: {T4}"', ""), "colab.budget", "a change without a reason"),
    (("lr = 2e-2", 'lr = "2e-2"'), "tiny.lr.lr", "expected float | None, got '2e-2'"),  # the wrong type
    (("epochs = { budget", 'steps = 1.5\nepochs = { budget'), "colab.budget.steps", "expected int | None"),
    (("[paper]", "[paper]\n[colab2]"), "colab2", "unknown key"),
    (('method = "CoOp"', 'method = "CoOp"\nvariants = ["x"]'), "x", "missing"),
    (('{ budget = "fewshot_epochs" }', '{ budget = "few_epochs" }'), "colab.budget.epochs", "no budget"),
    (('{ budget = "fewshot_epochs" }', '{ profile = "frames" }'), "colab.budget.epochs", "no field of profiles"),
    (("{T4}", "{T5}"), "colab.budget.reason", "{T5} is neither a text"),
    (('source = "one source for every key"\n', ""), "official.optimizer", "an official value without a source"),
    (("lr = 0.002", "none = [\"batch_size\"]"), "official.lr.none", "fields that may be None"),
])
def test_a_bad_file_is_refused_by_file_and_key(tmp_path, change, key, says):
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(recipes.RecipeFileError) as err:
        recipes.read(path)
    assert str(err.value).startswith(f"{path}: {key}: ") and says in str(err.value), str(err.value)


def test_a_setting_of_the_wrong_type_is_refused_when_its_row_is_built(tmp_path):
    f = recipes.read(write(tmp_path, GOOD + '\n[tiny.options.n_ctx]\nvalue = "sixteen"\n'))
    with pytest.raises(recipes.RecipeFileError, match=r"coop\.toml: tiny\.options\.n_ctx: expected int, as the "
                                                      r"official 16, got 'sixteen'"):
        f.row(None, profiles.get("tiny"))


def test_unknown_methods_variants_and_misnamed_files_are_refused(tmp_path):
    write(tmp_path, GOOD.replace('"CoOp"', '"CoOp-XL"'), "coop-xl.toml")
    (tmp_path / "_shared.toml").write_text((recipes.FOLDER / "_shared.toml").read_text())
    with pytest.raises(recipes.RecipeFileError, match=r"coop-xl\.toml: method: unknown method 'CoOp-XL'"):
        recipes.files(tmp_path)
    with pytest.raises(recipes.RecipeFileError, match=r"vop\.toml: method: 'CoOp' belongs in coop\.toml"):
        recipes.read(write(tmp_path, GOOD, "vop.toml"))
    (tmp_path / "coop-xl.toml").unlink()
    variant = GOOD.replace('backbone = "ViT-B/32"', 'backbone = "ViT-B/32"\nvariants = ["wide"]')
    variant = variant.replace("[official", "[wide.official").replace("[tiny", "[wide.tiny")
    write(tmp_path, variant.replace("[colab", "[wide.colab").replace("[paper", "[wide.paper"))
    with pytest.raises(recipes.RecipeFileError, match=r"coop\.toml: wide: unknown variant of 'CoOp'"):
        recipes.files(tmp_path)
    with pytest.raises(recipes.RecipeFileError, match=r"nope\.toml: \(file\): not readable TOML"):
        recipes.read(write(tmp_path, "method = ", "nope.toml"))


def test_a_rule_reading_an_unset_budget_names_it(tmp_path):
    f = recipes.read(write(tmp_path, GOOD.replace("fewshot_epochs", "multitask_steps")))
    # a ViT profile (colab's rows) on tiny's budgets, which leave chapter 7's steps unset
    odd = profiles.get("colab").replace(name="colab-ish", based_on="tiny")
    with pytest.raises(recipes.RecipeFileError, match=r"colab\.budget\.epochs: .*multitask_steps.*'colab-ish'"):
        f.row(None, odd)


def every_row():
    for name in profiles.PROFILES:
        for m in registry.methods():
            for v in registry.get(m).variants or (None,):
                yield name, m, v, recipes.get(m, profiles.get(name), v)


def test_every_field_of_every_row_has_a_source_or_a_reason():
    for name, m, v, r in every_row():
        for k in r.source_keys():
            assert r.sources.get(k, "").strip(), f"{m} ({v}) under {name}: {k} has no source or reason"
        assert set(r.sources) == set(r.source_keys()), f"{m} ({v}) under {name}: sources of keys it lacks"
        off = recipes.official(m, v)
        assert all(off.sources[k].strip() for k in off.source_keys()) and set(off.sources) == set(off.source_keys())


def test_pinned_values():
    assert recipes.get("CoOp", profiles.get("tiny")).lr == 2e-2
    assert recipes.get("mean pooling", profiles.get("colab"), "full").options["checkpointing"] is True
    # VoP trains the baselines' steps (video_steps) under every profile
    assert recipes.get("VoP", profiles.get("tiny")).steps == 60 and recipes.get("VoP", profiles.get("colab")).steps == 150
    assert recipes.get("VoP", profiles.get("colab-smoke")).steps == 1 and recipes.get("VoP", profiles.get("colab-smoke")).batch_size == 2
    smoke = recipes.get("CoOp", profiles.get("colab-smoke"))
    assert (smoke.epochs, smoke.min_steps, recipes.get("SoftCPT", profiles.get("colab-smoke")).steps) == (1, 2, 1)
    # SCPNet's moving average keeps 0.82 of itself per epoch: 400 pictures at 32, 2000 at 128
    assert recipes.get("SCPNet", profiles.get("tiny")).options["ema_decay"] == math.exp(math.log(0.82) / 13)
    assert recipes.get("SCPNet", profiles.get("colab")).options["ema_decay"] == math.exp(math.log(0.82) / 16)
    assert recipes.get("SCPNet", profiles.get("paper")).options["ema_decay"] == math.exp(math.log(0.82) / 79)
    assert recipes.get("TempMe", profiles.get("tiny"), "lora").options["schedule"] == "tiny-clip"
    lora = recipes.get("LoRA", profiles.get("colab"))
    assert lora.steps is None and lora.optimizer_kwargs["betas"] == (0.9, 0.999)
    assert recipes.official("VoP").lr is None and recipes.official("CoOp").options["init"] is None
    # a budget changed for one run (a benchmark's own epochs) gives the rows of its value
    assert recipes.get("VoP", profiles.get("colab"), budgets={"video_steps": 7}).steps == 7


def test_the_card_comes_from_the_files():
    text = recipes.card("LoRA", profiles.get("colab"))
    assert "official ViT-B/16 (CLIP-LoRA run_utils.py:26); this run ViT-B/32" in text
    assert "note: CLIP-LoRA puts dropout 0.25 before each LoRA module" in text
    assert "options.rank: ours: rank 8, TempMe's (chapter 5)" in text


# -- the paper rows that follow the official code value for value (issue 28), each against the
# official file and line it cites
def test_lora_paper_row_is_clip_loras():
    from clipadapt.core import models
    from clipadapt.methods import baselines

    r = recipes.get("LoRA", profiles.get("paper"))
    # rank 2 and 500 iterations x 16 shots (MaxZanella/CLIP-LoRA run_utils.py:35, lora.py:73)
    assert (r.options["rank"], r.steps, r.epochs, r.min_steps) == (2, 500 * 16, 0, 0)
    assert "run_utils.py:35 (r = 2" in r.sources["options.rank"] and "lora.py:73" in r.sources["budget"]
    # a run of k shots trains 500 x k steps (the driver takes the row at its task's shots)
    assert [r.at_shots(k).steps for k in (1, 2, 4, 8, 16)] == [500, 1000, 2000, 4000, 8000]
    # its scale alpha / sqrt(r) = 1 / sqrt(2) at alpha 1 (loralib/layers.py:42); ours alpha / r
    assert r.options["alpha"] == math.sqrt(2) and "loralib/layers.py:42" in r.sources["options.alpha"]
    clip = baselines.set_trainable(models.create(profiles.get("tiny").clip_model), "lora", rank=2, alpha=r.options["alpha"])
    scales = {m.scaling for m in clip.modules() if m.__class__.__name__ == "LoRA"}
    assert scales and all(math.isclose(s, 1 / math.sqrt(2)) for s in scales)
    # tiny and colab keep rank 8 at scale 1 (no alpha); dropout is declared, not run
    assert "alpha" not in recipes.get("LoRA", profiles.get("colab")).options
    assert "dropout 0.25 before each LoRA module" in recipes.card("LoRA", profiles.get("paper"))


def test_coop_paper_epochs_follow_the_shots():
    # 1 shot 50 epochs, 2-4 shots 100, 8-16 shots 200 (KaiyangZhou/CoOp COOP.md:18-22)
    r = recipes.get("CoOp", profiles.get("paper"))
    assert {k: (r.at_shots(k).epochs, r.at_shots(k).min_steps, r.at_shots(k).steps) for k in (1, 2, 3, 4, 8, 16)} == {
        1: (50, 0, None), 2: (100, 0, None), 3: (100, 0, None), 4: (100, 0, None), 8: (200, 0, None),
        16: (200, 0, None)}
    assert "COOP.md:18-22" in r.sources["budget"] and "vit_b32_ep50.yaml:18" in r.sources["budget"]
    assert not r.sources["budget"].startswith("ours")
    with pytest.raises(ValueError, match="no shot count"):
        r.at_shots(None)
    # tiny and colab keep one budget at every shot count
    for name in ("tiny", "colab", "colab-smoke"):
        row = recipes.get("CoOp", profiles.get(name))
        assert not row.by_shots and row.at_shots(1) == row


def test_a_bad_budget_by_shots_is_refused(tmp_path):
    bad = GOOD.replace('reason = "{fewshot_epochs} epochs: {T4}"',
                       'by_shots = { one = { epochs = 1 } }\nreason = "{fewshot_epochs} epochs: {T4}"')
    with pytest.raises(recipes.RecipeFileError, match=r"colab\.budget\.by_shots: expected a table of shot counts"):
        recipes.read(write(tmp_path, bad))


def test_vpt_paper_row_is_base_prompt_yamls():
    r = recipes.get("VPT-deep", profiles.get("paper"))
    # 100 epochs at batch 128 (KMnP/vpt configs/base-prompt.yaml:19,25)
    assert (r.epochs, r.min_steps, r.batch_size, r.steps) == (100, 0, 128, None)
    assert "base-prompt.yaml:19" in r.sources["budget"] and "base-prompt.yaml:25" in r.sources["batch_size"]
    # every parameter decays but the last layer's bias (src/solver/optimizer.py:60-62);
    # WEIGHT_DECAY_BIAS is never read
    assert r.decay_rule == "all" and "src/solver/optimizer.py:60-62" in r.sources["optimizer"]
    assert "WEIGHT_DECAY_BIAS" not in r.sources["optimizer"]


def test_vop_paper_optimiser_is_xpools():
    r = recipes.get("VoP", profiles.get("paper"))
    # X-Pool decays every parameter (train.py:54-58), its AdamW's eps is 1e-6 (optimization.py:115)
    assert (r.decay_rule, dict(r.optimizer_kwargs)) == ("all", {"eps": 1e-6})
    assert "xpool train.py:54-58" in r.sources["optimizer"] and "optimization.py:115" in r.sources["optimizer"]
    assert "unsourced" in recipes.official("VoP").sources["optimizer"]


def test_citations():
    # 1 shot 50 epochs, 2-4 shots 100, 8-16 shots 200: COOP.md's lines 18-22
    assert "COOP.md:18-22" in recipes.official("CoOp").sources["budget"]
    # the official linear probe's features come from RN50 (lpclip/feat_extractor.sh:16)
    assert recipes.files()["linear probe"].backbone.startswith("RN50 (KaiyangZhou/CoOp lpclip/feat_extractor.sh:16")


def test_the_colab_card_names_the_data_it_cuts():
    assert "data: 4,800 of MSR-VTT 9k's 180,000 training pairs" in recipes.card("VoP", profiles.get("colab"))
    assert "4 of General-10's 10 datasets" in recipes.card("SoftCPT", profiles.get("colab"))
    assert "200 test pictures per class" in recipes.card("CoOp", profiles.get("colab"))
    for name in ("tiny", "paper"):
        assert "  data: " not in recipes.card("VoP", profiles.get(name))
    # the card reads the counts where experiments.settings reads them (colab-smoke over colab)
    from clipadapt.experiments import settings

    for name in ("colab", "colab-smoke"):
        s, p = settings.of(profiles.get(name)), profiles.get(name)
        assert f"data: {s.videos.train_pairs:,} of MSR-VTT" in recipes.card("VoP", p)
        assert f"{s.fewshot.test_per_class} test pictures per class" in recipes.card("CoOp", p)
        assert f"{s.scenes.test:,} test pictures of the scene" in recipes.card("SCPNet", p, "full")


def dump() -> dict:
    """Every row (under every profile), official row and card, as plain JSON."""
    def plain(r):
        return json.loads(json.dumps(dataclasses.asdict(r), default=lambda o: dict(o) if hasattr(o, "items")
                                     else list(o)))

    out = {"get": {}, "card": {}, "official": {}}
    for name, m, v, r in every_row():
        out["get"][f"{m}|{v}|{name}"] = plain(r)
        out["card"][f"{m}|{v}|{name}"] = recipes.card(m, profiles.get(name), v)
        out["official"][f"{m}|{v}"] = plain(recipes.official(m, v))
    return out


if __name__ == "__main__":
    json.dump(dump(), open(sys.argv[1], "w"), indent=1, sort_keys=True)
