"""Experiments as data (clipadapt.experiments): the files load, bad files are refused with
the file and key named, profiles change what they say, and a chapter's lab and
``reproduce`` run a spec to the same numbers."""

import ast
import json

import pytest
import torch

from clipadapt import experiments, profiles, reproduce
from clipadapt.experiments import lab as lab_module
from clipadapt.experiments import spec as spec_module
from clipadapt.methods import registry
from clipadapt.training import recipes

GOOD = """
about = "a test chapter"
[defaults]
seeds = [0, 1]
task = { kind = "retrieval", batches = "random" }

[experiments.pool-lora]
method = "mean pooling"
variant = "lora"
label = "LoRA"
recipe."options.rank" = { value = 4, why = "a smaller adapter" }
recipe.steps = { value = 5, why = "a short run" }
profiles.colab = { seeds = [0], task = { batches = "twin pairs" }, why = "one seed on a T4" }
profiles.colab-smoke = { recipe = { steps = { value = 1, why = "CI" } }, why = "CI's budget" }

[experiments.zero]
method = "zero-shot"
task = { kind = "classification", shots = [1, 2] }
profiles.paper = { skip = true, why = "nothing to measure at paper scale" }
"""


def write(tmp_path, text, name="ch99.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_chapter_file_loads_and_names_real_methods():
    specs = experiments.all_specs()
    assert specs, "no experiment files"
    for name, spec in specs.items():
        assert name.startswith(spec.chapter + "/") and spec.chapter.startswith("ch")
        assert registry.get(spec.method).task == spec.task["kind"]
        for prof in profiles.PROFILES:
            resolved = spec.under(profiles.get(prof))
            assert resolved.profile == prof and resolved.seeds


def test_a_good_file_resolves_per_profile(tmp_path):
    specs = experiments.load_file(write(tmp_path, GOOD))
    assert list(specs) == ["ch99/pool-lora", "ch99/zero"]
    lora = specs["ch99/pool-lora"]
    assert lora.seeds == (0, 1) and lora.task == {"kind": "retrieval", "batches": "random"}
    tiny = lora.under(profiles.get("tiny"))
    base = recipes.get("mean pooling", profiles.get("tiny"), "lora")
    r = tiny.apply(base)
    assert r.options["rank"] == 4 and r.steps == 5 and r.epochs == 0 and r.min_steps == 0
    assert r.lr == base.lr and r.sources["options.rank"] == "ours: ch99/pool-lora: a smaller adapter"
    assert r.sources["budget"] == "ours: ch99/pool-lora: a short run"
    colab = lora.under(profiles.get("colab"))
    assert colab.seeds == (0,) and colab.task["batches"] == "twin pairs"
    smoke = lora.under(profiles.get("colab-smoke"))  # colab's changes first, then its own
    assert smoke.seeds == (0,) and smoke.task["batches"] == "twin pairs"
    assert smoke.apply(base).steps == 1 and smoke.apply(base).options["rank"] == 4
    zero = specs["ch99/zero"]
    assert zero.under(profiles.get("paper")).skip == "nothing to measure at paper scale" and not zero.under(profiles.get("tiny")).skip
    assert zero.task["test_per_class"] == "data"  # the kind's default filled in


HEAD = '[experiments.pool-lora]\nmethod = "mean pooling"\nvariant = "lora"\nseeds = [0]\n'


@pytest.mark.parametrize("text, says", [
    (HEAD + 'methd = "x"', "experiments.pool-lora.methd: unknown key"),
    (HEAD.replace('"mean pooling"', '"pooling"'), "experiments.pool-lora.method: unknown method 'pooling'"),
    (HEAD.replace('"lora"', '"lorax"'), "experiments.pool-lora.variant: unknown variant 'lorax'"),
    (HEAD.replace('"mean pooling"', '"zero-shot"'), "experiments.pool-lora.variant: method 'zero-shot' has no "
                                                     "variants"),
    (HEAD + "recipe.lr = 0.1", "experiments.pool-lora.recipe.lr: an override is"),
    (HEAD + 'recipe.lrr = { value = 0.1, why = "x" }', "experiments.pool-lora.recipe.lrr: not a recipe field"),
    (HEAD + 'recipe.lr = { value = 0.1, why = " " }', "experiments.pool-lora.recipe.lr: an override is"),
    (HEAD + 'task = { kind = "retrieval", shots = 3 }', "experiments.pool-lora.task.shots: not an option of a "
                                                         "retrieval task"),
    (HEAD + 'task = { kind = "classification" }', "experiments.pool-lora.task.kind: 'mean pooling' solves "
                                                   "retrieval"),
    (HEAD + "profiles.colab = { seeds = [1] }", "experiments.pool-lora.profiles.colab.why: every profile change "
                                                "says why"),
    (HEAD + 'profiles.colib = { why = "x" }', "experiments.pool-lora.profiles.colib: unknown profile"),
    (HEAD + 'profiles.colab = { why = "x", steps = 3 }', "experiments.pool-lora.profiles.colab.steps: a profile "
                                                         "change has"),
    (HEAD.replace("seeds = [0]", "seeds = []"), "experiments.pool-lora.seeds: a non-empty list"),
    ('[experiments.x]\nseeds = [0]\n', "experiments.x.method: missing"),
])
def test_a_bad_file_is_refused_naming_the_file_and_key(tmp_path, text, says):
    path = write(tmp_path, text + "\n")
    with pytest.raises(experiments.SpecError) as err:
        experiments.load_file(path)
    assert str(path) in str(err.value) and says in str(err.value), str(err.value)


def test_a_file_that_is_not_toml_or_has_unknown_sections_is_refused(tmp_path):
    path = write(tmp_path, "[experiments.x\nmethod = 1\n")
    with pytest.raises(experiments.SpecError, match="cannot be read as TOML"):
        experiments.load_file(path)
    path = write(tmp_path, "[experimnts.x]\nmethod = 'CoOp'\n")
    with pytest.raises(experiments.SpecError, match=r"ch99.toml: experimnts: unknown key"):
        experiments.load_file(path)


def test_an_unknown_name_lists_the_chapters_experiments():
    with pytest.raises(experiments.SpecError, match="ch03 has: ch03/mean-pooling-none"):
        experiments.get("ch03/mean-pooling-xyz")


def test_reproduce_lists_every_experiment_by_chapter(capsys):
    assert reproduce.main(["--list", "--profile", "tiny"]) == 0
    out = capsys.readouterr().out
    for name in experiments.names():
        assert name in out
    for chapter in experiments.chapters():
        assert f"\n{chapter}\n" in "\n" + out


def test_the_lab_and_reproduce_give_the_same_run(tiny_clip, tmp_path, monkeypatch, one_thread):
    """A chapter's ``lab.run`` and the command train the same run: the lab's glued record and
    the command's result.json agree bit for bit (chapter 3's LoRA at a cut budget and on its
    first seed, both cut the same way through the spec)."""
    clip, preprocess, tokenizer = tiny_clip
    cut = experiments.get("ch03/mean-pooling-lora")
    cut = spec_module.dataclasses.replace(cut, seeds=cut.seeds[:1], recipe=cut.recipe + (
        spec_module.Override("steps", 3, "a short test"),))
    monkeypatch.setitem(experiments.all_specs(), "ch03/mean-pooling-lora", cut)
    glued = {}
    monkeypatch.setattr("clipadapt.viz.glue", lambda name, value, display=False: glued.__setitem__(name, value))
    lab = experiments.Lab(profiles.get("tiny"), clip, preprocess, tokenizer, workdir=tmp_path)
    runs = lab.run("ch03/mean-pooling-lora")
    assert runs.at(seed=0).steps == 3 and lab.run("ch03/mean-pooling-lora") is runs  # once per lab
    record = json.loads(glued["experiment:ch03/mean-pooling-lora:seed=0"])
    assert reproduce.main(["ch03/mean-pooling-lora", "--profile", "tiny", "--out", str(tmp_path / "out"),
                           "--workdir", str(tmp_path), "--no-progress", "--eval-every", "2"]) == 0
    result = json.loads((tmp_path / "out" / "seed-0" / "result.json").read_text())
    assert result["experiment"] == "ch03/mean-pooling-lora" and result["point"] == {"seed": 0}
    assert json.dumps(result["metrics"], sort_keys=True) == json.dumps(record["metrics"], sort_keys=True)
    assert (result["trainable"], result["macs"], result["steps"]) == (record["trainable"], record["macs"], 3)
    # a second call without --resume refuses the folder; with it, the finished run is kept
    assert reproduce.main(["ch03/mean-pooling-lora", "--profile", "tiny", "--out", str(tmp_path / "out"),
                           "--workdir", str(tmp_path), "--no-progress"]) == 2
    assert reproduce.main(["ch03/mean-pooling-lora", "--profile", "tiny", "--out", str(tmp_path / "out"),
                           "--workdir", str(tmp_path), "--no-progress", "--resume"]) == 0
    assert ast.literal_eval(repr(record["point"])) == {"seed": 0}


def _cut(monkeypatch, name, seeds, steps=None):
    """Experiment ``name`` on ``seeds`` at 1 shot (and ``steps`` steps), for the lab tests."""
    spec = experiments.get(name)
    short = (spec_module.Override("steps", steps, "a short test"),) if steps else ()
    monkeypatch.setitem(experiments.all_specs(), name, spec_module.dataclasses.replace(
        spec, seeds=seeds, task={**spec.task, "shots": 1}, recipe=spec.recipe + short))


def test_runs_trained_side_by_side_equal_runs_one_after_another(tiny_clip, tmp_path, monkeypatch, capsys,
                                                                 one_thread):
    """A lab on the CPU trains an experiment's runs in forked processes, one thread each
    (:func:`lab.workers`): the same metrics, losses, costs and trained weights, bit for bit,
    as one after another; each run filed in the store, and one summary line printed."""
    clip, preprocess, tokenizer = tiny_clip
    _cut(monkeypatch, "ch02/lora", (0, 1), steps=3)  # LoRA's parametrised weights come back
    monkeypatch.setattr("clipadapt.viz.glue", lambda name, value, display=False: None)
    got = {}
    for workers in ("1", "2"):
        monkeypatch.setenv(lab_module.WORKERS_ENV, workers)
        lab = experiments.Lab(profiles.get("tiny"), clip, preprocess, tokenizer, workdir=tmp_path / workers)
        got[workers] = lab.run("ch02/lora", keep=True, progress=True)
        assert len(list((tmp_path / workers / "runs").glob("ch02-lora-*.json"))) == 2
    out = capsys.readouterr().out  # the side-by-side runs' summary line
    assert "LoRA: 2 runs, 3 steps" in out and "(2 at a time)" in out
    for one, two in zip(got["1"].results, got["2"].results):
        assert json.dumps(one.metrics, sort_keys=True) == json.dumps(two.metrics, sort_keys=True)
        assert one.history.loss == two.history.loss and (one.trainable, one.macs) == (two.trainable, two.macs)
        a, b = one.module.state_dict(), two.module.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        assert not two.module.training
    # the seeds differ (the comparison is not vacuous)
    assert got["2"].results[0].history.loss != got["2"].results[1].history.loss


def test_run_many_trains_several_experiments_in_one_pool(tiny_clip, tmp_path, monkeypatch, capsys, one_thread):
    """``run_many`` hands the runs of several experiments to one pool (no process waits at an
    experiment's last run), then answers as ``run`` would: the same results, one summary line
    per experiment, and a second call trains nothing."""
    clip, preprocess, tokenizer = tiny_clip
    names = ["ch02/zero-shot", "ch02/coop"]
    _cut(monkeypatch, "ch02/zero-shot", (0,))
    _cut(monkeypatch, "ch02/coop", (0,), steps=2)
    monkeypatch.setattr("clipadapt.viz.glue", lambda name, value, display=False: None)
    pools = []
    real = lab_module.Lab._train_side_by_side
    monkeypatch.setattr(lab_module.Lab, "_train_side_by_side",
                        lambda self, jobs, n: pools.append(len(jobs)) or real(self, jobs, n))
    monkeypatch.setenv(lab_module.WORKERS_ENV, "2")
    lab = experiments.Lab(profiles.get("tiny"), clip, preprocess, tokenizer, workdir=tmp_path)
    many = lab.run_many(names, keep={"ch02/coop"}, progress=True)
    assert pools == [2]  # both experiments' runs in one pool
    assert many[1].at(seed=0, shots=1).module is not None and many[0].at(seed=0, shots=1).module is None
    out = capsys.readouterr().out
    assert "zero-shot: 1 run" in out and "CoOp: 1 run, 2 steps" in out and "at a time" not in out
    assert lab.run_many(names) == many and pools == [2]  # once per lab
    monkeypatch.setenv(lab_module.WORKERS_ENV, "1")
    alone = experiments.Lab(profiles.get("tiny"), clip, preprocess, tokenizer, workdir=tmp_path, store=False)
    for runs, name in zip(many, names):
        one = alone.run(name).at(seed=0, shots=1)
        assert json.dumps(runs.at(seed=0, shots=1).metrics, sort_keys=True) == json.dumps(one.metrics, sort_keys=True)


def test_how_many_runs_go_side_by_side(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setenv(lab_module.WORKERS_ENV, "2")
    assert lab_module.workers(cpu, 3) == 2 and lab_module.workers(cpu, 1) == 1
    assert lab_module.workers(cuda, 3) == 1  # a GPU trains one run at a time
    monkeypatch.setenv(lab_module.WORKERS_ENV, "9")
    assert lab_module.workers(cpu, 3) == 3  # never more than the runs
    monkeypatch.delenv(lab_module.WORKERS_ENV)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    assert lab_module.workers(cpu, 20) == lab_module.MAX_WORKERS
    for bad in ("two", "0"):
        monkeypatch.setenv(lab_module.WORKERS_ENV, bad)
        with pytest.raises(ValueError, match=lab_module.WORKERS_ENV):
            lab_module.workers(cpu, 3)


def test_reproduce_refuses_a_seed_the_experiment_does_not_have(tmp_path, capsys):
    code = reproduce.main(["ch03/mean-pooling-none", "--profile", "tiny", "--out", str(tmp_path), "--seed", "7",
                           "--no-progress", "--workdir", str(tmp_path)])
    assert code == 2 and "has no run with seed 7" in capsys.readouterr().err


def test_a_dry_run_of_an_experiment_measures_its_own_recipe(monkeypatch, capsys):
    """``--dry-run`` on an experiment sizes the run it declares: its method, variant and
    recipe with the experiment's overrides, under the profile asked for."""
    from clipadapt.bench import dryrun

    seen = {}

    def measure(method, variant, profile, dataset=None, probes=None, recipe=None):
        seen.update(method=method, variant=variant, profile=profile.name, recipe=recipe, dataset=dataset)
        raise SystemExit(0)

    monkeypatch.setattr(dryrun, "measure", measure)
    with pytest.raises(SystemExit):
        reproduce.main(["ch05/tempme-lora-no-positions", "--profile", "colab", "--dry-run"])
    assert seen["method"] == "TempMe" and seen["variant"] == "lora" and seen["profile"] == "colab"
    assert seen["recipe"].options["positions"] is False
    assert seen["recipe"] == experiments.recipe_of(experiments.get("ch05/tempme-lora-no-positions", profiles.get("colab")), profiles.get("colab"))


def test_an_experiment_a_profile_skips_is_refused_with_the_reason(capsys):
    skipped = [n for n in experiments.names() if experiments.get(n, profiles.get("tiny")).skip]
    if not skipped:
        pytest.skip("no experiment is skipped under tiny")
    with pytest.raises(SystemExit):
        reproduce.main([skipped[0], "--profile", "tiny"])
    assert "does not run under profile 'tiny'" in capsys.readouterr().err


def test_the_static_book_prints_one_line_per_experiment():
    """In the executed book a lab prints one line for an experiment's runs, not one per run
    (chapter 2 makes 90): how many, their steps and last losses, the seconds."""
    from clipadapt.training import driver
    from clipadapt.training.loop import History

    spec = experiments.get("ch02/coop")

    def result(steps, loss):
        return driver.Result("CoOp", None, {}, 1, None, 1.0, 1.0, steps, None, History(loss=[9.0, loss]))

    runs = [result(40, 0.102), result(120, 1.042), result(40, 0.5)]
    assert lab_module.summary_line(spec, runs, 3, 21.8) == "CoOp: 3 runs, 40-120 steps, last loss 0.102-1.042, 22 s"
    assert lab_module.summary_line(spec, runs[:1], 0, 0.01) == (
        "CoOp: 1 run, 40 steps, last loss 0.102 (1 read from the run store), 0 s")
    zero = driver.Result("zero-shot", None, {}, 0, None, 0.1, 0.0, 0, None, None)
    assert lab_module.summary_line(experiments.get("ch02/zero-shot"), [zero] * 2, 2, 0.4) == "zero-shot: 2 runs, 0 s"
    assert lab_module.summary_line(spec, runs, 3, 41.2, at_a_time=2).endswith(", 41 s (2 at a time)")


def test_runs_read_a_metric_per_seed_by_its_path():
    """``Runs.metric``: one value per seed in the spec's order, scaled, NaN where a run has no
    such metric (chapters 4 and 5 read R@1 and the reversal test this way)."""
    import math

    from clipadapt.training import driver

    spec = experiments.get("ch04/vop")  # seeds 0, 1, 2
    results = [driver.Result("VoP", "vop", {"text_to_video": {"R@1": 10.0 * s}, **({"reversal": 0.5} if s else {})},
                             1, None, 1.0, 1.0, 1, None) for s in (2, 0, 1)]
    runs = lab_module.Runs(spec, [{"seed": s} for s in (2, 0, 1)], results)
    assert runs.metric("text_to_video", "R@1") == [0.0, 10.0, 20.0]
    assert runs.metric("reversal", scale=100)[1:] == [50.0, 50.0] and math.isnan(runs.metric("reversal")[0])
    assert all(math.isnan(v) for v in runs.metric("video_to_text", "R@1"))
