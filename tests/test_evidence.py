"""How chapters state comparisons (clipadapt.core.evidence): paired over seeds, a verdict only
where every seed agrees, and a check that fails on a comparison glued without its seeds."""

import json

import pytest

from clipadapt import viz
from clipadapt.core import evidence


def test_a_difference_is_settled_only_when_every_seed_agrees():
    ahead = evidence.compare([70.0, 72.0, 71.0], [68.0, 69.0, 70.5], "LoRA", "full")
    assert ahead["settled"] and ahead["says"].startswith("LoRA ahead on all 3 seeds (LoRA minus full: +1.8")
    behind = evidence.compare([60.0, 61.0, 62.0], [63.0, 64.0, 65.0], "CoOp", "probe")
    assert behind["settled"] and behind["says"].startswith("probe ahead on all 3 seeds")
    tie = evidence.compare([70.0, 68.0, 71.0], [69.0, 69.0, 70.0], "LoRA", "full")
    assert not tie["settled"] and tie["says"].startswith("a tie: LoRA ahead on 2 of 3 seeds, behind on 1 (")
    level = evidence.compare([70.0, 68.0, 71.0], [70.0, 69.0, 72.0], "LoRA", "full")
    assert level["says"].startswith("a tie: LoRA ahead on 0 of 3 seeds, behind on 2, level on 1 (")
    even = evidence.compare([50.0, 50.0, 50.0], [50.0, 50.0, 50.0], "a", "b")
    assert not even["settled"] and even["says"].startswith("a tie")
    one = evidence.compare([70.0], [60.0], "a", "b")
    assert not one["settled"] and one["says"].startswith("one draw, not a verdict")
    assert tie["per_seed"] == [1.0, -1.0, 1.0] and evidence.row(tie)["verdict"] == "tie (2 of 3)"


def _glued(monkeypatch):
    out = {}
    monkeypatch.setattr(viz, "glue", lambda name, value, display=False: out.__setitem__(name, str(value)))
    return out


def test_glue_hands_the_prose_the_mean_and_its_evidence(monkeypatch):
    out = _glued(monkeypatch)
    c = evidence.glue("lora_vs_full", evidence.compare([3.0, 2.0, 4.0], [1.0, 1.0, 1.0], "LoRA", "full"))
    assert set(out) == {"lora_vs_full", "lora_vs_full_sd", "lora_vs_full_agree", "lora_vs_full_n",
                        "lora_vs_full_says", "paired:lora_vs_full"}
    assert out["lora_vs_full_agree"] == "3 of 3" and float(out["lora_vs_full"]) == c["mean"] == 2.0
    assert json.loads(out["paired:lora_vs_full"])["n"] == 3
    assert evidence.unbacked(out, ["{glue:text}`lora_vs_full:+.1f` ({glue:text}`lora_vs_full_says`)"]) == []


@pytest.mark.parametrize("case", ["no record", "one seed", "mean alone"])
def test_the_check_fails_on_a_comparison_without_its_seeds(monkeypatch, case):
    out = _glued(monkeypatch)
    text = "LoRA beats full fine-tuning by {glue:text}`lora_vs_full:.1f` points."
    if case == "no record":
        viz.glue("lora_vs_full", 3.4)  # glued as a bare number: no seeds behind it
        text += " ({glue:text}`lora_vs_full_says`)"
    elif case == "one seed":
        evidence.glue("lora_vs_full", evidence.compare([72.2], [68.8], "LoRA", "full"))
        text += " ({glue:text}`lora_vs_full_says`)"
    else:
        evidence.glue("lora_vs_full", evidence.compare([72.0, 71.0, 73.0], [68.0, 69.0, 70.0], "LoRA", "full"))
    problems = evidence.unbacked(out, ["# a heading", text])
    assert len(problems) == 1 and problems[0].startswith({"no record": "lora_vs_full: a comparison glued without",
                                                          "one seed": "lora_vs_full: a comparison on 1 seed",
                                                          "mean alone": "markdown cell 1 quotes lora_vs_full"}[case])


def test_tables_and_pasted_markdown_typeset_variant_names_as_the_prose():
    """An experiment's label writes a variant with a caret (``VoP^F+P``); a table cell, a
    table heading and the guide's Markdown show it as the prose does, VoP<sup>F+P</sup>;
    other carets (math, exponents) are left alone."""
    assert viz.typeset("VoP^F+P, VoP^F, random batches; VoP^C - VoP") == \
        "VoP<sup>F+P</sup>, VoP<sup>F</sup>, random batches; VoP<sup>C</sup> - VoP"
    assert viz.typeset("10^3 and $W^T$ and x^Fo") == "10^3 and $W^T$ and x^Fo"
    html = viz.table([{"model^P": "VoP^F+C", "R@1": 1.0}]).data
    assert "VoP<sup>F+C</sup>" in html and "model<sup>P</sup>" in html and "^" not in html


def test_a_verdict_naming_a_variant_is_glued_as_typeset_markdown(monkeypatch):
    """The prose quotes such a verdict with {glue:md}, so that it reads VoP<sup>C</sup> as the
    sentence around it does; a verdict without a variant stays text for {glue:text}."""
    glued = {}
    monkeypatch.setattr(viz, "glue", lambda name, value, display=False: glued.update({name: value}))
    evidence.glue("c_vs_v", evidence.compare([2, 1, 3], [1, 2, 1], "VoP^C", "VoP"))
    evidence.glue("l_vs_f", evidence.compare([2, 3, 4], [1, 2, 1], "LoRA", "full fine-tune"))
    says = glued["c_vs_v_says"]
    assert says.data.startswith("a tie: VoP<sup>C</sup> ahead on 2 of 3 seeds") and "^" not in says.data
    assert glued["l_vs_f_says"].startswith("LoRA ahead on all 3 seeds")
    assert json.loads(glued[evidence.RECORD + "c_vs_v"])["a"] == "VoP^C"  # the record keeps the label


def test_figures_typeset_variant_names_in_mathtext():
    assert viz.typeset("VoP^F+C, random batches", math=True) == r"VoP$^{\mathrm{F+C}}$, random batches"
    fig = viz.curves_grid({"VoP^F+P": {"seed 0": [1.0, 0.5]}, "VoP^C": {"seed 0": [1.0, 0.8]}})
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == [r"VoP$^{\mathrm{F+P}}$", r"VoP$^{\mathrm{C}}$"]
    fig.canvas.draw()  # mathtext parses
    viz.plt.close(fig)
