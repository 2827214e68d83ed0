import pytest
import torch
from torch import nn

from clipadapt.core import checkpoints, seeds
from clipadapt.training import loop as train
from clipadapt.training.recipe import Recipe


def toy_problem(seed=0):
    seeds.seed_everything(seed)
    model = nn.Linear(4, 1)
    x = torch.randn(64, 4)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    loss_fn = lambda b: ((model(b[0]) - b[1]) ** 2).mean()  # noqa: E731
    return model, loss_fn, [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]


def test_fit_learns_and_repeats():
    recipe = Recipe(lr=0.05, warmup=10)  # AdamW, 10 warm-up steps (at most a tenth of the run), cosine
    model, loss_fn, batches = toy_problem()
    h1 = train.fit(model, loss_fn, batches, recipe, 200, progress=False)
    assert h1.loss[-1] < 0.01 * h1.loss[0] and h1.steps == 200
    model2, loss_fn2, batches2 = toy_problem()
    h2 = train.fit(model2, loss_fn2, batches2, recipe, 200, progress=False)
    assert h1.loss == h2.loss  # same seed, same numbers


def test_schedule():
    assert train.lr_factor(0, 100, 10) == pytest.approx(0.1)
    assert train.lr_factor(9, 100, 10) == pytest.approx(1.0)
    assert train.lr_factor(10, 100, 10) == pytest.approx(1.0)
    assert train.lr_factor(100, 100, 10) == pytest.approx(0.0)


def test_only_trainable_parameters_move():
    model, loss_fn, batches = toy_problem()
    model.bias.requires_grad_(False)
    bias = model.bias.detach().clone()
    train.fit(model, loss_fn, batches, Recipe(lr=0.1), 5, progress=False)
    assert torch.equal(model.bias, bias)
    model.weight.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        train.fit(model, loss_fn, batches, Recipe(lr=0.1), 5, progress=False)


def test_bad_runs_and_divergence():
    model, loss_fn, batches = toy_problem()
    with pytest.raises(ValueError, match="steps must be at least 1"):
        train.Trainer(model, loss_fn, Recipe(lr=1.0), 0)
    with pytest.raises(ValueError, match=r"warmup must lie in \[0, 5\] steps, got 6"):
        train.Trainer(model, loss_fn, Recipe(lr=1.0), 5, warmup=6)
    with pytest.raises(ValueError, match="no learning rate"):
        train.Trainer(model, loss_fn, Recipe(lr=None), 5)
    with pytest.raises(ValueError, match="lr must be positive"):
        train.Trainer(model, loss_fn, Recipe(lr=0.0), 5)
    with pytest.raises(ValueError, match=r"stop_after must lie in \[1, steps=5\]"):
        train.fit(model, loss_fn, batches, Recipe(lr=1.0), 5, stop_after=6)
    with pytest.raises(FloatingPointError, match="step 0"):
        train.fit(model, lambda b: model(b[0]).sum() * float("nan"), batches, Recipe(lr=0.1), 3, progress=False)


def test_the_recipe_sets_the_optimiser_schedule_clipping_and_precision():
    """The trainer reads the recipe, not a copy: SGD with momentum, a schedule stepped once
    per epoch, the recipe's clipping; an fp32 recipe never autocasts."""
    model, loss_fn, batches = toy_problem()
    recipe = Recipe(lr=0.1, optimizer="sgd", optimizer_kwargs={"momentum": 0.9}, decay_rule="all", grad_clip=0.5,
                    schedule="cosine", schedule_unit="epoch", warmup_kind="none", precision="fp32")
    trainer = train.Trainer(model, loss_fn, recipe, 8, steps_per_epoch=4, amp_cpu=True, device="cpu")
    assert isinstance(trainer.optimizer, torch.optim.SGD) and trainer.optimizer.defaults["momentum"] == 0.9
    assert not trainer.use_amp and trainer.recipe is recipe
    seen = []
    for step in range(8):
        seen.append(trainer.lr)
        trainer.train_step(batches[step % 4])
    assert seen == [0.1] * 4 + [pytest.approx(0.05)] * 4  # a cosine over 2 epochs, stepped per epoch
    assert train.Trainer(model, loss_fn, recipe.replace(precision="amp"), 8, amp_cpu=True, device="cpu").use_amp


def test_checkpoint_round_trip(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    path = checkpoints.save_checkpoint(tmp_path / "sub" / "m.safetensors", model, {"steps": 3, "note": [1, 2]})
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    other = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    meta = checkpoints.load_checkpoint(other, path)
    assert meta == {"steps": 3, "note": [1, 2]}
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)


def test_half_precision_checkpoint_loads_as_float(tmp_path):
    model = nn.Linear(3, 4)
    path = checkpoints.save_checkpoint(tmp_path / "m.safetensors", model, dtype=torch.float16)
    other = nn.Linear(3, 4)
    checkpoints.load_checkpoint(other, path)
    assert other.weight.dtype == torch.float32
    assert torch.allclose(other.weight, model.weight, atol=1e-3)


def test_mismatched_checkpoints_are_clear_errors(tmp_path):
    path = checkpoints.save_checkpoint(tmp_path / "m.safetensors", nn.Linear(3, 4))
    target = nn.Linear(3, 5)
    before = target.weight.detach().clone()
    with pytest.raises(checkpoints.CheckpointError, match=r"m.safetensors.*wrong shape.*weight: file \(4, 3\) vs model \(5, 3\)"):
        checkpoints.load_checkpoint(target, path)
    assert torch.equal(target.weight, before)  # left untouched
    with pytest.raises(checkpoints.CheckpointError, match="keys missing from the file"):
        checkpoints.load_checkpoint(nn.Sequential(nn.Linear(3, 4)), path)
    with pytest.raises(checkpoints.CheckpointError, match="does not exist"):
        checkpoints.load_checkpoint(target, tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(checkpoints.CheckpointError, match="bad.safetensors is not a readable"):
        checkpoints.load_checkpoint(target, bad)


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = checkpoints.save_checkpoint(tmp_path / "m.safetensors", nn.Linear(2, 2), {"v": 1})

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoints, "save_file", broken)  # safetensors' writer, as checkpoints imports it
    with pytest.raises(OSError, match="disk full"):
        checkpoints.save_checkpoint(path, nn.Linear(2, 2), {"v": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]
    assert checkpoints.read_checkpoint(path)[1] == {"v": 1}


def test_device_choice(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert train.pick_device("cuda").type == "cpu"
    assert train.pick_device(None).type == "cpu"


def test_trainer_state_continues_a_run_exactly(tmp_path):
    """Stopping after 7 steps, saving the state with clipadapt.training.runstate and going on in a
    fresh trainer gives the run of 20 uninterrupted steps, bit for bit."""
    import random

    import numpy as np

    from clipadapt.training import runstate

    recipe = Recipe(lr=0.05, grad_clip=1.0)
    cfg = dict(steps=20, warmup=3)  # a warm-up of 3 steps, as given (a recipe's would be at most 2)

    def noisy_loss(model):  # draws from every global generator, as augmentations would
        def loss(batch):
            jitter = torch.rand(1) + float(np.random.rand()) + random.random()
            return ((model(batch[0]) - batch[1]) ** 2).mean() * (1 + 0.01 * jitter)
        return loss

    model, _, batches = toy_problem()
    straight = train.Trainer(model, noisy_loss(model), recipe, **cfg)
    for step in range(20):
        straight.train_step(batches[step % 4])

    model, _, batches = toy_problem()
    first = train.Trainer(model, noisy_loss(model), recipe, **cfg)
    for step in range(7):
        first.train_step(batches[step % 4])
    tensors, meta = runstate.capture(model, first, {"run": 1}, {})
    runstate.write(tmp_path / runstate.PATTERN.format(7), tensors, meta)
    for _ in range(5):  # the process goes on a little, then dies
        first.train_step(batches[0])
    path, tensors, meta, _ = runstate.latest(tmp_path)
    model2, _, _ = toy_problem(seed=1)  # another initialisation: the checkpoint must overwrite it
    second = train.Trainer(model2, noisy_loss(model2), recipe, **cfg)
    runstate.restore(model2, second, tensors, meta)
    assert second.step == 7 and second.lr == recipe.lr * train.lr_factor(7, 20, 3)
    for step in range(7, 20):
        second.train_step(batches[step % 4])
    assert torch.equal(model2.weight, straight.model.weight) and torch.equal(model2.bias, straight.model.bias)
    assert second.lr == straight.lr and second.step == straight.step == 20


def test_runstate_differences_name_the_keys():
    from clipadapt.training import runstate

    saved = {"method": "CoOp", "recipe": {"lr": 0.02, "options": {"n_ctx": 16}}, "seed": 0}
    now = {"method": "CoOp", "recipe": {"lr": 0.01, "options": {"n_ctx": 4}}, "seed": 0}
    assert runstate.differences(saved, now) == ["recipe.lr: checkpoint 0.02, this run 0.01",
                                                "recipe.options.n_ctx: checkpoint 16, this run 4"]
    assert runstate.differences(saved, saved) == []
