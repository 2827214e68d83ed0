"""TempMe (and the thin ToMe method): the architecture numbers of reference/vop_tempme.md
section 2 reproduced exactly on ViT-B/32 with 12 frames, the switched-off model equal to
stock open_clip, token mass and provenance conserved, the schedule checked against the model."""

import copy

import pytest
import torch

from clipadapt.core import features, flops, models, patching
from clipadapt.methods import lora, tempme, tome
from clipadapt.methods.tempme_schedule import SCHEDULES, Schedule

B32_TRACE = [48, 46, 44, 42, 40, 38, 36, 34, 44, 56, 107, 97]


@pytest.fixture(scope="module")
def b32_numbers(vit_b32):
    """One 12-frame video through stock ViT-B/32 and TempMe (LoRA merged: stock cost), counted once."""
    video = torch.randn(1, 12, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    stock = flops.count_macs(lambda v: vit_b32.encode_image(v.flatten(0, 1)), video)
    m = tempme.TempMe(copy.deepcopy(vit_b32), frames=12)
    trainable = models.count_parameters(m).trainable
    lora_visual = sum(p.numel() for n, p in m.clip.visual.named_parameters() if "lora" in n)
    lora_text = sum(p.numel() for n, p in m.clip.transformer.named_parameters() if "lora" in n)
    lora.merge_lora(m.clip)
    merged = flops.count_macs(m.encode_video, video)
    return {"stock": stock, "tempme": merged, "tokens": list(m.state.tokens), "trainable": trainable,
            "lora": (lora_visual, lora_text), "positions": [tuple(p.shape) for p in m.clip_positions],
            "protected": m.state.protected}


def test_vit_b32_multiply_adds(b32_numbers):
    assert abs(b32_numbers["stock"].giga - 53.0) < 0.1  # 12 x 4,408,811,520
    assert b32_numbers["stock"].total == 12 * 4_408_811_520
    assert abs(b32_numbers["tempme"].giga - 34.8) < 0.1
    matching = b32_numbers["tempme"].by_operator["bmm"]  # the similarity products of the matching
    assert 0 < matching < 0.05e9


def test_vit_b32_token_trace(b32_numbers):
    assert b32_numbers["tokens"] == B32_TRACE  # measured in the forward pass
    assert b32_numbers["protected"] == 12  # every frame's class token survives
    plan = Schedule().plan(12, 12, 50)
    assert [(s.sequences, s.tokens) for s in plan[8:]] == [(6, 44), (3, 56), (1, 107), (1, 97)]
    assert [s.attention_tokens for s in plan[8:11]] == [48, 62, 118]
    assert [s.tokens for s in plan] == B32_TRACE


def test_vit_b32_trainable_parameters(b32_numbers):
    assert b32_numbers["lora"] == (294_912, 196_608)  # 12 x 8 x (768 + 2304), 12 x 8 x (512 + 1536)
    assert b32_numbers["positions"] == [(12, 768), (6, 768), (3, 768)]  # 21 x 768 = 16,128
    assert b32_numbers["trainable"] == 507_648


def test_vit_b16_reconstruction_gives_the_paper_tokens():
    plan = SCHEDULES["ViT-B-16"].plan(12, 12, 197)
    assert (plan[-1].sequences, plan[-1].tokens) == (1, 127)


def test_long_video_schedule_joins_64_frames_into_one_clip(vit_b32):
    """ActivityNet and DiDeMo under ``paper``: 64 frames, 64 -> 16 -> 4 -> 1 clips."""
    schedule = tempme.schedule_for("ViT-B-32", 64)
    assert schedule.frames_per_merge == (4, 4, 4) and tempme.schedule_for("ViT-B-32", 12) == Schedule()
    plan = schedule.plan(12, 64, 50)
    assert [s.sequences for s in plan[7:]] == [64, 16, 4, 1, 1]
    assert schedule.positions(64) == [64, 16, 4]
    with pytest.raises(ValueError, match="16 clips remain"):  # the 12-frame schedule does not take 64
        Schedule().plan(12, 64, 50)
    m = tempme.TempMe(copy.deepcopy(vit_b32), schedule, frames=64).eval()
    tokens = []
    m.clip.visual.transformer.resblocks[-1].register_forward_hook(lambda mod, i, o: tokens.append(o.shape))
    with torch.no_grad():
        out = m.encode_video(torch.randn(1, 64, 3, 224, 224))
    assert out.shape == (1, 512) and tokens[-1][:2] in {(1, plan[-1].tokens), (plan[-1].tokens, 1)}


def test_switched_off_equals_stock_mean_pooling(tiny_clip):
    clip = tiny_clip[0]
    video = torch.randn(2, 4, 3, 64, 64)
    for policy in ("lora", "none"):  # LoRA's B starts at zero
        m = tempme.TempMe(copy.deepcopy(clip), Schedule.off(), frames=4, policy=policy)
        with torch.no_grad():
            expected = features.mean_pool(clip.encode_image(video.flatten(0, 1)).reshape(2, 4, -1))
            assert torch.allclose(m.encode_video(video), expected, atol=1e-5)
    ids = tiny_clip[2](["a red circle moves from the left to the right."])
    with torch.no_grad():
        assert torch.allclose(m.encode_text(ids), clip.encode_text(ids), atol=1e-5)


def test_mass_and_provenance_conserved_at_every_layer(tiny_clip):
    clip = tiny_clip[0]
    m = tempme.TempMe(copy.deepcopy(clip), SCHEDULES["tiny-clip"], frames=8, trace_source=True)
    B, T, N = 2, 8, 17
    seen = []

    def check(block, inputs, output):
        st = m.state
        size = st.size.reshape(B, -1)
        src = st.source.reshape(B, -1, T * N)
        assert torch.allclose(size.sum(1), torch.full((B,), float(T * N)))  # token mass conserved
        assert torch.equal(src.sum(1), torch.ones(B, T * N))  # each input patch in exactly one token
        assert torch.allclose(st.source.sum(-1), st.size[..., 0])  # a token's size = its patches
        seen.append(output.shape[:2])

    hooks = [b.register_forward_hook(check) for b in m.clip.visual.transformer.resblocks]
    with torch.no_grad():
        m.encode_video(torch.randn(B, T, 3, 64, 64))
    for h in hooks:
        h.remove()
    plan = m.steps
    assert [tuple(s) for s in seen] == [(B * p.sequences, p.tokens) for p in plan]
    groups = m.patch_groups(B)
    assert groups.shape == (B, T, N - 1) and int(groups.max()) < plan[-1].tokens


def test_patch_is_removable_and_weights_load_unchanged(tiny_clip):
    clip = copy.deepcopy(tiny_clip[0])
    keys = set(clip.visual.state_dict())
    m = tempme.TempMe(clip, SCHEDULES["tiny-clip"], frames=8, policy="none")
    assert set(m.clip.visual.state_dict()) == keys
    assert patching.state_of(m.clip.visual) is m.state
    m.remove_patch()
    assert patching.state_of(m.clip.visual) is None
    images = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(m.clip.encode_image(images), tiny_clip[0].encode_image(images), atol=1e-6)


@pytest.mark.parametrize("policy, expected", [("lora", None), ("full", None)])
def test_trains_with_lora_and_with_full_fine_tuning(tiny_clip, policy, expected):
    m = tempme.TempMe(copy.deepcopy(tiny_clip[0]), SCHEDULES["tiny-clip"], frames=8, policy=policy)
    m.train()
    ids = tiny_clip[2](["a red circle.", "a blue square."])
    logits = m(torch.randn(2, 8, 3, 64, 64), ids)
    torch.nn.functional.cross_entropy(logits, torch.arange(2)).backward()
    trainable = [(n, p) for n, p in m.named_parameters() if p.requires_grad]
    assert all(p.grad is not None for n, p in trainable)
    assert all(p.grad.abs().sum() > 0 for n, p in trainable if "clip_positions" in n)
    assert not m.clip.logit_scale.requires_grad
    count = models.count_parameters(m).trainable
    rows = sum(p.numel() for p in m.clip_positions)
    if policy == "full":
        assert count == models.count_parameters(tiny_clip[0]).total - 1 + rows
    else:
        assert count == sum(p.numel() for n, p in m.named_parameters() if "lora" in n) + rows


@pytest.mark.parametrize("schedule, words", [
    (Schedule(merge_layers=(1, 2), frames_per_merge=(2,)), "same length"),
    (Schedule(merge_layers=(1, 5), frames_per_merge=(2, 2)), "merge_layers"),
    (Schedule(merge_layers=(1, 2), frames_per_merge=(3, 2)), "not a multiple of 3"),
    (Schedule(r=9, merge_layers=(2,), frames_per_merge=(2,)), "r=9 does not fit"),
    (Schedule(merge_layers=(1,), frames_per_merge=(2,), keep_cross=0.0), "keep_cross"),
])
def test_schedule_that_does_not_fit_is_a_clear_error(tiny_clip, schedule, words):
    with pytest.raises(ValueError, match=words):
        tempme.TempMe(copy.deepcopy(tiny_clip[0]), schedule, frames=8)


def test_wrong_frame_count_is_a_clear_error(tiny_clip):
    m = tempme.TempMe(copy.deepcopy(tiny_clip[0]), SCHEDULES["tiny-clip"], frames=8, policy="none")
    with pytest.raises(ValueError, match="planned for 8 frames"):
        m.encode_video(torch.randn(1, 4, 3, 64, 64))


def test_tome_method(tiny_clip):
    clip = copy.deepcopy(tiny_clip[0])
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        stock = clip.encode_image(images)
        tome.apply(clip, r=0)
        assert torch.allclose(clip.encode_image(images), stock, atol=1e-5)
        state = tome.apply(clip, r=3, trace_source=True)
        clip.encode_image(images)
    assert state.tokens == tome.token_trace(17, 3, 3) == [14, 11, 8]
    groups = tome.patch_groups(state.source)
    assert groups.shape == (2, 16) and int(groups.min()) >= 1 and int(groups.max()) < 8
    tome.remove(clip)
    with torch.no_grad():
        assert torch.allclose(clip.encode_image(images), stock, atol=1e-6)


def test_the_official_randaugment_is_timms_own_one_draw_per_video():
    """TempMe trains on timm's rand-m7-n4-mstd0.5-inc1, bicubic (LunarShen/TempMe
    tvr/dataloaders/dataloader_retrieval.py:86-90), one draw for a video's list of frames
    (tvr/dataloaders/rand_augment.py:364-381): ours is timm's transform on the same seed."""
    import random

    import numpy as np
    from PIL import Image
    from timm.data.auto_augment import rand_augment_transform

    from clipadapt import profiles
    from clipadapt.core.pixels import MEAN, STD
    from clipadapt.data import augment
    from clipadapt.training import recipes

    config = "rand-m7-n4-mstd0.5-inc1"
    for profile in ("colab", "paper"):
        assert recipes.get("TempMe", profiles.get(profile), "lora").augment == "timm:" + config
    assert recipes.get("TempMe", profiles.get("tiny"), "lora").augment == "none"
    pics = torch.rand(4, 3, 32, 32)
    video = (pics - MEAN.view(3, 1, 1)) / STD.view(3, 1, 1)
    ours = augment.one("timm:" + config, video, torch.Generator().manual_seed(5))
    seed = int(torch.randint(2 ** 32, (1,), generator=torch.Generator().manual_seed(5)))
    tf = rand_augment_transform(config, {"translate_const": 14, "interpolation": Image.BICUBIC})
    frames = []
    for f in pics:  # every frame under the same seed: the official's one draw per video
        random.seed(seed)
        np.random.seed(seed)
        out = tf(Image.fromarray((f * 255).round().byte().permute(1, 2, 0).numpy()))
        frames.append(torch.from_numpy(np.asarray(out).copy()).permute(2, 0, 1))
    timms = (torch.stack(frames) / 255 - MEAN.view(3, 1, 1)) / STD.view(3, 1, 1)
    assert torch.equal(ours, timms) and not torch.allclose(ours, video)
    still = video[:1].repeat(3, 1, 1, 1)  # equal frames stay equal
    out = augment.one("timm:" + config, still, torch.Generator().manual_seed(1))
    assert all(torch.equal(out[0], f) for f in out)
    state = random.getstate()
    augment.one("timm:" + config, still, torch.Generator().manual_seed(1))
    assert random.getstate() == state  # the global streams are left as they were
