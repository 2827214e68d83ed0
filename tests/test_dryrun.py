"""The full-size dry run: the tensor count it rests on, the straight line it extrapolates
along, the command, and the colab run that comes closest to a T4's limit."""

import copy
import tempfile
from pathlib import Path

import pytest
import torch

from clipadapt import profiles
from clipadapt import reproduce
from clipadapt.core.live_memory import LiveTensors, storage_bytes
from clipadapt.data import fixtures
from clipadapt.methods import mean_pool
from clipadapt.bench import dryrun
from clipadapt.training import recipes


def test_live_tensors_counts_what_is_held():
    with LiveTensors() as live:
        a = torch.ones(1000)  # 4,000 bytes
        view = a.view(10, 100)  # shares a's storage: not counted again
        b = torch.ones(2000)  # 8,000 more: the peak, 12,000
        del b
        c = torch.ones(500)  # 2,000
    assert (live.peak, live.live) == (12_000, 6_000)
    del a, view
    assert live.live == 2_000  # freed after the block too
    del c


def test_live_tensors_follow_the_backward_pass():
    lin = torch.nn.Linear(256, 256)
    x = torch.randn(64, 256)
    held = storage_bytes(lin, x)
    assert held == (256 * 256 + 256 + 64 * 256) * 4
    with LiveTensors(lin, x) as live:
        assert live.live == held  # what is handed in counts from the start
        y = torch.relu(lin(x))  # relu's output, kept for the backward pass and by y
        loss = lin(y).sum()
        assert live.live == held + 64 * 256 * 4 + 4
        loss.backward()
    grads = (256 * 256 + 256) * 4
    assert live.live == held + 64 * 256 * 4 + 4 + grads  # the graph is freed, the gradients stay
    assert live.peak > live.live


@pytest.fixture(scope="module")
def full_finetune_run():
    """Chapter 2's full fine-tuning under colab: ViT-B/32 (random weights from a file) on
    EuroSAT's real format, at 224 px."""
    with tempfile.TemporaryDirectory() as tmp:
        root = fixtures.write_all(Path(tmp) / "data", ())
        run, clip = dryrun.build("full fine-tune", None, profiles.get("colab"), root, Path(tmp) / "work")
        yield run, clip


def test_peak_grows_along_a_straight_line_in_the_batch(full_finetune_run):
    run, clip = full_finetune_run
    peaks = {n: dryrun._probe(run, clip, n, n) for n in (1, 2, 3)}
    predicted = dryrun.Measured("full fine-tune", None, 3, "amp", (1, 2), (peaks[1][0], peaks[2][0]),
                                (peaks[1][1], peaks[2][1]), 3)
    assert peaks[2][0] > peaks[1][0]  # activations grow with the batch
    assert predicted.train == pytest.approx(peaks[3][0], rel=0.02)
    assert predicted.eval == pytest.approx(peaks[3][1], rel=0.02)
    # weights of the kept CLIP and the method's copy, gradients and AdamW's two moments
    weights = storage_bytes(clip)
    assert peaks[1][0] > 5 * weights


def test_dry_run_command_prints_the_t4_estimate(capsys):
    assert reproduce.main(["linear probe", "--profile", "colab", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "linear probe" in out and "T4" in out and "yes" in out


def test_the_closest_colab_run_fits_a_t4_with_headroom():
    """Chapter 3's full fine-tuning of the video CLIP holds the most (12 frames of 224 px
    per video, every weight with gradients and AdamW state): with activation checkpointing,
    as its colab recipe says, it leaves 20 % of a T4 free; without, it would not."""
    recipe = recipes.get("mean pooling", profiles.get("colab"), "full")
    assert recipe.options["checkpointing"] and "dry run" in recipe.sources["options.checkpointing"]
    m = dryrun.measure("mean pooling", "full", profiles.get("colab"))
    assert m.batch == 32 and m.precision == "amp"
    assert m.fits, m.row()
    plain = dryrun.measure("mean pooling", "full", profiles.get("colab"),
                           recipe=recipe.replace(options={**recipe.options, "checkpointing": False}))
    assert not plain.fits and plain.train > 2 * m.train, plain.row()


def test_checkpointing_leaves_the_gradients_as_they_were(tiny_clip):
    clip, _, tokenizer = tiny_clip
    video = torch.rand(2, 3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    grads = []
    for checkpointing in (False, True):
        model = mean_pool.MeanPoolCLIP(copy.deepcopy(clip), "full", checkpointing=checkpointing).train()
        model.encode_video(video).square().sum().backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 10
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, rtol=1e-5, atol=1e-6, msg=name)
