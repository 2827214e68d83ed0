"""LoRA as a parametrization of the fused QKV weight: stock outputs at B = 0, exact
merge / unmerge / removal, the trainable counts of the references, and the same LoRA on an
attention class other than ``nn.MultiheadAttention`` (open_clip main's ``Attention``)."""

import copy
import inspect

import open_clip
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from clipadapt.core import models
from clipadapt.methods import lora


@pytest.fixture(scope="module")
def b32_tok():
    return open_clip.get_tokenizer("ViT-B-32")


def _inputs(model, tok):
    s = model.visual.image_size
    s = s[0] if isinstance(s, (tuple, list)) else s
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 3, s, s, generator=g), tok(["a red circle.", "a small blue square moves."])


def _randomize_B(model, std=0.05):
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in lora.lora_modules(model):
            m.lora_B.copy_(std * torch.randn(m.lora_B.shape, generator=g))


@pytest.mark.parametrize("which", ["tiny", "ViT-B-32"])
def test_zero_B_is_stock_open_clip(which, tiny_clip, vit_b32, b32_tok):
    base, tok = (tiny_clip[0], tiny_clip[2]) if which == "tiny" else (vit_b32, b32_tok)
    model = copy.deepcopy(base)
    adapters = lora.add_lora(model, rank=4)
    assert all(isinstance(a, lora.LoRA) and not a.merged for a in adapters)
    x, ids = _inputs(model, tok)
    with torch.no_grad():
        assert torch.allclose(model.encode_image(x), base.encode_image(x), atol=1e-5)
        assert torch.allclose(model.encode_text(ids), base.encode_text(ids), atol=1e-5)


def test_trained_B_changes_outputs_and_merge_unmerge_remove_agree(tiny_clip):
    base, _, tok = tiny_clip
    model = copy.deepcopy(base)
    adapters = lora.add_lora(model, rank=4)
    _randomize_B(model)
    x, ids = _inputs(model, tok)
    attn = model.visual.transformer.resblocks[0].attn
    W = attn.parametrizations.in_proj_weight.original.detach().clone()
    with torch.no_grad():
        img, txt = model.encode_image(x), model.encode_text(ids)
        assert not torch.allclose(img, base.encode_image(x), atol=1e-3)
        assert not torch.allclose(txt, base.encode_text(ids), atol=1e-3)

        assert lora.merge_lora(model) == 6
        assert torch.allclose(attn.parametrizations.in_proj_weight.original, W + adapters[0].delta())
        assert torch.allclose(model.encode_image(x), img, atol=1e-4)
        assert torch.allclose(model.encode_text(ids), txt, atol=1e-4)
        assert lora.merge_lora(model) == 6  # merging twice adds nothing
        assert torch.allclose(model.encode_image(x), img, atol=1e-4)

        for a in adapters:
            a.unmerge()
        assert torch.allclose(attn.parametrizations.in_proj_weight.original, W, atol=1e-6)
        assert torch.allclose(model.encode_image(x), img, atol=1e-4)

        kept = copy.deepcopy(model)
        assert lora.remove_lora(model, merge=True) == 6
        assert torch.allclose(model.encode_image(x), img, atol=1e-4)
        assert torch.allclose(model.encode_text(ids), txt, atol=1e-4)
        assert lora.remove_lora(kept, merge=False) == 6  # (the copy survives removal from the original)
        assert torch.allclose(kept.encode_image(x), base.encode_image(x), atol=1e-6)
    for m in (model, kept):  # plain modules, stock keys, nothing trainable left behind
        assert type(m.visual.transformer.resblocks[0].attn) is type(base.visual.transformer.resblocks[0].attn)
        assert set(m.state_dict()) == set(base.state_dict())
        assert not lora.lora_modules(m)


def test_deepcopy_and_state_dict_round_trip(tiny_clip):
    base, _, tok = tiny_clip
    model = copy.deepcopy(base)
    lora.add_lora(model, rank=4)
    _randomize_B(model)
    x, _ = _inputs(model, tok)
    twin = copy.deepcopy(model)
    state = model.state_dict()
    assert "visual.transformer.resblocks.0.attn.parametrizations.in_proj_weight.0.lora_B" in state
    fresh = copy.deepcopy(base)
    lora.add_lora(fresh, rank=4)
    fresh.load_state_dict(state)
    with torch.no_grad():
        want = model.encode_image(x)
        assert torch.equal(twin.encode_image(x), want)
        assert torch.equal(fresh.encode_image(x), want)
        twin.visual.transformer.resblocks[0].attn.parametrizations.in_proj_weight[0].lora_B.zero_()
        assert torch.equal(model.encode_image(x), want)  # the copy owns its adapters
        lora.merge_lora(twin)  # ... and merges into its own weights
        assert torch.equal(model.encode_image(x), want)


def test_trainable_counts_on_vit_b32(vit_b32):
    model = copy.deepcopy(vit_b32)
    adapters = lora.add_lora(model, rank=8)
    assert len(adapters) == 24
    visual = sum(p.numel() for a in adapters[:12] for p in (a.lora_A, a.lora_B))
    text = sum(p.numel() for a in adapters[12:] for p in (a.lora_A, a.lora_B))
    assert (visual, text) == (294_912, 196_608)
    assert models.count_parameters(model).trainable == 491_520
    assert adapters[0].lora_A.shape == (8, 768) and adapters[0].lora_B.shape == (3 * 768, 8)


def test_trainable_count_on_the_tiny_model(tiny_clip):
    model = copy.deepcopy(tiny_clip[0])
    lora.add_lora(model)
    assert models.count_parameters(model).trainable == 24_576


def test_initialisation_and_scaling():
    a = lora.LoRA(12, 4, rank=2)
    assert torch.equal(a.lora_B, torch.zeros(12, 2)) and a.lora_A.abs().sum() > 0
    assert a.scaling == 1.0  # alpha None: no alpha / r scaling, as TempMe's code
    assert lora.LoRA(12, 4, rank=8, alpha=16).scaling == 2.0
    with torch.no_grad():
        a.lora_B.normal_()
    w = torch.randn(12, 4, dtype=torch.float64)
    out = a(w)
    assert out.dtype == torch.float64  # cast to the weight's dtype
    assert torch.allclose(out, w + (a.lora_B @ a.lora_A).double())
    a.merged = True
    assert a(w) is w


def test_gradients_reach_only_the_adapters(tiny_clip):
    model = copy.deepcopy(tiny_clip[0])
    lora.add_lora(model, rank=2, towers=("visual",))
    model.encode_image(torch.randn(2, 3, 64, 64)).sum().backward()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(n.rsplit(".", 1)[-1] in ("lora_A", "lora_B") for n in trainable)
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad)
    assert all(p.grad is None for n, p in model.named_parameters() if not p.requires_grad)


def test_errors_are_clear(tiny_clip):
    # every weight trainable to start with, whatever another test left on the shared CLIP
    model = copy.deepcopy(tiny_clip[0]).requires_grad_(True)
    with pytest.raises(ValueError, match="rank must be an integer of at least 1, got 0"):
        lora.add_lora(model, rank=0)
    with pytest.raises(ValueError, match="towers must name .* got 'audio'"):
        lora.add_lora(model, towers=("visual", "audio"))
    assert not lora.lora_modules(model)  # nothing was changed by the failed calls
    assert all(p.requires_grad for p in model.parameters())
    lora.add_lora(model, towers=("text",))
    with pytest.raises(ValueError, match="already has LoRA"):
        lora.add_lora(model, towers=("text",))
    with pytest.raises(TypeError, match=r"model.visual \(ModifiedResNet\) has no transformer blocks"):
        lora.add_lora(models.create("RN50"), towers=("visual",))
    empty = copy.deepcopy(tiny_clip[0])
    empty.transformer.resblocks = nn.ModuleList()
    with pytest.raises(ValueError, match="resblocks is empty"):
        lora.add_lora(empty, towers=("text",))
    odd = _StandInCLIP(width=32, layers=1)
    odd.visual.transformer.resblocks[0].attn = nn.MultiheadAttention(32, 4, kdim=16, vdim=16)  # no fused weight
    with pytest.raises(TypeError, match=r"resblocks\[0\].attn \(MultiheadAttention\) has no fused in_proj_weight"):
        lora.add_lora(odd)
    with pytest.raises(RuntimeError, match="not registered"):
        lora.LoRA(6, 2, rank=1).merge()


# -- open_clip main's attention: own class, own forward, output only ----------------------------
class _MainStyleAttention(nn.Module):
    """A small stand-in of open_clip main's ``Attention``: fused ``in_proj_weight`` (3d, d) and
    ``in_proj_bias``, ``out_proj``, batch-first, its own forward on top of
    ``F.scaled_dot_product_attention``, returning only the output."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.randn(3 * dim, dim) * dim ** -0.5)
        self.in_proj_bias = nn.Parameter(0.1 * torch.randn(3 * dim))
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x, attn_mask=None):
        N, L, C = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)  # 3 x (N, L, C)
        q, k, v = (t.reshape(N, L, self.heads, -1).transpose(1, 2) for t in (q, k, v))  # (N, h, L, C/h)
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out_proj(x.transpose(1, 2).reshape(N, L, C))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = _MainStyleAttention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class _Tower(nn.Module):
    def __init__(self, width, layers, heads=4):
        super().__init__()
        self.transformer = nn.Module()
        self.transformer.resblocks = nn.ModuleList(_Block(width, heads) for _ in range(layers))

    def forward(self, x):
        for block in self.transformer.resblocks:
            x = block(x)
        return x


class _StandInCLIP(nn.Module):
    """Just the parts add_lora looks at: ``visual.transformer.resblocks`` and ``transformer.resblocks``."""

    def __init__(self, width=32, layers=2):
        super().__init__()
        torch.manual_seed(0)
        self.visual = _Tower(width, layers)
        self.transformer = _Tower(width, layers).transformer


def _explicit(block: _Block, x, weight):
    """The block computed by hand with a given QKV weight, heads written out."""
    h = block.ln_1(x)
    d = h.shape[-1]
    q, k, v = (h @ weight[i * d:(i + 1) * d].T + block.attn.in_proj_bias[i * d:(i + 1) * d] for i in range(3))
    heads = block.attn.heads
    split = lambda t: t.reshape(*t.shape[:2], heads, -1).transpose(1, 2)  # (N, h, L, d/h)
    q, k, v = split(q), split(k), split(v)
    att = (q @ k.transpose(-1, -2) / (d // heads) ** 0.5).softmax(-1)
    x = x + block.attn.out_proj((att @ v).transpose(1, 2).reshape(*x.shape))
    return x + block.mlp(block.ln_2(x))


def test_same_lora_on_a_main_style_attention_class():
    model = _StandInCLIP()
    stock = copy.deepcopy(model)
    x = torch.randn(3, 7, 32)
    adapters = lora.add_lora(model, rank=4)
    assert len(adapters) == 4
    block = model.visual.transformer.resblocks[0]
    with torch.no_grad():
        assert torch.allclose(model.visual(x), stock.visual(x), atol=1e-6)
        _randomize_B(model, std=0.2)
        W = block.attn.parametrizations.in_proj_weight.original
        a = adapters[0]
        assert not torch.allclose(block(x), stock.visual.transformer.resblocks[0](x), atol=1e-3)
        assert torch.allclose(block(x), _explicit(block, x, W + a.lora_B @ a.lora_A), atol=1e-5)
        assert torch.allclose(_explicit(stock.visual.transformer.resblocks[0], x, W),
                              stock.visual.transformer.resblocks[0](x), atol=1e-5)  # (the hand computation is right)
        merged = copy.deepcopy(model)
        lora.merge_lora(merged)
        assert torch.allclose(merged.visual(x), model.visual(x), atol=1e-5)
        lora.remove_lora(merged)
        assert type(merged.visual.transformer.resblocks[0].attn) is _MainStyleAttention
        assert torch.allclose(merged.visual(x), model.visual(x), atol=1e-5)
    model.visual(x).sum().backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None}
    assert grads and all(n.rsplit(".", 1)[-1] in ("lora_A", "lora_B") for n in grads)
    assert len(grads) == 2 * 2  # the two image blocks' A and B


@pytest.mark.skipif("block_type" not in inspect.signature(open_clip.transformer.Transformer).parameters,
                    reason="this open_clip has no Transformer(block_type=...)")
def test_open_clips_own_attention_class():
    blocks = open_clip.transformer.Transformer(64, 2, 4, block_type="custom").eval()
    assert not isinstance(blocks.resblocks[0].attn, nn.MultiheadAttention)
    holder = nn.Module()
    holder.transformer = blocks
    x = torch.randn(2, 10, 64)
    with torch.no_grad():
        stock = blocks(x)
        lora.add_lora(holder, rank=4, towers=("text",))
        assert torch.allclose(blocks(x), stock, atol=1e-6)
        _randomize_B(holder)
        assert not torch.allclose(blocks(x), stock, atol=1e-3)
