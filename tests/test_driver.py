"""One driver: ``python -m clipadapt.reproduce`` gives the chapter's numbers.

For every method and variant with a recipe, the command (which loads the profile's CLIP,
builds the task of the method's default experiment, ``experiments.default``, trains with
checkpoints and a metrics log, and, for the first method of each kind of task, evaluations
on the way) and a chapter's call (``driver.run`` on the same task, same seed) end with the
same metrics, bit for bit. The budget is cut to a few steps (the same cut for
both: ``--steps`` and ``recipe.replace``) to keep the test short; the path is the full one.
"""

import json

import pytest
import torch

from clipadapt import experiments, profiles, reproduce
from clipadapt.core import models
from clipadapt.methods import registry
from clipadapt.training import driver, recipes

STEPS = 3
PAIRS = [(name, v) for name, spec in registry.REGISTRY.items() for v in (spec.variants or (None,))]
# the first pair of each kind of task that trains also evaluates mid-run (which must change
# nothing); the others evaluate once, at the end, as the chapter's run does
MIDWAY = {next(p for p in PAIRS if registry.get(p[0]).task == kind and
               recipes.get(p[0], profiles.get("tiny"), p[1]).steps != 0)
          for kind in {registry.get(m).task for m, _ in PAIRS}}


@pytest.fixture(scope="module")
def chapter_world(tmp_path_factory):
    """The tiny CLIP and one task per kind, built as the chapters and reproduce build them."""
    work = tmp_path_factory.mktemp("driver")
    clip, preprocess, tokenizer = models.load_clip("tiny-clip", "synthetic")
    bench = experiments.Workbench(profiles.get("tiny"), clip, preprocess, tokenizer, workdir=work)
    built = {}

    def task(kind):  # every method of a kind trains on the same default task
        if kind not in built:
            spec = experiments.default(registry.methods(kind)[0]).under(bench.profile)
            built[kind] = bench.task(spec, 0, bench.points(spec)[-1].get("shots"))
        return built[kind]

    return clip, tokenizer, task, work


@pytest.mark.parametrize("method, variant", PAIRS, ids=[f"{m}-{v}" for m, v in PAIRS])
def test_reproduce_gives_the_chapters_numbers(method, variant, chapter_world, tmp_path, one_thread):
    clip, tokenizer, task, work = chapter_world
    recipe = recipes.get(method, profiles.get("tiny"), variant)
    steps = min(STEPS, recipe.total_steps(task(registry.get(method).task).n_train))
    argv = [method, "--profile", "tiny", "--out", str(tmp_path / "run"), "--workdir", str(work), "--no-progress"]
    argv += ["--variant", variant] if variant else []
    if steps:
        every = 2 if (method, variant) in MIDWAY else steps  # an evaluation mid-run, or only at the end
        argv += ["--steps", str(steps), "--eval-every", str(every), "--save-every", "1"]
        recipe = recipe.replace(steps=steps, epochs=0, min_steps=0)
    assert reproduce.main(argv) == 0
    command = json.loads((tmp_path / "run" / "result.json").read_text())
    chapter = driver.run(method, clip, tokenizer, task(registry.get(method).task), variant=variant, recipe=recipe,
                         profile="tiny", seed=0)
    assert command["metrics"] == chapter.metrics
    assert command["steps"] == chapter.steps == steps
    assert command["trainable"] == chapter.trainable and command["macs"] == chapter.macs


def test_a_kept_retrieval_run_carries_the_test_features_its_evaluation_used(chapter_world, one_thread):
    """A chapter shows a kept run's retrievals from these instead of encoding the test set again."""
    clip, tokenizer, task, _ = chapter_world
    retrieval = task("retrieval")
    recipe = recipes.get("VoP", profiles.get("tiny"), "P").replace(steps=2, epochs=0, min_steps=0)
    kept = driver.run("VoP", clip, tokenizer, retrieval, variant="P", recipe=recipe, profile="tiny", keep=True)
    v, t = kept.features
    v2, t2 = retrieval.features(kept.module)
    assert torch.equal(v, v2) and torch.equal(t, t2) and len(v) == len(retrieval.test)
    assert driver.run("VoP", clip, tokenizer, retrieval, variant="P", recipe=recipe, profile="tiny").features is None
