"""CLIP4Clip's optimiser under `paper` (issue 28 item 7): BertAdam without bias correction,
its warm-up cosine of the run's progress, and its weight-decay exclusion, each against a
transcription of the official code (ArrowLuo/CLIP4Clip modules/optimization.py:26-29,
131-166; main_task_retrieval.py:189-212) written here in plain Python."""

import math

import pytest
import torch

from clipadapt import profiles
from clipadapt.core import models
from clipadapt.methods import baselines
from clipadapt.training import optim, recipes
from clipadapt.training.bertadam import BertAdam, progress_cosine
from clipadapt.training.loop import Trainer


def official_factor(x: float, warmup: float) -> float:
    # warmup_cosine: a straight rise to 1 over the warm-up share of the run, afterwards half of
    # one plus the cosine of pi times the share of the run already done
    return x / warmup if x < warmup else 0.5 * (1.0 + math.cos(math.pi * x))


def official_updates(p0, grads, lr, b1, b2, eps, wd, total, warmup):
    """The values a parameter takes under BertAdam: the averages m, v start at zero and are
    used raw; the decay is added to the step; the rate is the base rate times the factor of
    the progress counted before the update."""
    p, m, v, out = p0.clone(), torch.zeros_like(p0), torch.zeros_like(p0), []
    for t, g in enumerate(grads):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        step = m / (v.sqrt() + eps) + wd * p
        p = p - lr * official_factor(t / total, warmup) * step
        out.append(p.clone())
    return out


def test_progress_cosine_is_warmup_cosine():
    for total in (7, 10, 100):
        for step in range(total + 1):
            assert progress_cosine(step, total, 0.1) == pytest.approx(official_factor(step / total, 0.1), abs=1e-12)
    assert progress_cosine(0, 10, 0.1) == 0.0 and progress_cosine(10, 10, 0.1) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="warmup"):
        progress_cosine(1, 10, 1.5)


def test_bertadam_and_its_schedule_follow_the_transcription():
    torch.manual_seed(0)
    total, lr, wd = 20, 1e-2, 0.2
    p0 = torch.randn(5, 3, dtype=torch.float64)
    grads = [torch.randn(5, 3, dtype=torch.float64) for _ in range(total)]
    want = official_updates(p0, grads, lr, 0.9, 0.98, 1e-6, wd, total, 0.1)
    p = torch.nn.Parameter(p0.clone())
    opt = BertAdam([{"params": [p], "weight_decay": wd}], lr=lr, betas=(0.9, 0.98), eps=1e-6)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda u: progress_cosine(u, total, 0.1))
    for g, w in zip(grads, want):
        p.grad = g.clone()
        opt.step()
        sched.step()
        torch.testing.assert_close(p.detach(), w, rtol=1e-12, atol=1e-14)
    # not torch's AdamW: its bias correction makes the first steps larger
    q = torch.nn.Parameter(p0.clone())
    adamw = torch.optim.AdamW([q], lr=lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.0)
    q.grad = grads[1].clone()
    adamw.step()
    r = torch.nn.Parameter(p0.clone())
    bert = BertAdam([r], lr=lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.0)
    r.grad = grads[1].clone()
    bert.step()
    assert not torch.allclose(q, r)


def test_clip_each_is_the_official_per_parameter_clip():
    p = torch.nn.Parameter(torch.zeros(4))
    opt = BertAdam([p], lr=1.0, betas=(0.5, 0.5), eps=1e-6, weight_decay=0.0, clip_each=1.0)
    p.grad = torch.tensor([3.0, 4.0, 0.0, 0.0])  # norm 5: clipped to norm 1 before the update
    opt.step()
    torch.testing.assert_close(p.grad, torch.tensor([0.6, 0.8, 0.0, 0.0]))
    torch.testing.assert_close(opt.state[p]["m"], 0.5 * torch.tensor([0.6, 0.8, 0.0, 0.0]))


def official_no_decay(name: str) -> bool:
    # main_task_retrieval.py:189-192: a parameter keeps its weights undecayed when any of
    # 'bias', 'LayerNorm.bias', 'LayerNorm.weight' is a substring of its name
    return any(word in name for word in ("bias", "LayerNorm.bias", "LayerNorm.weight"))


@pytest.mark.parametrize("method", ["mean pooling", "TempMe"])
def test_the_paper_row_is_clip4clips(method):
    r = recipes.get(method, profiles.get("paper"), "full")
    assert (r.optimizer, r.decay_rule, r.schedule, r.warmup_kind, r.warmup_fraction) == \
        ("bertadam", "bias", "progress-cosine", "linear", 0.1)
    assert dict(r.optimizer_kwargs) == {"betas": (0.9, 0.98), "eps": 1e-6} and r.grad_clip == 1.0
    assert "modules/optimization.py:141-144" in r.sources["optimizer"]
    assert "main_task_retrieval.py:189-192" in r.sources["optimizer"]
    assert "modules/optimization.py:26-29" in r.sources["schedule"]
    # colab keeps the AdamW and cosine its runs were measured with, each with its reason
    c = recipes.get(method, profiles.get("colab"), "full")
    assert (c.optimizer, c.decay_rule, c.schedule) == ("adamw", "bias-and-1d", "cosine")
    assert c.sources["optimizer"].startswith("ours: ") and c.sources["schedule"].startswith("ours: ")


def test_the_decay_set_is_the_official_rules_on_clips_names():
    clip = baselines.set_trainable(models.create(profiles.get("tiny").clip_model), "full")
    names = [n for n, p in clip.named_parameters() if p.requires_grad]
    ours = {n for n, p in clip.named_parameters() if p.requires_grad and optim.no_decay(n, p, "bias")}
    assert ours == {n for n in names if official_no_decay("clip." + n)}
    # the gains of CLIP's layer norms and its embeddings decay, the attention's in_proj_bias does not
    assert any(".ln_1.weight" in n for n in names) and not any(".ln_1.weight" in n for n in ours)
    assert any(n.endswith("in_proj_bias") for n in ours)
    assert "positional_embedding" in names and "positional_embedding" not in ours


def test_the_trainer_runs_the_paper_rows_schedule():
    r = recipes.get("mean pooling", profiles.get("paper"), "full").replace(steps=20, epochs=0)
    model = torch.nn.Linear(3, 2)
    trainer = Trainer(model, lambda batch: model(batch).pow(2).mean(), r, 20)
    assert isinstance(trainer.optimizer, BertAdam)
    lrs = []
    for _ in range(20):
        lrs.append(trainer.lr)
        trainer.train_step(torch.randn(4, 3))
    assert lrs == pytest.approx([1e-7 * official_factor(t / 20, 0.1) for t in range(20)], rel=1e-9, abs=1e-20)


def test_the_first_step_is_the_raw_averages_ratio():
    # without bias correction the first step is (1 - b1) / sqrt(1 - b2) times the sign: 0.71
    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt = BertAdam([p], lr=1.0, betas=(0.9, 0.98), eps=0.0, weight_decay=0.0)
    p.grad = torch.tensor([2.0, -5.0, 0.5], dtype=torch.float64)
    opt.step()
    ratio = 0.1 / math.sqrt(0.02)
    assert round(ratio, 2) == 0.71
    torch.testing.assert_close(p.detach(), -ratio * torch.sign(p.grad))
