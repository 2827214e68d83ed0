"""The method protocol: registry, recipes, tasks, the runner and the shared pieces."""

import pytest
import torch
from torch import nn

from clipadapt import profiles, tasks
from clipadapt.core import features, seeds
from clipadapt.data import fewshot
from clipadapt.methods import baselines, registry
from clipadapt.training import driver, recipes


@pytest.mark.parametrize("profile", sorted(profiles.PROFILES))
def test_every_method_has_a_recipe_under_every_profile(profile):
    for name in registry.methods():
        spec = registry.get(name)
        for variant in spec.variants or (None,):
            r = recipes.get(name, profiles.get(profile), variant)
            trains = not (name in ("zero-shot", "ZS-CLIP") or (name == "mean pooling" and variant == "none"))
            fitted = r.optimizer == "lbfgs"  # the official probe: fitted in closed form, no steps, no rate
            assert (r.total_steps(100) > 0 or fitted) == trains and ((r.lr or 0) > 0 or fitted) == trains


def test_recipe_budgets():
    r = recipes.Recipe(lr=1.0, epochs=3, min_steps=10, batch_size=32)
    assert r.total_steps(20) == 10 and r.total_steps(100) == 12  # 3 epochs of ceil(100 / 32) batches
    assert recipes.Recipe(steps=7).total_steps(10_000) == 7
    assert r.warmup_steps(12) == 1 and r.warmup_steps(1000) == 10
    with pytest.raises(ValueError, match="no recipe for method 'no such method'"):
        recipes.get("no such method", profiles.get("tiny"))
    assert recipes.get("VoP", profiles.get("tiny")).options["ks"] == 1 and recipes.get("VoP", profiles.get("colab")).options["ks"] == 8


def test_a_run_repeats_and_reports(tiny_clip):
    clip, _, tok = tiny_clip
    task = fewshot.SYNTHETIC_TASKS["outlines"]
    t = tasks.ClassificationTask(task, 2, task.test_set(10))
    recipe = recipes.get("VPT-deep", profiles.get("tiny")).replace(min_steps=5, epochs=1)
    a = driver.run("VPT-deep", clip, tok, t, recipe=recipe, keep=True)
    b = driver.run("VPT-deep", clip, tok, t, recipe=recipe)
    assert a.metrics == b.metrics and a.history.loss == b.history.loss
    assert a.recipe is recipe and a.steps == 5 and a.trainable == 3 * 8 * 128
    assert a.module is not None and b.module is None and a.seconds >= a.train_seconds > 0
    c = driver.run("VPT-deep", clip, tok, t, recipe=recipe, seed=1)
    assert c.history.loss != a.history.loss


def test_the_linear_probe_trains_on_stored_features(tiny_clip):
    clip, _, tok = tiny_clip
    task = fewshot.SYNTHETIC_TASKS["outlines"]
    t = tasks.ClassificationTask(task, 2, task.test_set(10))
    module = registry.get("linear probe").build(clip, tok, t.context, {}, None)
    loader = t.loader(module, recipes.get("linear probe", profiles.get("tiny")), 0, "cpu")
    assert loader.per_batch == loader.n == 10
    x, y = loader.load(driver.step_indices(loader.n, loader.per_batch, 0, 0), 0)
    assert x.shape == (10, clip.text_projection.shape[1]) and torch.equal(y, t.y_train)  # full batch of features
    assert torch.allclose(x.norm(dim=-1), torch.ones(10), atol=1e-5)


def test_scaled_cosine_honours_logit_bias():
    model = nn.Module()
    model.logit_scale = nn.Parameter(torch.tensor(2.0).log())
    a, b = torch.randn(3, 4), torch.randn(5, 4)
    cos = torch.nn.functional.cosine_similarity(a[:, None], b[None], dim=-1)
    assert torch.allclose(features.scaled_cosine(a, b, model), 2 * cos, atol=1e-6)
    model.logit_bias = nn.Parameter(torch.tensor(-1.5))
    assert torch.allclose(features.scaled_cosine(a, b, model), 2 * cos - 1.5, atol=1e-6)


def test_mean_pool_and_batched_encoding():
    f = torch.randn(2, 3, 4)
    assert torch.allclose(features.mean_pool(f), (f / f.norm(dim=-1, keepdim=True)).mean(1))
    with pytest.raises(ValueError, match=r"\(B, T, D\)"):
        features.mean_pool(torch.randn(2, 4))
    x = torch.randn(10, 3, requires_grad=True)
    out = features.encode_batched(lambda t: t * 2, x, batch_size=3)
    assert torch.equal(out, x.detach() * 2) and not out.requires_grad
    a, b = features.encode_batched(lambda r: (torch.tensor(list(r)), -torch.tensor(list(r))), range(7), 2)
    assert a.tolist() == list(range(7)) and b.tolist() == [-i for i in range(7)]
    with pytest.raises(ValueError, match="inputs is empty"):
        features.encode_batched(lambda t: t, torch.zeros(0))


def test_seeds():
    assert seeds.derive(0, "a", "b") == seeds.derive(0, "a", "b") != seeds.derive(1, "a", "b")
    assert torch.equal(torch.rand(3, generator=seeds.generator(0, "x")), torch.rand(3, generator=seeds.generator(0, "x")))
    # a step's stream is that of manual_seed(seed * 1_000_003 + step): seed 0 gives the step itself
    assert torch.equal(torch.rand(2, generator=seeds.step_generator(0, 5)), torch.rand(2, generator=torch.Generator().manual_seed(5)))
    with pytest.raises(ValueError, match="step must be non-negative"):
        seeds.step_generator(0, -1)


def test_tuning_policies(tiny_clip):
    import copy

    clip = tiny_clip[0]
    with pytest.raises(ValueError, match="unknown tuning policy 'half'"):
        baselines.set_trainable(copy.deepcopy(clip), "half")
    with pytest.raises(ValueError, match=r"last_layers must lie in \[1, 3\]"):
        baselines.set_trainable(copy.deepcopy(clip), "partial", last_layers=4)
    partial = baselines.set_trainable(copy.deepcopy(clip), "partial", last_layers=1)
    names = {n for n, p in partial.named_parameters() if p.requires_grad}
    assert "visual.proj" in names and "text_projection" in names and "logit_scale" not in names
    assert not any(n.startswith(("visual.transformer.resblocks.0.", "transformer.resblocks.1.")) for n in names)
