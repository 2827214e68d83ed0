"""The official ``fp16`` precision (issue 28): CLIP in float16 as OpenAI's code runs it, the
methods' own tensors in its dtype, no autocast and no gradient scaler, SGD on the float16
parameters -- for every row whose official recipe says fp16 (CoOp, SoftCPT and its
baselines, zero-shot CLIP, CLIP4Clip's zero-shot mean pooling); the tiny rows stay float32."""

import copy
import importlib.util
import sys
import tempfile
import types
from pathlib import Path

import open_clip
import pytest
import torch

from clipadapt import profiles, tasks
from clipadapt.bench import dryrun
from clipadapt.core import precision
from clipadapt.data import fewshot, fixtures, video, worlds
from clipadapt.data import multitask as mt
from clipadapt.methods import coop, registry
from clipadapt.training import driver, loop, recipes

HALF_ROWS = {("zero-shot", None), ("CoOp", None), ("mean pooling", "none"), ("ZS-CLIP", None), ("CoOp-CA", None),
             ("CoOp-MT", None), *(("SoftCPT", v) for v in registry.get("SoftCPT").variants)}


def _official(method, variant=None, steps=2):
    """The official recipe, short: ``steps`` steps of 8 examples (its optimiser, schedule and fp16)."""
    r = recipes.official(method, variant)
    return r.replace(by_shots={}, steps=steps, batch_size=8) if steps else r


def _autocast_seen(module):
    """Records, at every call of ``module``, whether any autocast was on."""
    seen = []
    module.register_forward_pre_hook(
        lambda m, args: seen.append(torch.is_autocast_enabled("cpu") or torch.is_autocast_enabled("cuda")))
    return seen


def _assert_openai_half(clip):
    """Float16 where OpenAI's convert_weights puts it; layer norms, embeddings and the
    temperature float32."""
    for name, p in clip.named_parameters():
        kept = ("ln_" in name or "embedding" in name or name == "logit_scale")
        assert p.dtype == (torch.float32 if kept else torch.float16), name


def test_the_official_fp16_rows_are_the_paper_rows_and_tiny_stays_float32():
    half = {(m, v) for m in registry.methods() for v in registry.get(m).variants or (None,)
            if recipes.official(m, v).precision == "fp16"}
    assert half == HALF_ROWS
    for m, v in HALF_ROWS:
        assert recipes.get(m, profiles.get("paper"), v).precision == "fp16"
    for m in registry.methods():  # the tiny CLIP trains in float32 on the CPU, as before
        for v in registry.get(m).variants or (None,):
            assert recipes.get(m, profiles.get("tiny"), v).precision != "fp16"


# -- the model ------------------------------------------------------------------------------
clip_pkg = None
if importlib.util.find_spec("clip") is not None:
    # as tests/test_reference_clip.py (the first of the two to run puts it in sys.modules,
    # where find_spec would refuse the stand-in, which has no __spec__)
    if "pkg_resources" not in sys.modules and importlib.util.find_spec("pkg_resources") is None:
        import packaging.version

        sys.modules["pkg_resources"] = types.SimpleNamespace(packaging=packaging)
    import clip as clip_pkg
    from clip import model as openai_model


@pytest.mark.skipif(clip_pkg is None, reason="OpenAI's clip package (clip-anytorch) is in the dev extra")
def test_half_is_openais_float16_clip():
    """A tiny OpenAI CLIP as released (convert_weights: float16) and the same weights in
    open_clip's float32 build made half by precision.half: every parameter in the same dtype,
    the same features from float32 pixels and token ids, to float16's precision."""
    torch.manual_seed(0)
    released = openai_model.CLIP(embed_dim=64, image_resolution=32, vision_layers=2, vision_width=128,
                                 vision_patch_size=16, context_length=16, vocab_size=49408, transformer_width=64,
                                 transformer_heads=2, transformer_layers=2).eval()
    openai_model.convert_weights(released)
    ours = open_clip.model.CLIP(
        64, vision_cfg={"image_size": 32, "layers": 2, "width": 128, "head_width": 64, "patch_size": 16},
        text_cfg={"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
        quick_gelu=True).eval()
    ours.load_state_dict(released.state_dict())
    precision.half(ours)
    assert {n: p.dtype for n, p in ours.named_parameters()} == {n: p.dtype for n, p in released.named_parameters()}
    _assert_openai_half(ours)
    assert precision.dtype(ours) == released.dtype == torch.float16
    images = torch.randn(3, 3, 32, 32)  # float32, as the tasks hold them: cast where they enter
    ids = clip_pkg.tokenize(["a photo of a dog.", "two cats", "x"], context_length=16)
    with torch.no_grad():
        ref_image, ref_text = released.encode_image(images), released.encode_text(ids)
        our_image, our_text = ours.encode_image(images), ours.encode_text(ids)
    assert our_image.dtype == our_text.dtype == torch.float16
    torch.testing.assert_close(our_image, ref_image, rtol=1e-2, atol=2e-3)
    torch.testing.assert_close(our_text, ref_text, rtol=1e-2, atol=2e-3)
    assert precision.half(ours) is ours and len(ours.visual.conv1._forward_pre_hooks) == 1  # once only


def test_the_shared_clip_stays_float32(tiny_clip):
    clip, _, tok = tiny_clip
    task = fewshot.SYNTHETIC_TASKS["outlines"]
    run = driver.prepare("CoOp", clip, tok, tasks.ClassificationTask(task, 1, task.test_set(4)),
                         recipe=_official("CoOp"))
    _assert_openai_half(run.module.clip)
    assert all(p.dtype == torch.float32 for p in clip.parameters())
    assert not clip.visual.conv1._forward_pre_hooks


# -- runs -----------------------------------------------------------------------------------
def test_coop_draws_its_context_in_float16_as_coop_does(tiny_clip):
    half = precision.half(copy.deepcopy(tiny_clip[0]))
    torch.manual_seed(0)
    m = coop.CoOp(half, tiny_clip[2], ["circle", "square"], n_ctx=4)
    torch.manual_seed(0)
    assert torch.equal(m.ctx, torch.empty(4, 128, dtype=torch.float16).normal_(std=0.02))  # PromptLearner's draw
    assert m.prefix.dtype == m.suffix.dtype == torch.float16  # token_embedding(...).type(dtype)
    m = coop.CoOp(half, tiny_clip[2], ["circle", "square"], init="a photo of a")
    assert m.ctx.dtype == torch.float16 and m.n_ctx == 4


def test_coop_trains_in_float16_without_autocast(tiny_clip):
    clip, _, tok = tiny_clip
    task = fewshot.SYNTHETIC_TASKS["outlines"]
    t = tasks.ClassificationTask(task, 2, task.test_set(10))
    run = driver.prepare("CoOp", clip, tok, t, recipe=_official("CoOp", steps=3))
    seen = _autocast_seen(run.module.clip.visual)
    before = run.module.ctx.detach().clone()
    assert not run.trainer.use_amp and not run.trainer.scaler.is_enabled()
    assert isinstance(run.trainer.optimizer, torch.optim.SGD)
    x, _ = run.batch(0)
    assert x.dtype == torch.float32 and run.module(x).dtype == torch.float16  # pixels cast inside; fp16 logits
    history = driver.fit(run, progress=False)
    assert all(torch.isfinite(torch.tensor(history.loss)))
    assert seen and not any(seen)
    assert run.module.ctx.dtype == torch.float16 and not torch.equal(run.module.ctx, before)  # stepped in fp16
    _assert_openai_half(run.module.clip)
    assert 0.0 <= driver.evaluate(run)["accuracy"] <= 1.0


@pytest.mark.parametrize("method,variant", [("CoOp-CA", None), ("CoOp-MT", None), ("SoftCPT", "NATS"),
                                            ("SoftCPT", "CSTA")])  # NATA and CATA: the shared contexts of these
def test_multitask_methods_train_in_float16(tiny_clip, method, variant):
    clip, _, tok = tiny_clip
    task = tasks.MultiTaskClassificationTask(mt.world_suite(1, classes=2), 2, test_per_class=6)
    run = driver.prepare(method, clip, tok, task, variant=variant, recipe=_official(method, variant))
    seen = _autocast_seen(run.module.clip.transformer.resblocks[0])
    trained = {n: p.dtype for n, p in run.module.named_parameters() if p.requires_grad}
    # every context float16 (clip_model.dtype); SoftCPT's meta network float32, cast on use (its PromptGen)
    assert trained and all(d == (torch.float32 if n == "proj.weight" else torch.float16) for n, d in trained.items())
    assert ("proj.weight" in trained) == (method == "SoftCPT")
    assert not run.trainer.use_amp and not run.trainer.scaler.is_enabled()
    history = driver.fit(run, progress=False)
    assert len(history.loss) == 2 and all(torch.isfinite(torch.tensor(history.loss)))
    assert seen and not any(seen)
    assert {n: p.dtype for n, p in run.module.named_parameters() if p.requires_grad} == trained
    assert 0.0 <= driver.evaluate(run)["accuracy"] <= 1.0


@pytest.mark.parametrize("method", ["zero-shot", "ZS-CLIP"])
def test_zero_shot_rows_evaluate_in_float16(tiny_clip, method):
    clip, _, tok = tiny_clip
    if method == "zero-shot":
        task = fewshot.SYNTHETIC_TASKS["outlines"]
        t = tasks.ClassificationTask(task, 1, task.test_set(10))
    else:
        t = tasks.MultiTaskClassificationTask(mt.world_suite(1, classes=2), 1, test_per_class=6)
    half = driver.prepare(method, clip, tok, t, recipe=_official(method, steps=0))
    full = driver.prepare(method, clip, tok, t, recipe=_official(method, steps=0).replace(precision="fp32"))
    assert half.trainer is None and half.steps == 0
    _assert_openai_half(half.module.clip)
    assert all(p.dtype == torch.float32 for p in full.module.parameters())
    (a,), (b,) = ([v for k, v in r.module.named_buffers() if k in ("class_features", "cls")] for r in (half, full))
    assert a.dtype == torch.float16 and b.dtype == torch.float32
    torch.testing.assert_close(a.float(), b, rtol=0, atol=5e-3)  # the class prompts' features, normalised
    assert 0.0 <= driver.evaluate(half)["accuracy"] <= 1.0


def test_zero_shot_mean_pooling_evaluates_in_float16_and_ranks_in_float32(tiny_clip, tmp_path):
    """CLIP4Clip's zero-shot row: its float16 CLIP's features read in float32 (`.float()`)."""
    clip, _, tok = tiny_clip
    vw = worlds.VideoWorld(64, frames=4, p_appear=0.0)
    records = worlds.write_videos(vw, 4, worlds.generator(0, "fp16 test"), tmp_path)
    ds = video.VideoTextDataset([(tmp_path / r["video"], r["caption"]) for r in records], frames=4, image_size=64)
    task = tasks.RetrievalTask(ds, ds, tok)
    half = driver.prepare("mean pooling", clip, tok, task, variant="none", recipe=_official("mean pooling", "none", 0))
    full = driver.prepare("mean pooling", clip, tok, task, variant="none",
                          recipe=_official("mean pooling", "none", 0).replace(precision="fp32"))
    _assert_openai_half(half.module.clip)
    (hv, ht), (fv, ft) = task.features(half.module), task.features(full.module)
    assert hv.dtype == ht.dtype == torch.float32
    torch.testing.assert_close(hv, fv, rtol=0, atol=5e-3)
    torch.testing.assert_close(ht, ft, rtol=0, atol=5e-3)
    assert set(driver.evaluate(half)["text_to_video"]) >= {"R@1", "MdR"}


# -- the loop, the driver's float32 switch, the dry run -------------------------------------
def test_the_loop_never_autocasts_fp16_and_refuses_adam_on_float16():
    model = torch.nn.Linear(4, 1).half()
    batch = (torch.randn(8, 4).half(), torch.randn(8, 1).half())

    def loss_fn(b):
        return ((model(b[0]) - b[1]) ** 2).mean()

    sgd = recipes.Recipe(lr=1e-2, optimizer="sgd", precision="fp16", warmup=0)
    trainer = loop.Trainer(model, loss_fn, sgd, 4, amp_cpu=True, device="cpu")  # where "amp" would autocast
    assert not trainer.use_amp and not trainer.scaler.is_enabled()
    assert loop.Trainer(model, loss_fn, sgd.replace(precision="amp"), 4, amp_cpu=True, device="cpu").use_amp
    before = model.weight.detach().clone()
    assert torch.isfinite(trainer.train_step(batch)) and model.weight.dtype == torch.float16
    assert not torch.equal(model.weight, before)
    with pytest.raises(ValueError, match="steps on float16 parameters with SGD"):
        loop.Trainer(model, loss_fn, sgd.replace(optimizer="adamw"), 4, device="cpu")
    with pytest.raises(ValueError, match="unknown precision 'bf16'"):
        loop.Trainer(model, loss_fn, sgd.replace(precision="bf16"), 4, device="cpu")


def test_amp_false_runs_an_fp16_row_in_float32(tiny_clip):
    clip, _, tok = tiny_clip
    task = fewshot.SYNTHETIC_TASKS["outlines"]
    run = driver.prepare("CoOp", clip, tok, tasks.ClassificationTask(task, 1, task.test_set(4)),
                         recipe=_official("CoOp"), amp=False)
    assert run.recipe.precision == "fp32" and run.recipe.sources["precision"].startswith(recipes.OURS)
    assert all(p.dtype == torch.float32 for p in run.module.parameters())


def test_the_dry_run_runs_an_fp16_row_in_float16():
    """As ``reproduce --dry-run --profile paper`` builds an fp16 row (here on the tiny CLIP):
    no autocast to bfloat16 on top of the float16 CLIP; the chapter's CLIP stays float32."""
    with tempfile.TemporaryDirectory() as tmp:
        root = fixtures.write_all(Path(tmp) / "data", ())
        run, clip = dryrun.build("CoOp", None, profiles.get("tiny"), root, Path(tmp) / "work",
                                 recipe=_official("CoOp"))
        assert not run.trainer.use_amp and precision.dtype(run.module.clip) == torch.float16
        assert precision.dtype(clip) == torch.float32
        train, _ = dryrun._probe(run, clip, 2, 2)
        assert train > 0
