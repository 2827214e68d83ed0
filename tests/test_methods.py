"""Equivalence with stock open_clip and exact trainable-parameter counts of the Part I
methods (reference/scpnet_softcpt.md section 0 and reference/vop_tempme.md sections 1.2, 2.2).
LoRA's tests are in test_lora.py."""

import copy

import open_clip
import pytest
import torch
from clipadapt.core import models, prompting
from clipadapt.methods import coop, vpt


@pytest.fixture(scope="module")
def b32():
    model, _, tokenizer = models.load_clip("ViT-B-32")
    return model, tokenizer


@pytest.mark.parametrize("name", ["tiny-clip", "ViT-B-32", "ViT-B-16", "RN50"])
def test_encoders_without_prompts_are_stock(name):
    model, _, tok = models.load_clip(name)
    ids = tok(["a photo of a red circle.", "x"])
    with torch.no_grad():
        stock = model.encode_text(ids)
        assert torch.allclose(prompting.encode_text_prompted(model, ids), stock, atol=1e-5)
        empty = [torch.zeros(0, model.transformer.width)] * len(model.transformer.resblocks)
        assert torch.allclose(prompting.encode_text_prompted(model, ids, empty), stock, atol=1e-5)
        if hasattr(model.visual, "conv1") and name != "RN50":
            s = model.visual.image_size[0]
            x = torch.randn(2, 3, s, s)
            zero = torch.zeros(len(model.visual.transformer.resblocks), 0, model.visual.transformer.width)
            assert torch.allclose(prompting.encode_image_prompted(model.visual, x, zero), model.encode_image(x), atol=1e-5)


def test_rn50_has_no_deep_visual_prompts():
    model = models.create("RN50")
    with pytest.raises(TypeError, match="ViT image encoder"):
        prompting.encode_image_prompted(model.visual, torch.randn(1, 3, 224, 224))


def test_deep_prompts_change_the_output_and_are_dropped(tiny_clip):
    model, _, tok = tiny_clip
    ids = tok(["a photo of a circle."])
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        p = torch.randn(3, 4, 128)
        assert not torch.allclose(prompting.encode_text_prompted(model, ids, p), model.encode_text(ids))
        assert not torch.allclose(prompting.encode_image_prompted(model.visual, x, p), model.encode_image(x))
        # per-example prompts equal shared ones when they are the same
        shared = prompting.encode_image_prompted(model.visual, x.expand(2, -1, -1, -1), p)
        per = prompting.encode_image_prompted(model.visual, x.expand(2, -1, -1, -1), p.unsqueeze(1).expand(-1, 2, -1, -1))
        assert torch.allclose(shared, per, atol=1e-6)
    with pytest.raises(ValueError, match="4 layers of visual prompts"):
        prompting.encode_image_prompted(model.visual, x, torch.zeros(4, 1, 128))
    with pytest.raises(ValueError, match=r"\(batch=1, P, width\)"):
        prompting.encode_image_prompted(model.visual, x, [torch.zeros(2, 1, 128)])


def test_causal_mask_holds_with_prompts(tiny_clip):
    # prompts after SOT are seen by every word, but a word never sees the words after it:
    # changing everything after position 1 leaves the features read at position 1 alone
    model, _, tok = tiny_clip
    ids = tok(["a circle."])
    p = [torch.randn(2, 128)] * 3
    with torch.no_grad():
        x = prompting.token_embeddings(model, ids)
        y = x.clone()
        y[0, 2:] += torch.randn_like(y[0, 2:])  # (a constant shift would vanish in the layer norm)
        a = prompting.encode_text_embeddings(model, x, torch.tensor([1]), p)
        b = prompting.encode_text_embeddings(model, y, torch.tensor([1]), p)
        c = prompting.encode_text_embeddings(model, y, torch.tensor([3]), p)
        d = prompting.encode_text_embeddings(model, x, torch.tensor([3]), p)
    assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(c, d, atol=1e-3)


def test_coop_from_words_is_stock_clip(b32):
    model, tok = b32
    names = ["cat", "golden retriever", "aeroplane"]
    m = coop.CoOp(model, tok, names, init="a photo of a")
    assert m.n_ctx == 4
    with torch.no_grad():
        ours = m.text_features()
        stock = model.encode_text(tok([f"a photo of a {n}." for n in names]))
    assert torch.allclose(ours, stock, atol=1e-5)


@pytest.mark.parametrize("position", ["middle", "front"])
def test_coop_class_positions(tiny_clip, position):
    model, _, tok = tiny_clip
    # CoOp freezes the CLIP it is given: a copy, so the session's shared CLIP stays as it was
    m = coop.CoOp(copy.deepcopy(model), tok, ["circle", "large square"], n_ctx=4, class_position=position)
    emb = m.prompt_embeddings()
    assert emb.shape == (2, 32, 128)
    words = model.token_embedding(tok(["large square."]))[0, 1:3]
    start = 1 if position == "front" else 3
    assert torch.allclose(emb[1, start:start + 2], words)


def test_coop_parameter_counts(b32):
    model, tok = b32
    names = [f"class {i}" for i in range(10)]
    shared = coop.CoOp(model, tok, names, n_ctx=16)
    assert models.count_parameters(shared).trainable == 8_192
    csc = coop.CoOp(model, tok, names, n_ctx=16, class_specific=True)
    assert models.count_parameters(csc).trainable == 10 * 8_192


def test_coop_trains_only_its_context(tiny_clip):
    model = models.create("tiny-clip", pretrained="synthetic")
    m = coop.CoOp(model, tiny_clip[2], ["circle", "square"], n_ctx=4)
    logits = m(torch.randn(3, 3, 64, 64))
    logits.sum().backward()
    assert m.ctx.grad is not None and model.token_embedding.weight.grad is None
    with pytest.raises(ValueError, match="context length 32"):
        coop.CoOp(model, tiny_clip[2], ["circle"], n_ctx=40)
    with pytest.raises(ValueError, match="class_position"):
        coop.CoOp(model, tiny_clip[2], ["circle"], class_position="left")


def test_vpt_counts_and_zero_prompts(b32):
    model, _ = b32
    m = vpt.DeepVisualPrompts(model, n_prompts=8)
    assert models.count_parameters(m).trainable == 73_728
    zero = vpt.DeepVisualPrompts(model, n_prompts=0)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(zero.encode_image(x), model.encode_image(x), atol=1e-5)


def _shrunk_clip(config_name):
    """open_clip's config ``config_name`` with its pooling and masking settings kept but its
    sizes cut down, so that it builds in a moment on the CPU (no weights are needed)."""
    cfg = open_clip.get_model_config(config_name)
    if cfg is None:
        pytest.skip(f"this open_clip has no {config_name} config")
    vision = {**cfg["vision_cfg"], "image_size": 32, "patch_size": 16, "width": 64, "layers": 2, "head_width": 32}
    text = {**cfg["text_cfg"], "context_length": 16, "vocab_size": 1000, "width": 64, "heads": 4, "layers": 2}
    torch.manual_seed(0)
    return open_clip.model.CLIP(embed_dim=32, vision_cfg=vision, text_cfg=text).eval()


@pytest.mark.parametrize("config_name, pool", [("ViT-L-14-CLIPA", "last"), ("ViT-L-14-worldwide", "eos")])
def test_prompting_follows_the_models_pooling(config_name, pool):
    # CLIPA: text pooled at the last token without a causal mask, images averaged over the
    # patches with ln_post after pooling and no ln_pre; worldwide: text pooled at its eos id
    model = _shrunk_clip(config_name)
    assert getattr(model, "text_pool_type", None) == pool
    ids = torch.randint(2, 1000, (3, 16), generator=torch.Generator().manual_seed(0))
    if pool == "eos":
        eos = model.text_eos_id
        for row, (at, biggest) in enumerate([(4, 2), (15, 3), (7, 0)]):  # the largest id is not the eos
            ids[row, at + 1:] = 0  # padding
            ids[row, at], ids[row, biggest] = eos, 999
        assert prompting.text_pool_index(model, ids).tolist() == [4, 15, 7]
    else:
        assert prompting.text_pool_index(model, ids).tolist() == [15, 15, 15]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(prompting.encode_text_prompted(model, ids), model.encode_text(ids), atol=1e-5)
        zero = torch.zeros(2, 0, 64)
        assert torch.allclose(prompting.encode_image_prompted(model.visual, x, zero), model.encode_image(x), atol=1e-5)


@pytest.mark.parametrize("pool", ["first", "last", "argmax"])
def test_text_pooling_follows_text_pool_type_on_the_tiny_model(tiny_clip, pool):
    model, _, tok = tiny_clip
    model = copy.deepcopy(model)
    model.text_pool_type = pool
    ids = tok(["a photo of a red circle.", "x"])
    with torch.no_grad():
        assert torch.allclose(prompting.encode_text_prompted(model, ids), model.encode_text(ids), atol=1e-5)
    assert torch.equal(prompting.eot_index(ids), ids.argmax(-1))  # without the model: CLIP's end of text
    model.text_pool_type = "none"
    with pytest.raises(ValueError, match="text_pool_type 'none'"):
        prompting.text_pool_index(model, ids)


def test_image_head_is_the_models_own(tiny_clip):
    visual = tiny_clip[0].visual
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        tokens = prompting.encode_image_prompted(visual, x, pool=False)
        assert torch.allclose(prompting.image_head(visual, tokens), visual(x), atol=1e-6)
    with pytest.raises(ValueError, match=r"\(N, L, width\)"):
        prompting.image_head(visual, tokens[:, 0])
