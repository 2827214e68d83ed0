"""Chapter 8's map (clipadapt.bench.costmap): the methods on it, the Pareto front, the step
budget, the cited rows, the guide, and one measured run."""

import pytest

from clipadapt.bench import costmap
from clipadapt.methods import registry


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


def test_pareto_front_keeps_what_nothing_beats():
    rows = [_row("t", "free", 0, 40.0), _row("t", "small", 10, 60.0), _row("t", "worse", 20, 50.0),
            _row("t", "big", 1000, 70.0), _row("t", "tie", 1000, 70.0), _row("t", "dominated", 2000, 70.0)]
    assert costmap.pareto_front(rows) == ["free", "small", "big", "tie"]
    # on another cost axis the front changes
    rows[2]["ms / step"] = 0.1
    assert "worse" in costmap.pareto_front(rows, "ms / step")


def test_budget_caps_steps_and_leaves_untrained_methods_alone():
    assert costmap.budget(costmap.Entry("classification", "zero-shot"), "tiny", 24).total_steps(80) == 0
    lora = costmap.budget(costmap.Entry("classification", "LoRA"), "tiny", 24)
    assert lora.total_steps(80) == 24
    vop = costmap.budget(costmap.Entry("retrieval", "VoP", "F+C"), "tiny", None)
    assert vop.total_steps(120) == 120  # the recipe's own


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


@pytest.mark.parametrize("method", ["zero-shot", "CoOp"])
def test_measure_runs_the_driver_and_fills_a_row(tiny_clip, method):
    from clipadapt import tasks
    from clipadapt.training import recipes

    clip, preprocess, tokenizer = tiny_clip
    task = tasks.for_profile("classification", "tiny", clip, preprocess, tokenizer)
    row = costmap.measure(costmap.Entry("classification", method), clip, tokenizer, task, "tiny", steps=2)
    assert row["steps"] == (0 if method == "zero-shot" else 2)
    # CoOp under tiny starts from "a photo of a": its four words' embeddings are what trains
    assert recipes.get("CoOp", "tiny").options["init"] == "a photo of a"
    assert row["trainable"] == (0 if method == "zero-shot" else 4 * clip.token_embedding.embedding_dim)
    assert row["M multiply-adds"] > 0 and 0 <= row["quality"] <= 100 and row["peak MB"] >= 0
    assert (row["ms / step"] > 0) == (method == "CoOp")


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
