"""Patching open_clip's blocks for token merging (clipadapt.core.patching): equivalence at r = 0,
token counts, unchanged checkpoints, exact undo, and LoRA parametrizations honoured."""

import copy

import open_clip
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from clipadapt.core import merge as tm
from clipadapt.core import patching


def _images(n=3, size=64, seed=0):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def tiny(tiny_clip):
    model = tiny_clip[0]
    yield model
    patching.remove(model.visual)


def _tokens_per_frame(visual):
    return visual.grid_size[0] * visual.grid_size[1] + 1


@pytest.mark.parametrize("name", ["tiny", "vit_b32"])
def test_r_zero_gives_stock_encode_image(name, request):
    model = request.getfixturevalue("tiny_clip")[0] if name == "tiny" else request.getfixturevalue("vit_b32")
    x = _images(2, model.visual.image_size[0])
    try:
        with torch.no_grad():
            stock = model.encode_image(x)
            state = patching.apply(model.visual, r=0)
            patched = model.encode_image(x)
        assert torch.allclose(patched, stock, atol=1e-5, rtol=1e-4)
        n = _tokens_per_frame(model.visual)
        assert state.tokens == [n] * len(model.visual.transformer.resblocks)
    finally:
        patching.remove(model.visual)


def test_r_drops_tokens_by_r_per_layer_and_keeps_the_output_shape(tiny):
    x = _images()
    state = patching.apply(tiny.visual, r=2)
    with torch.no_grad():
        out = tiny.encode_image(x)
    n, layers = _tokens_per_frame(tiny.visual), len(tiny.visual.transformer.resblocks)
    assert out.shape == (3, tiny.visual.output_dim)
    assert state.tokens == [n - 2 * (i + 1) for i in range(layers)] == tm.token_counts(n, [2] * layers)
    state.set_r([0, 5, 100])  # per layer; the last request is clipped
    with torch.no_grad():
        tiny.encode_image(x)
    assert state.tokens == tm.token_counts(n, [0, 5, 100]) == [17, 12, 7]


def test_vit_b32_token_counts(vit_b32):
    try:
        state = patching.apply(vit_b32.visual, r=2)
        with torch.no_grad():
            out = vit_b32.encode_image(_images(1, 224))
        assert out.shape == (1, 512)
        assert state.tokens == list(range(48, 48 - 2 * 12, -2))  # ImgMe's 50 -> 26 on B/32
    finally:
        patching.remove(vit_b32.visual)


def test_sizes_and_provenance_through_the_encoder(tiny):
    state = patching.apply(tiny.visual, r=3, trace_source=True)
    with torch.no_grad():
        tiny.encode_image(_images())
    n = _tokens_per_frame(tiny.visual)
    assert state.source.shape == (3, state.tokens[-1], n)
    assert torch.equal(state.source.sum(1), torch.ones(3, n))  # a partition of the patches
    assert torch.equal(state.source.sum(-1, keepdim=True), state.size)
    assert torch.equal(state.source[:, 0, 0], torch.ones(3))  # the class token stays itself


def test_state_dict_keys_and_values_unchanged(tiny):
    before = tiny.state_dict()
    patching.apply(tiny.visual, r=2)
    after = tiny.state_dict()
    assert list(after) == list(before)
    assert all(after[k] is before[k] or torch.equal(after[k], before[k]) for k in before)
    tiny.load_state_dict(before)  # a stock checkpoint loads strictly into the patched model


def test_remove_restores_stock_classes_and_exact_outputs(tiny):
    x = _images()
    visual = tiny.visual
    classes = [type(m) for m in visual.modules()]
    with torch.no_grad():
        stock = tiny.encode_image(x)
        patching.apply(visual, r=2, trace_source=True)
        assert type(visual.transformer.resblocks[0]).__name__.startswith("Merging")
        assert patching.state_of(visual) is not None
        patching.remove(visual)
        again = tiny.encode_image(x)
    assert [type(m) for m in visual.modules()] == classes
    assert type(visual.transformer) is open_clip.transformer.Transformer
    assert torch.equal(again, stock)
    assert patching.state_of(visual) is None
    assert not any(hasattr(m, "_merge_state") for m in visual.modules())
    patching.remove(visual)  # removing twice does nothing


class _PlusDelta(nn.Module):
    """A LoRA-like parametrization: W -> W + delta."""

    def __init__(self, shape, seed=0):
        super().__init__()
        self.delta = nn.Parameter(0.05 * torch.randn(shape, generator=torch.Generator().manual_seed(seed)))

    def forward(self, w):
        return w + self.delta


def test_lora_parametrization_changes_patched_and_stock_alike(tiny_clip):
    model = copy.deepcopy(tiny_clip[0])
    x = _images()
    blocks = model.visual.transformer.resblocks
    with torch.no_grad():
        stock = model.encode_image(x)
        patching.apply(model.visual, r=0)
        patched = model.encode_image(x)
        patching.remove(model.visual)
    for i, block in enumerate(blocks):
        lora = _PlusDelta(block.attn.in_proj_weight.shape, seed=i)
        parametrize.register_parametrization(block.attn, "in_proj_weight", lora)
    with torch.no_grad():
        stock_lora = model.encode_image(x)
    patching.apply(model.visual, r=0)
    patched_lora = model.encode_image(x)
    assert not torch.allclose(stock_lora, stock, atol=1e-3)  # the delta matters
    assert torch.allclose(patched_lora - patched, stock_lora - stock, atol=1e-5)
    assert torch.allclose(patched_lora, stock_lora, atol=1e-5)
    patched_lora.sum().backward()  # and gradients reach the adapter through the patched block
    assert all(b.attn.parametrizations.in_proj_weight[0].delta.grad is not None for b in blocks)


def test_open_clips_own_attention_class_works_too():
    blocks = open_clip.transformer.Transformer(64, 2, 4, block_type="custom").eval()  # Attention, not MHA
    x = torch.randn(2, 10, 64)
    with torch.no_grad():
        stock = blocks(x)
        state = patching.apply(blocks, r=0)
        assert torch.allclose(blocks(x), stock, atol=1e-6)
        state.set_r(2)
        assert blocks(x).shape == (2, 6, 64) and state.tokens == [8, 6]


def test_errors_are_clear(tiny):
    with pytest.raises(ValueError, match="model.visual"):
        patching.apply(tiny)
    with pytest.raises(TypeError, match="Linear"):
        patching.apply(nn.Linear(2, 2))
    state = patching.apply(tiny.visual, r=1)
    with pytest.raises(ValueError, match=r"3 of them .* got \[1, 2\]"):
        state.set_r([1, 2])
    with pytest.raises(ValueError, match="attn_mask"):
        tiny.visual.transformer.resblocks[0](torch.zeros(1, 17, 128), attn_mask=torch.zeros(17, 17))
    again = patching.apply(tiny.visual, r=0)  # re-applying starts afresh
    assert patching.state_of(tiny.visual) is again is not state
