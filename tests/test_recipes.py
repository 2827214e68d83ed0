"""The recipes as data: every colab/paper value with its source, every deviation from the
official recipe with its reason, the tiny rows unchanged; each optimiser and schedule they
name builds, steps and resumes exactly; CoOp's learning-rate curve is Dassl's."""

import math

import pytest
import torch
from torch import nn

from clipadapt import profiles, tasks
from clipadapt.data import augment, fewshot
from clipadapt.methods import registry
from clipadapt.training import driver, loop, recipes, runstate
from clipadapt.training.recipe import KEYS, show

REAL = ("colab", "paper", "colab-smoke")


def rows(profile):
    for m in registry.methods():
        spec = registry.get(m)
        for v in spec.variants or (None,):
            yield m, v, recipes.get(m, profiles.get(profile), v)


@pytest.mark.parametrize("profile", REAL)
def test_every_colab_and_paper_value_has_a_source(profile):
    for m, v, r in rows(profile):
        missing = [k for k in r.source_keys() if not r.sources.get(k, "").strip()]
        assert not missing, f"{m} ({v}) under {profile}: no source for {missing}"


def test_every_official_value_has_a_source_and_every_method_a_row():
    for m in registry.methods():
        for v in registry.get(m).variants or (None,):
            r = recipes.official(m, v)
            missing = [k for k in r.source_keys() if not r.sources.get(k, "").strip()]
            assert not missing, f"official {m} ({v}): no source for {missing}"
    assert set(recipes.methods()) == set(registry.methods())  # one recipe file per method


@pytest.mark.parametrize("profile", ("tiny", *REAL))
def test_every_deviation_from_the_official_recipe_names_its_reason(profile):
    for m, v, r in rows(profile):
        off = recipes.official(m, v)
        for k in r.source_keys():
            if show(r, k) != show(off, k):
                why = r.sources.get(k, "")
                assert why and why != off.sources.get(k), f"{m} ({v}) under {profile}: {k} changes without a reason"
                if profile != "tiny":
                    assert why.startswith("ours: "), why


def test_a_row_without_a_source_fails_the_check():
    bare = recipes.get("CoOp", profiles.get("colab")).replace(sources={})
    assert [k for k in bare.source_keys() if not bare.sources.get(k)] == [*KEYS, "options.n_ctx", "options.init"]


def test_the_tiny_rows_keep_their_values():
    """The chapters' tiny numbers and tests/test_golden.py stand on these."""
    t = {m: recipes.get(m, profiles.get("tiny")) for m in ("CoOp", "LoRA", "linear probe", "SCPNet", "SoftCPT", "LP-CLIP")}
    assert (t["CoOp"].lr, t["LoRA"].lr, t["linear probe"].lr) == (2e-2, 2e-3, 1e-2)
    assert t["CoOp"].options == {"n_ctx": 16, "init": "a photo of a"} and t["CoOp"].epochs == 40
    assert (t["SCPNet"].lr, t["SCPNet"].batch_size, t["SCPNet"].steps) == (1e-3, 32, 100)
    assert (t["SoftCPT"].epochs, t["SoftCPT"].min_steps, t["SoftCPT"].lr, t["SoftCPT"].warmup) == (10, 80, 2e-2, 8)
    assert t["LP-CLIP"].lr == 0.3 and (t["SCPNet"].options["topk"], t["SCPNet"].options["reweight_p"]) == (5, 0.5)
    # VoP: the baselines' 60 steps since chapter 4 runs its seven variants on three seeds (issue 27)
    vop = recipes.get("VoP", profiles.get("tiny"))
    assert recipes.get("TempMe", profiles.get("tiny"), "lora").lr == 2e-3 and (vop.steps, vop.warmup) == (60, 6)
    for _, _, r in rows("tiny"):
        assert (r.optimizer, r.schedule, r.augment, r.cache_features) == ("adamw", "warmup-cosine", "none", True)


def test_the_official_recipes_hold_the_official_values():
    coop = recipes.get("CoOp", profiles.get("paper"))
    assert (coop.optimizer, dict(coop.optimizer_kwargs), coop.lr, coop.weight_decay, coop.batch_size) == (
        "sgd", {"momentum": 0.9}, 0.002, 5e-4, 32)
    assert (coop.schedule, coop.schedule_unit, coop.warmup_kind, coop.warmup, coop.warmup_lr) == (
        "cosine", "epoch", "constant", 1, 1e-5)
    assert coop.epochs == 200 and coop.augment == "crop-flip" and not coop.cache_features
    scp = recipes.get("SCPNet", profiles.get("paper"))
    assert (scp.optimizer, scp.schedule, scp.lr, dict(scp.group_lrs), scp.pct_start) == (
        "adam", "onecycle", 3e-5, {"graph.": 1e-5}, 0.2)
    assert scp.schedule_length == pytest.approx(80 / 60) and scp.options["loss"] == "splc"
    soft = recipes.get("SoftCPT", profiles.get("paper"))
    assert (soft.optimizer, soft.lr, soft.epochs, soft.cache_features) == ("sgd", 0.002, 50, False)
    assert recipes.get("LP-CLIP", profiles.get("paper")).cache_features  # the official probe trains on fixed features
    tm = recipes.get("TempMe", profiles.get("paper"), "lora")
    assert (tm.lr, tm.weight_decay, tm.warmup_fraction, tm.grad_clip, tm.batch_size, tm.epochs) == (
        6e-4, 0.2, 0.1, 1.0, 128, 5)


def test_the_card_shows_official_and_ours_with_reasons():
    text = recipes.card("CoOp", profiles.get("colab"))
    assert "sgd(momentum=0.9)" in text and "constant, 1 epoch at 1e-05" in text
    assert "budget: ours: 50 epochs" in text and "vit_b32.yaml:17" in text
    assert all(len(line) <= 80 for line in text.splitlines())
    for m, v, _ in rows("tiny"):
        card = recipes.card(m, profiles.get("tiny"), v)
        assert card.startswith("Recipe card: ") and all(len(line) <= 80 for line in card.splitlines())
    scp = recipes.card("SCPNet", profiles.get("paper"))
    assert "graph. 1e-05" in scp and "onecycle" in scp


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Linear(4, 4)
        self.graph = nn.Linear(4, 1)  # SCPNet's graph has a learning rate of its own

    def forward(self, x):
        return self.graph(torch.tanh(self.body(x)))


def toy_batches():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    return [(x[i:i + 16], x[i:i + 16].sum(1, keepdim=True)) for i in range(0, 64, 16)]


def trains(profile):
    # the official probe (lbfgs) is fitted in closed form, in no steps (tests/test_probe_search.py)
    return [(m, v, r.replace(sources={})) for m, v, r in rows(profile) if r.steps != 0 and r.optimizer != "lbfgs"]


def schedule_kinds():
    seen = {}
    for profile in ("tiny", "colab", "paper"):
        for m, v, r in trains(profile):
            key = (r.optimizer, r.schedule, r.schedule_unit, r.warmup_kind, r.decay_rule, bool(r.group_lrs))
            seen.setdefault(key, (f"{m}/{v}/{profile}", r))
    return sorted(seen.values(), key=lambda x: x[0])


@pytest.mark.parametrize("name,recipe", schedule_kinds(), ids=lambda x: x if isinstance(x, str) else "")
def test_each_optimizer_and_schedule_builds_steps_and_resumes_exactly(name, recipe, tmp_path):
    """Each (optimiser, schedule, unit, warm-up, decay rule, groups) the tables use: built
    from torch.optim by the loop, it trains, and a run saved after 5 steps and resumed in a
    fresh trainer ends bit for bit as the straight run."""
    recipe = recipe.replace(lr=recipe.lr or 1e-2, steps=None, epochs=3, min_steps=0, batch_size=16,
                            full_batch=False, **({"group_lrs": {"graph.": 5e-3}} if recipe.group_lrs else {}))
    batches = toy_batches()
    steps, per_epoch = recipe.total_steps(64), recipe.steps_per_epoch(64)
    assert (steps, per_epoch) == (12, 4)

    def run(stop=None, state=None):
        model = Toy()
        trainer = loop.Trainer(model, lambda b: ((model(b[0]) - b[1]) ** 2).mean(), recipe, steps,
                               steps_per_epoch=per_epoch, amp=False)
        if state is not None:
            runstate.restore(model, trainer, *state)
        lrs = []
        for step in range(trainer.step, stop or steps):
            lrs.append([g["lr"] for g in trainer.optimizer.param_groups])
            trainer.train_step(batches[step % 4])
        return model, trainer, lrs

    straight, _, lrs = run()
    assert all(math.isfinite(lr) and lr >= 0 for step in lrs for lr in step)
    assert not torch.equal(straight.body.weight, Toy().body.weight)
    model, trainer, _ = run(stop=5)
    tensors, meta = runstate.capture(model, trainer, {"run": name}, {})
    runstate.write(tmp_path / runstate.PATTERN.format(5), tensors, meta)
    _, tensors, meta, _ = runstate.latest(tmp_path)
    resumed, trainer, later = run(state=(tensors, meta))
    assert later == lrs[5:]
    assert all(torch.equal(a, b) for a, b in zip(resumed.state_dict().values(), straight.state_dict().values()))


def test_sgd_with_constant_warmup_and_cosine_is_coops_learning_rate_curve():
    """Dassl (CoOp, SoftCPT): epoch 0 at the constant 1e-5; from epoch 1 on, a cosine over
    MAX_EPOCH epochs counted from the end of the warm-up (lr_scheduler.py:130-143), the rate
    changing only between epochs (trainers/coop.py:281-282)."""
    recipe = recipes.get("CoOp", profiles.get("paper")).replace(epochs=4, min_steps=0, batch_size=16)
    model = Toy()
    trainer = loop.Trainer(model, lambda b: ((model(b[0]) - b[1]) ** 2).mean(), recipe, recipe.total_steps(64),
                           steps_per_epoch=recipe.steps_per_epoch(64), amp=False)
    assert isinstance(trainer.optimizer, torch.optim.SGD) and trainer.optimizer.defaults["momentum"] == 0.9
    seen = []
    for step in range(16):
        seen.append(trainer.lr)
        trainer.train_step(toy_batches()[step % 4])
    by_hand = [1e-5 if e == 0 else 0.002 * 0.5 * (1 + math.cos(math.pi * (e - 1) / 4))
               for e in range(4) for _ in range(4)]
    assert seen == pytest.approx(by_hand, rel=1e-9, abs=1e-12)
    assert [g["weight_decay"] for g in trainer.optimizer.param_groups] == [5e-4]  # Dassl decays everything


def test_scpnet_groups_and_onecycle_follow_the_official_code():
    recipe = recipes.get("SCPNet", profiles.get("paper")).replace(steps=30)
    trainer = loop.Trainer(Toy(), None, recipe, 30, steps_per_epoch=recipe.steps_per_epoch(640), amp=False)
    groups = trainer.optimizer.param_groups
    assert isinstance(trainer.optimizer, torch.optim.Adam)
    # no decay on biases and 1-D parameters; the graph at gcn_lr (utils.py:309-341, train.py:80)
    assert [(g["max_lr"], g["weight_decay"], len(g["params"])) for g in groups] == [
        (3e-5, 1e-4, 1), (3e-5, 0.0, 1), (1e-5, 1e-4, 1), (1e-5, 0.0, 1)]
    assert trainer.scheduler.total_steps == 40  # scheduled for 80 epochs, run for 60
    assert trainer.lr == pytest.approx(3e-5 / 25)


def test_augmentations_draw_from_the_examples_own_stream():
    x = torch.randn(2, 3, 32, 32)
    g = lambda i: torch.Generator().manual_seed(i)  # noqa: E731
    for name in ("crop-flip", "resize-crop-flip", "crop-flip-video", "timm:rand-m7-n4-mstd0.5-inc1"):
        a, b = augment.batch(name, x, [g(1), g(2)]), augment.batch(name, x, [g(1), g(2)])
        assert a.shape == x.shape and torch.equal(a, b)
        assert torch.equal(augment.batch(name, x[1:], [g(2)])[0], a[1])  # a shard draws what the batch drew
    video = x[:1].repeat(4, 1, 1, 1)  # four equal frames stay equal: one draw per video
    out = augment.one("crop-flip-video", video, g(3))
    assert all(torch.equal(out[0], f) for f in out) and not torch.equal(out, video)
    assert torch.equal(augment.batch("none", x, [g(0), g(0)]), x)
    with pytest.raises(ValueError, match="unknown augmentation 'blur'"):
        augment.one("blur", x[0], g(0))


def test_under_a_real_recipe_coop_sees_fresh_crops_every_step(tiny_clip):
    """CoOp's official recipe draws a fresh crop of each picture at every step: the same
    step gives the same batch, and a shard is a slice of it; a recipe that caches (the
    linear probe's) gives the stored features whatever the step."""
    model, _, tok = tiny_clip
    task = fewshot.SYNTHETIC_TASKS["outlines"]
    t = tasks.ClassificationTask(task, 2, task.test_set(4))
    recipe = recipes.get("CoOp", profiles.get("colab")).replace(options={"n_ctx": 4, "init": None}, batch_size=4)
    run = driver.prepare("CoOp", model, tok, t, recipe=recipe)
    idx = torch.tensor([0, 3, 5, 7])
    a, b, c = run.loader.load(idx, 1), run.loader.load(idx, 1), run.loader.load(idx, 2)
    assert a[0].shape == (4, 3, 64, 64) and torch.equal(a[0], b[0]) and torch.equal(a[1], c[1])
    assert not torch.allclose(a[0], c[0]) and not torch.allclose(a[0], t.x_train[idx])
    assert torch.equal(run.loader.load(idx[2:], 1)[0], a[0][2:])
    probe = recipes.get("linear probe", profiles.get("colab"))
    fresh = driver.prepare("linear probe", model, tok, t, recipe=probe.replace(cache_features=False, augment="crop-flip",
                                                                            batch_size=4))
    feats = fresh.loader.load(idx, 1)[0]  # a frozen encoder: fresh crops, encoded in the batch
    assert feats.shape == (4, model.visual.output_dim) and not torch.allclose(feats, fresh.loader.load(idx, 2)[0])
    assert torch.allclose(fresh.loader.load(idx[2:], 1)[0], feats[2:], atol=1e-5)
    cached = driver.prepare("linear probe", model, tok, t, recipe=probe)
    assert torch.equal(cached.loader.load(idx, 1)[0], cached.loader.load(idx, 2)[0])


def test_a_non_adamw_recipe_resumes_exactly_through_driver_fit(tiny_clip, tmp_path):
    """CoOp's official recipe (SGD, constant warm-up, cosine per epoch, fresh crops) through
    driver.fit with an output folder: stopped after step 5 and resumed, it ends as the
    straight run, weights and log alike."""
    model, _, tok = tiny_clip
    task = fewshot.SYNTHETIC_TASKS["outlines"]
    t = tasks.ClassificationTask(task, 2, task.test_set(4))
    recipe = recipes.get("CoOp", profiles.get("colab")).replace(options={"n_ctx": 4, "init": None}, epochs=4, min_steps=0,
                                                   batch_size=4)  # 10 pictures: 3 steps per epoch, 12 steps

    def fresh():
        return driver.prepare("CoOp", model, tok, t, recipe=recipe, seed=3)

    straight = fresh()
    assert straight.steps == 12 and isinstance(straight.trainer.optimizer, torch.optim.SGD)
    driver.fit(straight, tmp_path / "a", eval_every=4, save_every=2, say=lambda *a: None)

    class Stop(Exception):
        pass

    def kill(event, step):
        if event == "step" and step == 5:
            raise Stop

    with pytest.raises(Stop):
        driver.fit(fresh(), tmp_path / "b", eval_every=4, save_every=2, say=lambda *a: None, kill_point=kill)
    resumed = fresh()
    driver.fit(resumed, tmp_path / "b", resume=True, eval_every=4, save_every=2, say=lambda *a: None)
    assert resumed.trainer.lr == straight.trainer.lr
    a = {n: p for n, p in straight.module.named_parameters() if p.requires_grad}
    b = {n: p for n, p in resumed.module.named_parameters() if p.requires_grad}
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert (tmp_path / "a" / "metrics.jsonl").read_text() == (tmp_path / "b" / "metrics.jsonl").read_text()


def test_profiles_build_their_rows():
    for name in profiles.PROFILES:
        for m, v, r in rows(name):
            assert r.lr is not None or r.steps == 0 or r.optimizer == "lbfgs", \
                f"{m} ({v}) under {name} trains without a learning rate"


def test_videos_get_one_fresh_augmentation_per_step(tiny_clip, tmp_path):
    """The retrieval loader under an official recipe: each video augmented once for all its
    frames, anew at every step, the same at the same step."""
    from clipadapt.data import video, worlds

    vw = worlds.VideoWorld(64, frames=4, p_appear=0.0)
    records = worlds.write_videos(vw, 4, worlds.generator(0, "augment test"), tmp_path)
    ds = video.VideoTextDataset([(tmp_path / r["video"], r["caption"]) for r in records], frames=4, image_size=64)
    task = tasks.RetrievalTask(ds, ds, tiny_clip[2])
    idx = torch.tensor([0, 1, 2, 3])
    recipe = recipes.get("VoP", profiles.get("tiny")).replace(steps=2, batch_size=4)
    plain = driver.prepare("VoP", tiny_clip[0], tiny_clip[2], task, recipe=recipe).loader.load(idx, 0)[0]
    for name in ("crop-flip-video", "timm:rand-m7-n4-mstd0.5-inc1"):
        run = driver.prepare("VoP", tiny_clip[0], tiny_clip[2], task, recipe=recipe.replace(augment=name))
        a, b, c = run.loader.load(idx, 0)[0], run.loader.load(idx, 0)[0], run.loader.load(idx, 1)[0]
        assert a.shape == plain.shape == (4, 4, 3, 64, 64) and torch.equal(a, b) and not torch.allclose(a, c)
        assert not torch.allclose(a, plain)  # the same frames, augmented


@pytest.mark.parametrize("profile", ["colab", "paper"])
def test_scpnet_and_softcpt_train_on_fresh_views_under_the_official_recipes(tiny_clip, profile):
    """SCPNet (Adam, OneCycle, the graph's own rate; colab freezes the encoder) and SoftCPT
    (SGD, constant warm-up, cosine per epoch) with their colab/paper recipes, on the tiny
    CLIP and small worlds: the frozen encoder sees freshly augmented pictures every step."""
    from clipadapt.data import multilabel as ml
    from clipadapt.data import multitask as mt

    clip, _, tok = tiny_clip
    train, test = ml.scene_sets((24, 24))
    task = tasks.MultiLabelTask(train, ml.observe(train.targets, 0.3, seed=0), test)
    recipe = recipes.get("SCPNet", profiles.get(profile)).replace(steps=3, batch_size=8, options={
        **recipes.get("SCPNet", profiles.get(profile)).options, "topk": 20})
    run = driver.prepare("SCPNet", clip, tok, task, recipe=recipe)
    assert isinstance(run.trainer.scheduler, torch.optim.lr_scheduler.OneCycleLR)
    a = run.batch(0)
    if run.module.frozen_image_encoder:
        assert a["features"] and a["views"][0].shape == (8, clip.visual.output_dim) and not task._stored
    driver.fit(run)
    assert 0 <= driver.evaluate(run)["mAP"] <= 100
    suite = mt.world_suite(1, classes=2)
    multi = tasks.MultiTaskClassificationTask(suite, 2, test_per_class=4)
    soft = recipes.get("SoftCPT", profiles.get(profile)).replace(steps=3, options={"n_ctx": 4, "task_n_ctx": 4, "class_n_ctx": 4})
    run = driver.prepare("SoftCPT", clip, tok, multi, recipe=soft)
    x0, x1 = run.loader.load(torch.arange(4), 0)[0], run.loader.load(torch.arange(4), 1)[0]
    assert not torch.allclose(x0, x1) and not any(k[0] == "features" for k in multi.cache)
    history = driver.fit(run)
    assert len(history.loss) == 3 and all(math.isfinite(v) for v in history.loss)
