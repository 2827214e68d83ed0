"""python -m clipadapt.reproduce: choices, resume after a crash, refusals, the table.

The resume tests run CoOp under ``tiny`` for 12 steps (a checkpoint every 4) in one thread,
so that every run -- in this process or in a subprocess that is killed -- does the same
arithmetic and the weights can be compared bit for bit.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from clipadapt import reproduce, tasks
from clipadapt.core import distributed
from clipadapt.core.checkpoints import read_checkpoint
from clipadapt.methods import registry
from clipadapt.methods.protocol import Method
from clipadapt.tasks.protocol import Loader, Task
from clipadapt.training import driver, runstate

LIB = Path(reproduce.__file__).parents[1]
ARGS = ["CoOp", "--profile", "tiny", "--steps", "12", "--eval-every", "4", "--save-every", "4", "--no-progress"]


def cli(out, *extra, kill=None, argv=ARGS):
    """The command ``argv`` in a subprocess (one thread); ``kill="save:8"`` SIGKILLs it there."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(LIB)}
    env.pop(reproduce.KILL_ENV, None)
    if kill:
        env[reproduce.KILL_ENV] = kill
    return subprocess.run([sys.executable, "-m", "clipadapt.reproduce", *argv, "--out", str(out), *extra],
                          env=env, capture_output=True, text=True, timeout=300)


def weights(out):
    return read_checkpoint(Path(out) / "final.safetensors")[0]


def same_run(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (Path(a) / "metrics.jsonl").read_text() == (Path(b) / "metrics.jsonl").read_text()
    ra, rb = (json.loads((Path(d) / "result.json").read_text()) for d in (a, b))
    assert ra["metrics"] == rb["metrics"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce") / "straight"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert reproduce.main([*ARGS, "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(before)
    return out


def test_a_run_writes_its_log_checkpoints_and_results(uninterrupted, capsys):
    lines = [json.loads(x) for x in (uninterrupted / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "loss" in x] == list(range(1, 13))
    assert [x["step"] for x in lines if "eval" in x] == [4, 8, 12]
    assert [s for s, _ in runstate.checkpoints(uninterrupted / "checkpoints")] == [8, 4]  # the newest two kept
    result = json.loads((uninterrupted / "result.json").read_text())
    assert result["steps"] == 12 and result["metrics"] == lines[-1]["eval"] and result["trainable"] == 16 * 32
    _, meta = read_checkpoint(uninterrupted / "checkpoints" / "step-00000008.safetensors")
    assert meta["step"] == 8 and meta["identity"]["method"] == "CoOp" and meta["data"]["next_step"] == 8


def test_resume_after_kills_ends_exactly_as_an_uninterrupted_run(uninterrupted, tmp_path, one_thread):
    out = tmp_path / "killed"
    first = cli(out, kill="save:8")  # killed half-way through writing the checkpoint of step 8
    assert first.returncode == -9, first.stderr
    left = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert left[0] == "step-00000004.safetensors" and left[1].startswith("step-00000008.safetensors.")
    assert len(left) == 2 and left[1].endswith(".tmp")  # the torn write never took the final name
    second = cli(out, "--resume", kill="step:11")  # resumes at 4, saves 8, killed after step 11
    assert second.returncode == -9, second.stderr
    assert "resumed from" in second.stdout and "step 4 of 12" in second.stdout
    assert "removed step-00000008.safetensors." in second.stdout
    assert max(json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()) == 11
    assert reproduce.main([*ARGS, "--out", str(out), "--resume"]) == 0  # resumes at 8
    same_run(uninterrupted, out)


def test_a_torn_newest_checkpoint_falls_back_to_the_previous_one(uninterrupted, tmp_path, one_thread, capsys):
    out = tmp_path / "torn"
    shutil.copytree(uninterrupted, out)
    newest = out / "checkpoints" / "step-00000008.safetensors"
    newest.write_bytes(newest.read_bytes()[:5000])  # as if the file system lost its tail
    path, _, meta, passed = runstate.latest(out / "checkpoints")
    assert path.name == "step-00000004.safetensors" and meta["step"] == 4
    assert len(passed) == 1 and "step-00000008" in passed[0]
    assert reproduce.main([*ARGS, "--out", str(out), "--resume"]) == 0
    assert "skipped damaged checkpoint step-00000008" in capsys.readouterr().out
    same_run(uninterrupted, out)


def test_a_checkpoint_of_another_run_is_refused(uninterrupted, tmp_path, capsys):
    out = tmp_path / "other"
    shutil.copytree(uninterrupted / "checkpoints", out / "checkpoints")
    assert reproduce.main([*ARGS, "--out", str(out), "--resume", "--seed", "1"]) == 2
    assert "seed: checkpoint 0, this run 1" in capsys.readouterr().err
    other = [a if a != "CoOp" else "VPT-deep" for a in ARGS]
    assert reproduce.main([*other, "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "method: checkpoint 'CoOp', this run 'VPT-deep'" in err and "recipe.lr" in err
    assert reproduce.main([*ARGS, "--out", str(uninterrupted)]) == 2  # no --resume: never overwrite a run
    assert "already holds a run; pass --resume" in capsys.readouterr().err


@pytest.mark.parametrize("argv, says", [
    (["SCPNet-nope", "--profile", "tiny"], "unknown method 'SCPNet-nope'; choose one of zero-shot, linear probe"),
    (["VoP", "--variant", "Q", "--profile", "tiny"], "unknown variant 'Q' of 'VoP'; choose one of ('vop', 'P'"),
    (["CoOp", "--variant", "P", "--profile", "tiny"], "method 'CoOp' has no variants"),
    (["CoOp", "--profile", "huge"], "unknown profile 'huge'; choose one of: colab, colab-smoke, paper, tiny"),
])
def test_unknown_choices_list_what_there_is(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        reproduce.main(argv)
    assert exit_.value.code == 2 and says in capsys.readouterr().err


def test_method_names_may_use_dashes():
    assert reproduce.choices("mean-pooling", "lora", "tiny")[0].name == "mean pooling"
    assert reproduce.choices("coop", None, "TINY")[0].name == "CoOp"


def test_the_table_has_the_chapters_columns_and_the_papers_row():
    metrics = {k: {"R@1": 10.0, "R@5": 20.0, "R@10": 30.0, "MdR": 5.0, "MnR": 6.5, "R-Sum": 60.0}
               for k in ("text_to_video", "video_to_text")}
    run = SimpleNamespace(method="VoP", variant="F+C", label="VoP (F+C)",
                          task=tasks.RetrievalTask.__new__(tasks.RetrievalTask), profile="tiny")
    text = reproduce.format_table(run, {"metrics": {**metrics, "reversal": 0.75}, "trainable": 1234,
                                        "macs": 5e6, "train_seconds": 1.0})
    head, ours, paper, source = text.splitlines()
    assert head.split()[:3] == ["run", "t2v", "R@1"] and "reversal (%)" in head
    assert "VoP (F+C), tiny (measured)" in ours and "75.0" in ours and "1,234" in ours
    assert paper.startswith("paper (cited)") and "44.6" in paper and "14.1 M (11.785%)" in paper
    assert "VoP paper" in source and "cited, not measured" in source
    no_paper = SimpleNamespace(method="CoOp", variant=None, label="CoOp",
                               task=tasks.ClassificationTask.__new__(tasks.ClassificationTask), profile="tiny")
    assert len(reproduce.format_table(no_paper, {"metrics": {"accuracy": 0.5}, "trainable": 1, "macs": 1,
                                                 "train_seconds": 1.0}).splitlines()) == 2
    assert registry.get("mean pooling").paper["full"]["t2v R@1"] == 41.7  # VoP's Table 1, "Full"


def test_a_steps_batch_depends_on_seed_and_step_alone_and_shards_make_it_up():
    n, batch = 50, 8
    for step in (0, 5, 13):
        whole = driver.step_indices(n, batch, 3, step)
        assert torch.equal(whole, driver.step_indices(n, batch, 3, step)) and len(set(whole.tolist())) == batch
        parts = [distributed.shard(whole, r, 4) for r in range(4)]
        assert torch.equal(torch.cat(parts), whole)  # rank order is the global batch's order
    assert not torch.equal(driver.step_indices(n, batch, 3, 0), driver.step_indices(n, batch, 3, 1))
    assert not torch.equal(driver.step_indices(n, batch, 3, 0), driver.step_indices(n, batch, 4, 0))
    assert torch.equal(driver.step_indices(n, n, 3, 7), torch.arange(n))  # a full batch, in order
    with pytest.raises(ValueError, match="does not split over 3 processes"):
        distributed.shard(driver.step_indices(n, batch, 3, 0), 0, 3)


def test_one_process_is_the_identity():
    x = torch.randn(3, 2, requires_grad=True)
    assert distributed.gather_with_grad(x) is x and distributed.gather_objects(["a"]) == ["a"]
    assert distributed.world() == 1 and distributed.is_main() and distributed.mean(torch.tensor(2.5)) == 2.5


class ToyWithAverage(Method):
    """A linear layer that keeps a moving average of its weight as a plain attribute (as
    SCPNet does) and hands it to checkpoints."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 1)
        self.average = self.linear.weight.detach().clone()

    def forward(self, x):
        return self.linear(x)

    def after_step(self):
        self.average = 0.5 * self.average + 0.5 * self.linear.weight.detach()

    def resume_state(self):
        return {"average": self.average}

    def load_resume_state(self, tensors):
        self.average = tensors["average"].clone()


class ToyTask(Task):
    """A task kind that reproduce has never heard of, with only the protocol's required
    parts (the table's columns come from the protocol's default ``row``)."""

    kind = "toy"
    context: dict = {}
    n_train = 64

    def loader(self, module, recipe, seed, device):
        x = torch.randn(self.n_train, 4, generator=torch.Generator().manual_seed(seed))

        def load(indices, step):
            return x[indices], x[indices].sum(1, keepdim=True)

        return Loader(self.n_train, recipe.batch_size, load)

    def loss(self, module, batch):
        return ((module(batch[0]) - batch[1]) ** 2).mean()

    def evaluate(self, module):
        with torch.no_grad():
            return {"error": {"mean": float((module(torch.ones(2, 4)) - 4).abs().mean())},
                    "average": float(module.average.sum())}

    def encoder(self, module):
        return module

    def example(self, device):
        return torch.ones(1, 4, device=device)


def test_a_new_kind_of_task_runs_and_resumes_without_changes_here(monkeypatch, tmp_path, capsys):
    spec = registry.MethodSpec("toy", "toy", lambda clip, tok, ctx, options, variant: ToyWithAverage(), "a toy")
    monkeypatch.setitem(registry.REGISTRY, "toy", spec)
    monkeypatch.setitem(tasks.TASKS, "toy", ToyTask)
    # a kind of task is its class, how an experiment builds it and the options a spec may give
    from clipadapt.experiments import build, spec as spec_format
    from clipadapt.training import recipes

    monkeypatch.setitem(build.BUILDERS, "toy", lambda bench, opts, seed, shots: ToyTask())
    monkeypatch.setitem(spec_format.TASK_KEYS, "toy", {})
    get = recipes.get
    monkeypatch.setattr(recipes, "get", lambda m, *a, **k: recipes.Recipe(lr=0.05, steps=6, batch_size=8)
                        if m == "toy" else get(m, *a, **k))
    run = reproduce.prepare("toy", None, "tiny")
    result = reproduce.train_and_evaluate(run, tmp_path, eval_every=3, save_every=2, progress=False)
    losses = [json.loads(x)["loss"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines() if "loss" in x]
    assert len(losses) == 6 and result["metrics"]["error"]["mean"] >= 0
    assert "error mean" in capsys.readouterr().out  # the table flattens metrics the task does not lay out
    (tmp_path / "final.safetensors").rename(tmp_path / "first.safetensors")
    run.module.average.zero_()  # the moving average must come back from the checkpoint
    again = reproduce.train_and_evaluate(run, tmp_path, resume=True, eval_every=3, save_every=2, progress=False)
    assert "at step 4 of 6" in capsys.readouterr().out
    a, b = (read_checkpoint(tmp_path / f)[0] for f in ("first.safetensors", "final.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a) and again["metrics"] == result["metrics"]


def test_softcpt_runs_and_resumes_through_the_multitask_task(tmp_path, one_thread, capsys):
    """Chapter 7's kind of task (many tasks, mixed batches) through the same command: the
    table shows the mean over tasks, and a run stopped at a checkpoint resumes exactly."""
    argv = ["SoftCPT", "--variant", "NATA", "--profile", "tiny", "--steps", "6", "--eval-every", "3",
            "--save-every", "3", "--no-progress"]
    assert reproduce.main([*argv, "--out", str(tmp_path / "straight")]) == 0
    table = capsys.readouterr().out
    assert "mean accuracy (%)" in table and "worst task (%)" in table
    result = json.loads((tmp_path / "straight" / "result.json").read_text())
    assert len(result["metrics"]["per_task"]) == 12 and 0 < result["metrics"]["accuracy"] <= 1
    killed = cli(tmp_path / "stopped", kill="step:5", argv=argv)
    assert killed.returncode == -9, killed.stderr
    assert reproduce.main([*argv, "--out", str(tmp_path / "stopped"), "--resume"]) == 0
    same_run(tmp_path / "straight", tmp_path / "stopped")
