"""Chapter 8's map (clipadapt.bench.costmap): the methods on it, each a named experiment of
experiments/ch08.toml, the Pareto front, the step budget, the cited rows, the guide, and
measured runs."""

import dataclasses
from types import SimpleNamespace

import pytest

from clipadapt import experiments, profiles
from clipadapt.experiments import settings
from clipadapt.bench import costmap
from clipadapt.methods import registry
from clipadapt.training import recipes

ENTRY = {e.experiment: e for e in costmap.ENTRIES}


def _row(task, method, trainable, quality, macs=10.0, ms=1.0, mb=1.0, **extra):
    return {"task": task, "method": method, "trainable": trainable, "M multiply-adds": macs,
            "ms / step": ms, "peak MB": mb, "quality": quality, **extra}


def test_the_map_holds_every_method_of_parts_one_and_two():
    labels = [e.label for e in costmap.ENTRIES]
    assert set(registry.methods("classification")) <= set(labels)
    assert {"VoP", "VoP^P", "VoP^C", "VoP^F", "VoP^F+P", "VoP^F+C"} <= set(labels)
    assert {"mean pooling (LoRA)", "mean pooling (full fine-tune)", "TempMe (LoRA)"} <= set(labels)
    assert len(set(labels)) == len(labels)
    for e in costmap.ENTRIES:
        spec = registry.get(e.method)
        assert spec.task == e.task and spec.variant(e.variant) == e.variant
        # each point is the named experiment of the same method, variant and label
        exp = experiments.get(e.experiment)
        assert exp.chapter == "ch08" and (exp.method, exp.variant, exp.label) == (e.method, e.variant, e.label)
        assert exp.task["kind"] == e.task and exp.seeds == (0,)


def test_each_point_runs_on_the_task_its_part_shows():
    # the few-shot task at its largest number of shots and the profile's test pictures
    # (experiments/_settings.toml); videos with their reversal twins; Part III as their chapters
    for profile in ("tiny", "colab", "colab-smoke"):
        p = profiles.get(profile)
        for e in costmap.ENTRIES:
            task = experiments.get(e.experiment, p).task
            if e.task == "classification":
                assert task["shots"] == max(settings.of(p).fewshot.shots) and task["test_per_class"] == "data"
            else:
                assert task["batches"] == "twin pairs"
    assert [experiments.get(n).method for n in costmap.OTHERS] == ["SCPNet", "SoftCPT"]
    scp, soft = (experiments.get(n).task for n in costmap.OTHERS)
    assert scp["labels"] == 0.1 and scp["prior"] == "clip" and not scp["hidden"]
    assert soft["suite"] == "data" and soft["names"] == "true" and soft["shots"] == "largest"
    for name in costmap.OTHERS:  # placed by their cost: built, not trained, under every profile
        for profile in profiles.PROFILES:
            assert costmap.experiments.recipe_of(experiments.get(name, profiles.get(profile)), profiles.get(profile)).total_steps(10**6) == 0


def test_pareto_front_keeps_what_nothing_beats():
    rows = [_row("t", "free", 0, 40.0), _row("t", "small", 10, 60.0), _row("t", "worse", 20, 50.0),
            _row("t", "big", 1000, 70.0), _row("t", "tie", 1000, 70.0), _row("t", "dominated", 2000, 70.0)]
    assert costmap.pareto_front(rows) == ["free", "small", "big", "tie"]
    # on another cost axis the front changes
    rows[2]["ms / step"] = 0.1
    assert "worse" in costmap.pareto_front(rows, "ms / step")


def test_budget_caps_steps_and_leaves_untrained_methods_alone():
    assert costmap.budget(ENTRY["ch08/zero-shot"], profiles.get("tiny")).total_steps(80) == 0
    assert costmap.budget(ENTRY["ch08/lora"], profiles.get("tiny")).total_steps(80) == 24
    vop = costmap.budget(ENTRY["ch08/vop-f-c"], profiles.get("colab"))
    assert vop.total_steps(120) == recipes.get("VoP", profiles.get("colab"), "F+C").total_steps(120)  # the recipe's own


@pytest.mark.parametrize("profile", list(profiles.PROFILES))
def test_the_experiments_declare_the_profiles_map_budget(profile):
    """Every point trains as chapter 8 says: under tiny at most 24 steps (min(24, the
    recipe's), which each experiment declares), untrained methods untouched; elsewhere the
    recipe's own."""
    cap = 24 if profile == "tiny" else None
    for e in costmap.ENTRIES:
        own = recipes.get(e.method, profiles.get(profile), e.variant)
        if cap is None or own.steps == 0:
            expect = own
        else:
            expect = own.replace(steps=min(cap, own.steps if own.steps is not None else cap))
        got = costmap.budget(e, profiles.get(profile))
        for n in (1, 80, 10_000):
            assert got.total_steps(n) == expect.total_steps(n), (e.experiment, n)
        # epochs and min_steps only count where steps is None
        same = dict(epochs=0, min_steps=0, sources={})
        assert dataclasses.replace(got, **same) == dataclasses.replace(expect, **same), e.experiment


def test_cited_rows_are_labelled_and_come_from_the_papers_tables():
    rows = costmap.cited()
    assert all(r["cited from"] in ("VoP, Table 1", "TempMe") for r in rows)
    fc = next(r for r in rows if r["method"] == "VoP^F+C")
    assert fc["t2v R@1 (%)"] == 44.6 and fc["backbone"] == "ViT-B/32"
    assert {r["backbone"] for r in rows} == {"ViT-B/32", "ViT-B/16"}


def test_the_guide_quotes_the_numbers_it_rests_on():
    rows = [_row("classification", "zero-shot", 0, 40.0), _row("classification", "CoOp", 512, 58.0, ms=27.0),
            _row("classification", "full fine-tune", 7_000_000, 67.0, ms=193.0, mb=224.0),
            _row("retrieval", "mean pooling (nothing trained)", 0, 33.0, macs=94.7),
            _row("retrieval", "TempMe (LoRA)", 26_112, 32.5, macs=66.0, **{"reversal (%)": 52.0}),
            _row("retrieval", "VoP^F+C", 402_432, 35.0, macs=121.6, **{"reversal (%)": 57.0})]
    text = "\n".join(costmap.guide(rows))
    assert "CoOp reaches 58.0% (+18.0 points over zero-shot) with 512 trainable" in text
    assert "full fine-tune reaches 67.0%" in text
    assert "TempMe (LoRA) needs 0.70 times the multiply-adds" in text and "(-0.5 points)" in text
    assert "VoP^F+C, 35.0% R@1 (+2.0 points" in text and "apart 57% of the time" in text
    assert "full fine-tune, took 224 MB" in text


@pytest.fixture(scope="module")
def tiny_lab(tiny_clip, tmp_path_factory):
    clip, preprocess, tokenizer = tiny_clip
    lab = experiments.Lab(profiles.get("tiny"), clip, preprocess, tokenizer, workdir=tmp_path_factory.mktemp("map"), glue=False)
    lab.fewshot()  # the data read before any run is measured (costmap.tasks_of reads both parts')
    return lab


@pytest.mark.parametrize("name", ["ch08/zero-shot", "ch08/coop"])
def test_measure_runs_the_experiment_and_fills_a_row(tiny_clip, tiny_lab, name):
    clip = tiny_clip[0]
    row = costmap.measure(tiny_lab, ENTRY[name])
    result = tiny_lab.run(name).at()  # the lab's own run: the row's numbers are its
    assert row["steps"] == result.steps == (0 if name == "ch08/zero-shot" else 24)
    # CoOp under tiny starts from "a photo of a": its four words' embeddings are what trains
    assert recipes.get("CoOp", profiles.get("tiny")).options["init"] == "a photo of a"
    assert row["trainable"] == result.trainable == (0 if name == "ch08/zero-shot"
                                                    else 4 * clip.token_embedding.embedding_dim)
    assert row["M multiply-adds"] == result.macs / 1e6 > 0 and row["quality"] == 100 * result.metrics["accuracy"]
    assert 0 <= row["quality"] <= 100 and row["peak MB"] >= 0
    assert (row["ms / step"] > 0) == (name == "ch08/coop")


def test_other_tasks_places_part_three_by_its_cost():
    runs = {}

    class Lab:  # what other_tasks asks of a lab (tests/test_experiments.py runs real ones)
        def spec(self, name):
            return experiments.get(name, profiles.get("tiny"))

        def run(self, name):
            runs[name] = SimpleNamespace(at=lambda: SimpleNamespace(trainable=len(name), macs=2e6, steps=0))
            return runs[name]

    rows = costmap.other_tasks(Lab())
    assert list(runs) == list(costmap.OTHERS)
    assert rows == [{"task": "multilabel", "method": "SCPNet (full)", "trainable": len("ch08/scpnet"),
                     "M multiply-adds": 2.0},
                    {"task": "multitask", "method": "SoftCPT (NATA)", "trainable": len("ch08/softcpt"),
                     "M multiply-adds": 2.0}]


def test_format_rows_prints_one_line_a_run():
    rows = [_row("classification", "CoOp", 512, 58.04, ms=26.8, steps=24),
            _row("retrieval", "VoP^F+C", 402_432, 32.9, steps=24, **{"reversal (%)": 56.7})]
    lines = costmap.format_rows(rows).splitlines()
    assert len(lines) == 3 and "58.0" in lines[1] and "402,432" in lines[2] and "56.7" in lines[2]
    assert lines[1].rstrip().endswith("-")  # no reversal test for images


def test_columns_name_the_quality_by_its_metric():
    rows = [_row("classification", "CoOp", 512, 58.0, steps=24, seconds=1.0),
            _row("retrieval", "VoP", 6_144, 29.6, steps=24, seconds=2.0, **{"reversal (%)": 50.0})]
    image = costmap.columns(rows, "classification")
    assert [r["method"] for r in image] == ["CoOp"] and image[0]["accuracy (%)"] == 58.0
    assert not {"task", "quality", "steps", "seconds"} & set(image[0])
    video = costmap.columns(rows, "retrieval")[0]
    assert list(video)[-2:] == ["t2v R@1 (%)", "reversal (%)"]
