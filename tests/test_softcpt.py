"""SoftCPT (chapter 7): the meta network, its variants and baselines, the joint own-task
loss and the per-task-mean metric, and the parameter counts of the reference notes."""

import copy

import pytest
import torch
import torch.nn.functional as F

from clipadapt import profiles
from clipadapt import tasks
from clipadapt.core import models, prompting
from clipadapt.data import multitask as mt
from clipadapt.methods import registry, softcpt
from clipadapt.training import driver, recipes


def _tasks(n_tasks, n_classes=2):
    return [{"name": f"task number {t}", "classnames": [f"thing {t} {c}" for c in range(n_classes)],
             "template": "a photo of a {}."} for t in range(n_tasks)]


def _trainable(m):
    return models.count_parameters(m).trainable


@pytest.fixture(scope="module")
def rn50():
    return models.load_clip("RN50")  # random weights: the counts need no download


def test_rn50_counts(rn50):
    clip, _, tok = rn50
    T = 3
    assert _trainable(softcpt.SoftCPT(clip, tok, _tasks(T), "NATA")) == 8_390_656
    assert _trainable(softcpt.SoftCPT(clip, tok, _tasks(T), "NATS")) == 8_388_608 + T * 2_048
    assert _trainable(softcpt.SoftCPT(clip, tok, _tasks(T), "CATA")) == 16_781_312
    # the paper's table prints 8,392,704 for NATA: that is 8 task context tokens, not 4
    assert _trainable(softcpt.SoftCPT(clip, tok, _tasks(T), "NATA", task_n_ctx=8)) == 8_392_704
    assert _trainable(softcpt.MultiTaskCoOp(clip, tok, _tasks(T), sharing="CA")) == T * 8_192
    assert _trainable(softcpt.MultiTaskCoOp(clip, tok, _tasks(T), sharing="MT")) == 8_192
    assert sum(p.numel() for p in clip.parameters()) == 102_007_137  # the whole RN50, frozen inside


def test_csta_count_on_general10_classes(rn50):
    clip, _, tok = rn50
    sizes = [e.n_classes for e in mt.GENERAL10]
    tasks_ = [{"name": e.task_name, "classnames": [f"c{i}" for i in range(e.n_classes)], "template": "{}"}
              for e in mt.GENERAL10]
    assert sum(sizes) == 1_191
    assert _trainable(softcpt.SoftCPT(clip, tok, tasks_, "CSTA")) == 19_218_432  # adds 1,191 x 4 x 512


def test_vit_b16_count():
    clip, _, tok = models.load_clip("ViT-B-16")
    assert _trainable(softcpt.SoftCPT(clip, tok, _tasks(2), "NATA")) == 4_196_352


def test_meta_network_inline(tiny_clip):
    clip, _, tok = tiny_clip
    torch.manual_seed(0)
    m = softcpt.SoftCPT(copy.deepcopy(clip), tok, _tasks(3, 2), "NATA", n_ctx=4)
    assert m.proj.bias is None and abs(m.proj.weight.std().item() - 0.02) < 2e-3
    with torch.no_grad():
        f = m.task_prompts.text_features()  # the task prompts through the frozen encoder, full length
        ctx = (f @ m.proj.weight.t()).view(3, 4, -1)
        assert torch.allclose(torch.stack(m.contexts()), ctx, atol=1e-5)
        inline = torch.cat([c.text_features(x) for c, x in zip(m.coops, ctx)])  # Part I's CoOp per task
        assert torch.allclose(m.class_features(), inline, atol=1e-5)


def test_variants_shapes_and_gradients(tiny_clip):
    clip, _, tok = tiny_clip
    for v in softcpt.VARIANTS:
        m = softcpt.SoftCPT(copy.deepcopy(clip), tok, _tasks(2, 3), v, n_ctx=4)
        ctxs = m.contexts()
        want = (4, 128) if v.startswith("NA") else (3, 4, 128)
        assert all(tuple(c.shape) == want for c in ctxs), v
        m.class_features().sum().backward()
        names = {n for n, p in m.named_parameters() if p.requires_grad}
        assert all(p.grad is not None for n, p in m.named_parameters() if p.requires_grad), v
        assert not any(n.startswith("clip.") for n in names), v
    with pytest.raises(ValueError, match="unknown SoftCPT variant"):
        softcpt.SoftCPT(clip, tok, _tasks(2), "XXTA")
    with pytest.raises(ValueError, match="task names must differ"):
        softcpt.SoftCPT(clip, tok, _tasks(1) * 2, "NATA")


def test_switched_off_is_stock(tiny_clip):
    """CoOp-CA with each task's context set to the words "a photo of a" gives open_clip's own
    features of "a photo of a {class}." (and the truncated encoding changes nothing)."""
    clip, _, tok = tiny_clip
    m = softcpt.MultiTaskCoOp(copy.deepcopy(clip), tok, _tasks(2, 3), n_ctx=4, sharing="CA")
    words = clip.token_embedding(tok(["a photo of a"])[0, 1:5])
    with torch.no_grad():
        for c in m.coops:
            c.ctx.copy_(words)
        stock = clip.encode_text(tok([f"a photo of a {n}." for t in _tasks(2, 3) for n in t["classnames"]]))
        assert torch.allclose(m.class_features(), stock, atol=1e-5)
        emb = torch.cat([c.prompt_embeddings() for c in m.coops])
        full = prompting.encode_text_embeddings(m.clip, emb, m.eot)
        assert torch.allclose(softcpt.encode(m.clip, emb, m.eot), full, atol=1e-5)


def _task(suite, shots=2, cache=None):
    return tasks.MultiTaskClassificationTask(suite, shots, test_per_class=6, cache=cache)


def test_own_task_loss_and_metric(tiny_clip):
    clip, _, tok = tiny_clip
    suite = mt.world_suite(2, classes=3)
    task = _task(suite)
    m = softcpt.MultiTaskZeroShot(copy.deepcopy(clip), tok, task.context["tasks"])
    loader = task.loader(m, recipes.Recipe(batch_size=16), 0, "cpu")
    x, y, t = loader.load(driver.step_indices(loader.n, loader.per_batch, 0, 0), 0)
    assert len(set(t.tolist())) > 1  # batches mix tasks
    logits = m.classifier()(x)
    by_hand = sum(F.cross_entropy(logits[t == i][:, 3 * i:3 * i + 3], y[t == i], reduction="sum")
                  for i in range(len(suite)) if (t == i).any()) / len(y)
    assert torch.allclose(task.loss(m, (x, y, t)), by_hand, atol=1e-5)
    out = task.evaluate(m)
    assert len(out["per_task"]) == 6 and out["accuracy"] == pytest.approx(sum(out["per_task"]) / 6)
    with torch.no_grad():
        head = m.classifier()
        f = m.encode_image(suite.tasks[4].test_set(6)[0])
        acc = (head(f)[:, 12:15].argmax(1) == suite.tasks[4].test_set(6)[1]).float().mean().item()
    assert out["per_task"][4] == pytest.approx(acc)


def test_runner_trains_the_meta_network_only_and_repeats(tiny_clip):
    clip, _, tok = tiny_clip
    suite = mt.world_suite(1, classes=2)
    cache = {}
    recipe = recipes.get("SoftCPT", profiles.get("tiny")).replace(steps=3)
    a = driver.run("SoftCPT", clip, tok, _task(suite, cache=cache), recipe=recipe, count_macs=False, keep=True)
    b = driver.run("SoftCPT", clip, tok, _task(suite, cache=cache), recipe=recipe, count_macs=False)
    assert a.metrics == b.metrics and a.steps == 3
    trained = {n.split(".")[0] for n, p in a.module.named_parameters() if p.requires_grad}
    assert trained == {"task_prompts", "proj"}
    assert a.trainable == 4 * 128 + 128 * 4 * 128
    for name in registry.methods("multitask"):
        r = driver.run(name, clip, tok, _task(suite, cache=cache), recipe=recipes.get(name, profiles.get("tiny")).replace(
            steps=0 if name == "ZS-CLIP" else 2), count_macs=False)
        assert 0.0 <= r.metrics["accuracy"] <= 1.0
    with pytest.raises(ValueError, match="solves multitask"):
        driver.run("SoftCPT", clip, tok, tasks.ClassificationTask(mt.world_suite(1).tasks[0], 1))


def test_the_feature_cache_keeps_unhashable_tasks_alive():
    """A real-data task is keyed by its id; the cache holds it, so that after a seed's suite is
    dropped no task of the next seed can take over its id and read its images."""
    import gc
    import weakref

    from clipadapt.tasks import multitask

    class Unhashable:
        __hash__ = None

    cache: dict = {}
    t = Unhashable()
    ref = weakref.ref(t)
    key = multitask._key(t, cache)
    del t
    gc.collect()
    assert ref() is not None and key == id(ref())
    assert multitask._key((1, 2), cache) == (1, 2)  # hashable tasks are their own key


def test_the_tiny_joint_recipe_trains_epochs_with_a_floor():
    """30 fixed steps under-trained the prompt learners at many shots (under 2 epochs of 16
    shots of 12 three-class tasks); the tiny recipe now trains 10 epochs, at least 80 steps."""
    for name in ("CoOp-CA", "CoOp-MT", "SoftCPT", "LP-CLIP"):
        r = recipes.get(name, profiles.get("tiny"))
        assert r.total_steps(24) == 80 and r.total_steps(12 * 3 * 16) == 180, name


def test_task_names_matter_in_the_label_world(tiny_clip):
    """On a small label world (2 tasks per domain, 1 shot), SoftCPT beats the same SoftCPT
    with shuffled task names: the mean paired gain over 3 seeds (same data, batches and
    initial weights per seed) is positive. It fails if the meta network ignored the names
    (the two arms would tie) or read them wrongly."""
    clip, _, tok = tiny_clip
    recipe = recipes.get("SoftCPT", profiles.get("tiny"))
    cache, gains = {}, []
    for seed in (0, 1, 2):
        suite = mt.label_suite(2, classes=3, seed=seed)
        acc = [driver.run("SoftCPT", clip, tok, tasks.MultiTaskClassificationTask(s, 1, 20, cache=cache),
                          recipe=recipe, seed=seed, count_macs=False).metrics["accuracy"]
               for s in (suite, mt.shuffled_names(suite, seed=seed))]
        gains.append(acc[0] - acc[1])
    assert sum(gains) / len(gains) > 0, gains
