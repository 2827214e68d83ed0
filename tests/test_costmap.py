"""Chapter 8's map (clipadapt.bench.costmap): its points are the chapters' own experiments,
read with Lab.borrow; the Pareto front, the cited rows, the guide (which names a winner
only where every seed agrees), and measured points."""

from types import SimpleNamespace

import pytest

from clipadapt import experiments, profiles
from clipadapt.bench import costmap
from clipadapt.methods import registry

ENTRY = {e.experiment: e for e in costmap.ENTRIES}


def _row(task, method, trainable, quality, macs=10.0, ms=1.0, mb=1.0, values=None, **extra):
    values = values if values is not None else [quality - 1, quality, quality + 1]
    return {"task": task, "method": method, "experiment": f"ch0x/{method}", "trainable": trainable,
            "M multiply-adds": macs, "ms / step": ms, "peak MB": mb, "quality": sum(values) / len(values),
            "sd": 1.0, "values": values, "seeds": [0, 1, 2], **extra}


def test_the_map_holds_every_method_of_parts_one_and_two():
    labels = [e.label for e in costmap.ENTRIES]
    assert set(registry.methods("classification")) <= set(labels)
    assert {"VoP", "VoP^P", "VoP^C", "VoP^F", "VoP^F+P", "VoP^F+C"} <= set(labels)
    assert {"mean pooling (LoRA)", "mean pooling (full fine-tune)", "TempMe (LoRA)"} <= set(labels)
    assert len(set(labels)) == len(labels)
    for e in costmap.ENTRIES:
        spec = registry.get(e.method)
        assert spec.task == e.task and spec.variant(e.variant) == e.variant
        # each point is a chapter's own experiment of the same method and variant, with its seeds
        exp = experiments.get(e.experiment)
        assert exp.chapter in ("ch02", "ch03", "ch04", "ch05") and (exp.method, exp.variant) == (e.method, e.variant)
        assert len(experiments.get(e.experiment, profiles.get("tiny")).seeds) >= 3


def test_each_point_runs_on_the_task_its_part_shows():
    # the few-shot task of chapter 2 (its shot counts); videos with their reversal twins,
    # except chapter 3's full fine-tuning (single pairs: no chapter fine-tunes all on twins)
    for e in costmap.ENTRIES:
        task = experiments.get(e.experiment).task
        if e.task == "classification":
            assert task["shots"] == "data"
        else:
            assert task["batches"] == ("random" if e.experiment == "ch03/mean-pooling-full" else "twin pairs")
    assert [experiments.get(n).method for n in costmap.OTHERS] == ["SCPNet", "SoftCPT"]
    scp, soft = (experiments.get(n).task for n in costmap.OTHERS)
    assert scp["labels"] == 0.1 and scp["prior"] == "clip" and not scp["hidden"]
    assert soft["suite"] == "data" and soft["names"] == "true" and soft["shots"] == "largest"
    for name in costmap.OTHERS:  # placed by their cost: built, not trained, under every profile
        for profile in profiles.PROFILES:
            p = profiles.get(profile)
            assert experiments.recipe_of(experiments.get(name, p), p).total_steps(10**6) == 0


def test_pareto_front_keeps_what_nothing_beats():
    rows = [_row("t", "free", 0, 40.0), _row("t", "small", 10, 60.0), _row("t", "worse", 20, 50.0),
            _row("t", "big", 1000, 70.0), _row("t", "tie", 1000, 70.0), _row("t", "dominated", 2000, 70.0)]
    assert costmap.pareto_front(rows) == ["free", "small", "big", "tie"]
    # on another cost axis the front changes
    rows[2]["ms / step"] = 0.1
    assert "worse" in costmap.pareto_front(rows, "ms / step")


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
            _row("retrieval", "TempMe (LoRA)", 26_112, 32.5, macs=66.0,
                 **{"reversal (%)": 52.0, "reversal values": [51.0, 52.0, 53.0]}),
            _row("retrieval", "VoP^F+C", 402_432, 45.0, macs=121.6,
                 **{"reversal (%)": 57.0, "reversal values": [56.0, 57.0, 58.0]})]
    lines, claims = costmap.guide(rows)
    text = "\n".join(lines)
    assert "**Few labels and a frozen model:** CoOp (CoOp 58.0 ± 1.0%)" in text
    assert "**Quality first:** full fine-tune (full fine-tune 67.0 ± 1.0% with 7,000,000 trainable" in text
    assert "TempMe (LoRA) needs 0.70 times the multiply-adds" in text
    assert "mean pooling (nothing trained) ahead on all 3 seeds" in text
    assert "**The best retrieval at these budgets:** VoP^F+C (VoP^F+C 45.0" in text
    assert "**When order matters**" in text and "guessing): VoP^F+C." in text
    assert "full fine-tune, took 224 MB" in text
    named = {c["situation"]: c for c in claims}
    assert named["quality first"]["named"] == "full fine-tune" and named["quality first"]["settled"]


def test_the_guide_names_no_winner_the_seeds_do_not_support():
    """Means that differ while the seeds disagree: no clear winner, and the tied methods listed."""
    rows = [_row("classification", "zero-shot", 0, 40.0),
            _row("classification", "LoRA", 20_000, 0, values=[72.0, 70.0, 69.0]),
            _row("classification", "full fine-tune", 7_000_000, 0, values=[70.0, 71.0, 66.0]),
            _row("classification", "VPT-deep", 6_000, 0, values=[60.0, 61.0, 62.0])]
    lines, claims = costmap.guide(rows)
    quality = next(line for line in lines if line.startswith("**Quality first:**"))
    assert quality.startswith("**Quality first:** no clear winner among LoRA, full fine-tune (")
    for c in claims:  # every named winner is ahead on every seed
        assert c["settled"] or c["named"].startswith("no clear winner"), c
    # with every seed agreeing, the winner is named
    rows[2]["values"] = [60.0, 62.0, 61.0]
    rows[2]["quality"] = 61.0
    lines, _ = costmap.guide(rows)
    assert any(line.startswith("**Quality first:** LoRA (") for line in lines)
    # one seed is never enough
    one = [dict(r, values=r["values"][:1], quality=r["values"][0]) for r in rows]
    lines, _ = costmap.guide(one)
    assert any(line.startswith("**Quality first:** no clear winner") for line in lines)


@pytest.fixture(scope="module")
def tiny_lab(tiny_clip, tmp_path_factory):
    clip, preprocess, tokenizer = tiny_clip
    return experiments.Lab(profiles.get("tiny"), clip, preprocess, tokenizer, workdir=tmp_path_factory.mktemp("map"),
                           glue=False)


def test_measure_reads_the_chapters_runs_and_fills_a_row(tiny_lab, monkeypatch):
    """A point is its chapter's runs at the largest shot count, every seed: read from the run
    store when the chapter filed them (here: a first lab runs them; a second reads them
    without training)."""
    from clipadapt.experiments import spec as spec_module

    e = ENTRY["ch02/coop"]
    short = experiments.get("ch02/coop")
    # two seeds of 16 shots and a short budget keep the test quick; the map's logic is the same
    short = spec_module.Experiment(**{**short.__dict__, "seeds": (0, 1), "recipe": (
        spec_module.Override("steps", 3, "quick"),)})
    monkeypatch.setitem(experiments.all_specs(), "ch02/coop", short)
    row = costmap.measure(tiny_lab, e)
    assert row["seeds"] == [0, 1] and len(row["values"]) == 2 and row["steps"] == 3
    runs = tiny_lab.borrow("ch02/coop", shots=costmap.shots_of(tiny_lab, e))
    assert row["values"] == runs.values(lambda r: 100 * r.metrics["accuracy"])
    assert row["quality"] == pytest.approx(sum(row["values"]) / 2) and row["peak MB"] >= 0
    assert row["trainable"] > 0 and row["M multiply-adds"] > 0 and row["ms / step"] > 0
    clip, preprocess, tokenizer = tiny_lab.bench.clip, tiny_lab.bench.preprocess, tiny_lab.bench.tokenizer
    again = experiments.Lab(profiles.get("tiny"), clip, preprocess, tokenizer, workdir=tiny_lab.bench.workdir,
                            glue=False)
    monkeypatch.setattr("clipadapt.training.driver.run", lambda *a, **k: pytest.fail("trained again"))
    assert costmap.measure(again, e)["values"] == row["values"]


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
    """(viz.table typesets the label: VoP<sup>F</sup>.)"""
    rows = [_row("classification", "CoOp", 512, 58.0, steps=24),
            _row("retrieval", "VoP^F", 6_144, 29.6, steps=24, **{"reversal (%)": 50.0})]
    image = costmap.columns(rows, "classification")
    assert [r["method"] for r in image] == ["CoOp"] and image[0]["accuracy (%)"] == 58.0
    assert not {"task", "quality", "values", "seeds"} & set(image[0]) and image[0]["from"] == "ch0x/CoOp"
    video = costmap.columns(rows, "retrieval")[0]
    assert video["method"] == "VoP^F" and list(video)[-3:] == ["t2v R@1 (%)", "sd", "reversal (%)"]
