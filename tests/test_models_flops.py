import logging

import pytest
import torch

from clipadapt.core import flops, models


def test_vit_b32_anatomy(vit_b32):
    # reference/vop_tempme.md: CLIP ViT-B/32 has 151,277,313 parameters
    assert models.count_parameters(vit_b32).total == 151_277_313
    assert models.count_parameters(vit_b32.visual).total == 87_849_216


def test_vit_b32_macs_match_analytic_count(vit_b32):
    counted = flops.count_macs(vit_b32.encode_image, torch.randn(1, 3, 224, 224))
    analytic = flops.vit_macs(224, 32, 768, 12, output_dim=512)
    assert counted.total == analytic == 4_408_811_520
    assert round(counted.giga, 1) == 4.4  # the papers' 4.4 G per frame
    # the attention products (Q K^T and A V) are in the count: 12 layers x 2 x 50^2 x 768
    assert counted.by_operator["_scaled_dot_product_flash_attention_for_cpu"] == 12 * 2 * 50 * 50 * 768


def test_macs_scale_with_frames(vit_b32):
    one = flops.count_macs(vit_b32.encode_image, torch.randn(1, 3, 224, 224)).total
    twelve = flops.count_macs(vit_b32.encode_image, torch.randn(12, 3, 224, 224)).total
    assert twelve == 12 * one  # 52.9 G for a 12-frame video


def test_tiny_macs_and_fastpath_restored(tiny_clip):
    model = tiny_clip[0]
    before = torch.backends.mha.get_fastpath_enabled()
    c = flops.count_macs(model.encode_image, torch.randn(1, 3, 64, 64))
    assert c.total == flops.vit_macs(64, 16, 128, 3, output_dim=128)
    assert torch.backends.mha.get_fastpath_enabled() == before


def test_meta_count_equals_the_cpu_count_and_leaves_the_model_alone(tiny_clip):
    model = tiny_clip[0]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images = torch.randn(2, 3, 64, 64)
    on_cpu = flops.count_macs(model.encode_image, images)
    on_meta = flops.count_macs_on_meta(model.encode_image, images)
    assert on_meta.total == on_cpu.total  # (attention is bmm there, the flash kernel here)
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with pytest.raises(TypeError, match="bound method"):
        flops.count_macs_on_meta(lambda x: model.encode_image(x), images)
    assert flops.owner(model.encode_image) == (model, "encode_image") and flops.owner(model) == (model, None)
    assert flops.owner(lambda x: x) is None


def test_recurrent_layers_are_left_out_on_every_device():
    # an LSTM between two linear layers: only the linear layers count, on the CPU (where
    # the fused kernel is invisible) and on the meta device (where it runs as matrix products)
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.rnn, self.b = torch.nn.Linear(8, 16), torch.nn.LSTM(16, 16), torch.nn.Linear(16, 4)

        def forward(self, x):  # x: (T, 8)
            return self.b(self.rnn(self.a(x))[0])

    net, x = Net(), torch.randn(5, 8)
    linear = 5 * 8 * 16 + 5 * 16 * 4
    assert flops.count_macs(net, x).total == linear
    assert flops.count_macs_on_meta(net.forward, x).total == linear
    assert flops.count_macs_on_meta(net, x).total == linear  # a module: its call


def test_timer():
    t = flops.time_forward(lambda x: x @ x, torch.randn(64, 64), items=64, warmup=1, repeats=3)
    assert len(t.times_s) == 3 and t.median_s > 0 and t.throughput > 0
    with pytest.raises(ValueError, match="repeats"):
        flops.time_forward(lambda: None, repeats=0)


def test_load_clip_returns_model_preprocess_tokenizer(tiny_clip):
    model, preprocess, tokenizer = tiny_clip
    ids = tokenizer(["a photo of a red circle."])
    assert ids.shape == (1, 32)
    from PIL import Image

    x = preprocess(Image.new("RGB", (100, 80), (255, 0, 0)))
    assert x.shape == (3, 64, 64)
    with torch.no_grad():
        assert model.encode_image(x[None]).shape == (1, 128)


def test_synthetic_weights_load_into_stock_open_clip(tiny_clip):
    import open_clip

    stock = open_clip.create_model("tiny-clip", pretrained=None)
    from clipadapt.core.checkpoints import load_checkpoint

    load_checkpoint(stock, models.weights_path("tiny-clip"))
    ids = tiny_clip[2](["a photo of a circle."])
    with torch.no_grad():
        assert torch.equal(stock.encode_text(ids), tiny_clip[0].encode_text(ids))


def test_freeze_and_count(tiny_clip):
    model = models.create("tiny-clip")
    models.freeze(model)
    assert models.count_parameters(model).trainable == 0
    models.unfreeze(model.visual)
    c = models.count_parameters(model)
    assert c.trainable == models.count_parameters(model.visual).total and 0 < c.fraction < 1
    rows = dict((name, (t, n)) for name, t, n in models.parameter_table(model))
    assert rows["visual"][0] == rows["visual"][1] and rows["transformer"][0] == 0
    assert sum(n for _, n in rows.values()) == c.total


def test_random_model_is_quiet(caplog):
    with caplog.at_level(logging.WARNING):
        models.create("tiny-clip")
    assert "No pretrained weights" not in caplog.text


def test_errors_name_the_way_out(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="unknown model 'ViT-Q-99'"):
        models.create("ViT-Q-99")
    with pytest.raises(ValueError, match="only for the tiny models"):
        models.create("ViT-B-32", pretrained="synthetic")

    import open_clip

    def offline(*args, **kwargs):
        raise OSError("no connection")

    monkeypatch.setattr(open_clip, "create_model", offline)
    with pytest.raises(models.WeightsUnavailableError, match="'tiny' profile"):
        models.create("ViT-B-32", pretrained="openai")
    monkeypatch.undo()
    monkeypatch.setattr(models, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(models.WeightsUnavailableError, match="python -m clipadapt.pretrain"):
        models.create("tiny-clip", pretrained="synthetic")


def test_normalize_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        models.normalize(torch.zeros(3, 8, 8))


@pytest.mark.parametrize("name, total", [("ViT-B-16", 149_620_737), ("RN50", 102_007_137)])
def test_other_open_clip_architectures_load(name, total):
    model, preprocess, tokenizer = models.load_clip(name)
    assert models.count_parameters(model).total == total
    assert tokenizer(["a photo of a cat."]).shape == (1, 77)
