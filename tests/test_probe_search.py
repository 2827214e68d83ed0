"""The official linear probe under `paper` (issue 28 item 1): scikit-learn's L-BFGS logistic
regression on the raw image features, C searched on a validation split as CoOp's
lpclip/linear_probe.py searches it (SoftCPT's repeats it per task). The probe here equals a
transcription of that search run on scikit-learn directly: the same C, the same predictions."""

import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from clipadapt import profiles, tasks
from clipadapt.data import fewshot
from clipadapt.data import multitask as mt
from clipadapt.methods import baselines, probe_search, softcpt
from clipadapt.training import driver, recipes


def official_search(x, y, vx, vy, rounds=8):
    """The official search, in words: score seven fits (C from 1e6 down to 1e-6 by factors of
    100) on the validation set and take the first best; then, `rounds` times, fit at a tenth
    and at ten times of it... i.e. at both ends of the current range, keep the better end (the
    lower one when they tie) and halve the range in log10 towards it. The last kept fit wins."""
    def fit(c):
        clf = LogisticRegression(solver="lbfgs", max_iter=1000, C=c).fit(x, y)
        return clf, np.mean(clf.predict(vx) == vy)

    grid = [10.0 ** e for e in (6, 4, 2, 0, -2, -4, -6)]
    scores = [fit(c)[1] for c in grid]
    peak = grid[scores.index(max(scores))]
    lo, hi = math.log10(peak) - 1, math.log10(peak) + 1
    kept = None
    for _ in range(rounds):
        (left, s_left), (right, s_right) = fit(10 ** lo), fit(10 ** hi)
        if s_left < s_right:
            kept, lo = (10 ** hi, right), (lo + hi) / 2
        else:
            kept, hi = (10 ** lo, left), (lo + hi) / 2
    return kept


def blobs(n_classes=4, per_class=3, dim=16, seed=0, spread=2.0):
    g = np.random.default_rng(seed)
    centres = g.normal(size=(n_classes, dim)) * spread
    y = np.repeat(np.arange(n_classes), per_class)
    return centres[y] + g.normal(size=(len(y), dim)), y


@pytest.mark.parametrize("n_classes", [2, 5])
def test_the_search_is_the_official_one(n_classes):
    x, y = blobs(n_classes, 3, seed=1)
    vx, vy = blobs(n_classes, 2, seed=2)
    tx, _ = blobs(n_classes, 40, seed=3)
    found = probe_search.search(x, y, vx, vy)
    c, clf = official_search(x, y, vx, vy)
    assert found.c == pytest.approx(c, rel=1e-12)
    assert (found.classifier.predict(tx) == clf.predict(tx)).all()
    assert len(found.tried) == 7 + 2 * 8 and [t[0] for t in found.tried[:7]] == list(probe_search.C_GRID)
    # as a linear layer over the classes, its argmax is scikit-learn's prediction
    w, b = probe_search.weights(found.classifier, n_classes)
    assert ((tx @ w.T + b).argmax(1) == clf.predict(tx)).all()


def test_validation_shots_are_the_official_table():
    # lpclip/linear_probe.py:25: {1: 1, 2: 2, 4: 4, 8: 4, 16: 4}
    assert {k: probe_search.val_shots(k) for k in (1, 2, 4, 8, 16)} == {1: 1, 2: 2, 4: 4, 8: 4, 16: 4}


def test_the_paper_probe_equals_sklearns_on_the_same_features(tiny_clip):
    clip, _, tok = tiny_clip
    data = fewshot.SYNTHETIC_TASKS["outlines"]
    task = tasks.ClassificationTask(data, 2, data.test_set(5))
    recipe = recipes.get("linear probe", profiles.get("paper"))
    assert recipe.optimizer == "lbfgs" and recipe.options["probe"] == "sklearn"
    result = driver.run("linear probe", clip, tok, task, recipe=recipe, count_macs=False, keep=True)
    m = result.module
    assert result.steps == 0 and m.probe == "sklearn"
    with torch.no_grad():  # the raw features, as the official extractor saves them
        raw = lambda images: clip.encode_image(images).detach().double().numpy()  # noqa: E731
        x, vx, tx = raw(task.x_train), raw(data.val_set(2)[0]), raw(task.x_test)
    _, clf = official_search(x, task.y_train.numpy(), vx, data.val_set(2)[1].numpy())
    with torch.no_grad():
        ours = m.logits_from_features(m.encode_image(task.x_test)).argmax(1).numpy()
    assert (ours == clf.predict(tx)).all()
    assert result.metrics["accuracy"] == pytest.approx(float(np.mean(clf.predict(tx) == task.y_test.numpy())))


def test_lp_clip_fits_each_task_as_softcpts_probe(tiny_clip):
    clip, _, tok = tiny_clip
    suite = mt.world_suite(1, classes=3)
    task = tasks.MultiTaskClassificationTask(suite, 2, test_per_class=6)
    recipe = recipes.get("LP-CLIP", profiles.get("paper"))
    m = driver.run("LP-CLIP", clip, tok, task, recipe=recipe, count_macs=False, keep=True).module
    o, compared = 0, 0
    for i, t in enumerate(suite.tasks):
        with torch.no_grad():
            raw = lambda images: clip.encode_image(images).detach().double().numpy()  # noqa: E731
            (x, y), (vx, vy), (tx, _) = t.train_set(2), t.val_set(2), t.test_set(6)
            _, clf = official_search(raw(x), y.numpy(), raw(vx), vy.numpy()) if suite.metric(i) == "accuracy" \
                else (None, None)
            n = len(t.classnames)
            ours = m.classifier()(m.encode_image(tx))[:, o:o + n].argmax(1).numpy()
        if clf is not None:
            assert (ours == clf.predict(raw(tx))).all()
            compared += 1
        o += n
    assert compared


def test_tiny_and_colab_keep_the_zero_shot_start_and_say_why():
    for name in ("tiny", "colab"):
        for method in ("linear probe", "LP-CLIP"):
            r = recipes.get(method, profiles.get(name))
            assert r.options["probe"] == "zero-shot start" and r.optimizer == "adamw"
            assert "37.3 against zero-shot 58.3 at 1 shot" in r.sources["options.probe"]
    with pytest.raises(ValueError, match="unknown probe"):
        baselines.LinearProbe.__init__(baselines.LinearProbe.__new__(baselines.LinearProbe), None, None, [], "",
                                       probe="newton")
    assert softcpt.MultiTaskLinearProbe  # the multi-task probe takes the same option
