"""Data-parallel training under torchrun equals one process on the same global batch.

``tests/ddp_check.py`` builds VoP on a small video world (8 videos and their reversal
twins), takes the loss and the gradients of its first step, then trains 3 steps and
evaluates. It runs once in this process and once under ``torchrun`` with 2 processes
on the CPU (gloo); the contrastive loss gathers both processes' features with gradients,
so the two runs see the same global batch with the same negatives. Each run is then resumed
from its checkpoint of step 2 and must end with the same weights bit for bit.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from clipadapt import reproduce
from clipadapt.core.checkpoints import read_checkpoint

LIB = Path(reproduce.__file__).parents[1]
SCRIPT = Path(__file__).with_name("ddp_check.py")
sys.path.insert(0, str(SCRIPT.parent))
import ddp_check  # noqa: E402


def results(out):
    first, resumed = (read_checkpoint(out / "run" / f)[0] for f in ("first.safetensors", "final.safetensors"))
    assert first.keys() == resumed.keys() and all(torch.equal(first[k], resumed[k]) for k in first)
    return read_checkpoint(out / "step0.safetensors"), first


@pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="needs the gloo backend")
def test_two_processes_equal_one_on_the_global_batch(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ddp_check.check(tmp_path / "one", tmp_path)  # in this process; also writes the videos
    finally:
        torch.set_num_threads(threads)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(LIB)}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(SCRIPT), str(tmp_path / "two"), str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (one, meta1), final1 = results(tmp_path / "one")
    (two, meta2), final2 = results(tmp_path / "two")
    assert (meta1["world"], meta1["batch"], meta2["world"], meta2["batch"]) == (1, 8, 2, 4)  # 4 videos each
    # one step: the same loss over the global batch, the same gradients (DDP's average)
    assert torch.allclose(one["loss"], two["loss"], rtol=1e-6)
    grads = [k for k in one if k.startswith("grad.")]
    assert grads and set(grads) == {k for k in two if k.startswith("grad.")}
    # (each process encodes half the batch: matrix products of other shapes round otherwise)
    for k in grads:
        scale = one[k].abs().max()
        assert torch.allclose(one[k], two[k], rtol=1e-4, atol=1e-4 * scale), (k, (one[k] - two[k]).abs().max() / scale)
    # a short run: the same weights, up to float rounding that AdamW's step (g / sqrt(v))
    # amplifies where a gradient entry is near zero
    for k in final1:
        diff = (final1[k] - final2[k]).abs()
        assert diff.max() < 2e-3 and diff.mean() < 2e-5, (k, diff.max().item(), diff.mean().item())
    r1, r2 = (json.loads((tmp_path / d / "run" / "result.json").read_text()) for d in ("one", "two"))
    assert r1["metrics"] == r2["metrics"] and r2["processes"] == 2
    # uneven shards (4 and 2 rows): the same loss and gradient as one process on all 6 rows
    uneven = torch.load(tmp_path / "two" / "uneven.pt")
    assert uneven["loss"][0] == pytest.approx(uneven["loss"][1], rel=1e-6)
    assert torch.allclose(*uneven["grad"], atol=1e-6)
    assert uneven["encoded"].tolist() == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0]  # 7 inputs over 2: back in order
    # rank 0 alone wrote the files (the same as the single process)
    assert sorted(p.name for p in (tmp_path / "two" / "run").iterdir()) == sorted(
        p.name for p in (tmp_path / "one" / "run").iterdir())


@pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="needs the gloo backend")
def test_the_command_under_torchrun_trains_a_classifier_as_one_process(tmp_path):
    """The command itself under torchrun: CoOp's cross-entropy on 16 of the 32 images of each
    global batch per process, gradients averaged by DistributedDataParallel; against the
    same command in this process."""
    args = ["CoOp", "--profile", "tiny", "--steps", "4", "--eval-every", "4", "--save-every", "2", "--no-progress",
            "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(LIB)}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "clipadapt.reproduce", *args, "--out", str(tmp_path / "two")], env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("CoOp, tiny (measured)") == 1  # rank 0 alone prints the table
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert reproduce.main([*args, "--out", str(tmp_path / "one")]) == 0
    finally:
        torch.set_num_threads(threads)
    one, two = (read_checkpoint(tmp_path / n / "final.safetensors")[0] for n in ("one", "two"))
    for k in one:
        assert torch.allclose(one[k], two[k], atol=1e-4), (k, (one[k] - two[k]).abs().max().item())
    r1, r2 = (json.loads((tmp_path / n / "result.json").read_text()) for n in ("one", "two"))
    assert r1["metrics"] == r2["metrics"] and (r1["processes"], r2["processes"]) == (1, 2)
