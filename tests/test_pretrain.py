import dataclasses

import pytest
import torch

from clipadapt import pretrain, profiles
from clipadapt.core import features, models
from clipadapt.core.checkpoints import read_checkpoint
from clipadapt.data import worlds
from clipadapt.experiments import settings


def test_shipped_weights_were_made_by_the_current_recipe():
    _, meta = read_checkpoint(models.weights_path("tiny-clip"))
    assert meta["model"] == "tiny-clip"
    assert meta["recipe"] == dataclasses.asdict(settings.of(profiles.get("tiny")).chapter1.pretrain), (
        "the recipe changed since the weights were made: run `make weights`")
    assert len(meta["loss"]) == meta["recipe"]["steps"]


def test_shipped_tiny_clip_meets_the_targets(tiny_clip):
    model, _, tokenizer = tiny_clip
    result = pretrain.evaluate(model, tokenizer, n_images=1000, n_pairs=200)
    assert result["zero_shot"]["shape"] >= 0.90
    assert result["zero_shot"]["colour"] >= 0.90
    for attr in worlds.ATTRIBUTES:
        assert result["zero_shot"][attr] > result["chance"][attr] + 0.2
    assert result["retrieval"]["image_to_text"]["R@1"] > 10  # chance is 0.5%


def test_short_pretraining_is_deterministic_and_learns():
    prof = profiles.get("tiny")
    recipe = dataclasses.replace(settings.of(prof).chapter1.pretrain, steps=40, warmup=5, batch_size=32)
    _, _, h1 = pretrain.pretrain(recipe, device="cpu", progress=False, stop_after=12)
    _, _, h2 = pretrain.pretrain(recipe, device="cpu", progress=False, stop_after=12)
    assert h1.loss == h2.loss
    assert len(h1.loss) == 12
    assert h1.loss[0] == pytest.approx(torch.log(torch.tensor(32.0)).item(), rel=0.25)


def test_distinct_scenes_are_distinct():
    w = worlds.ImageWorld(64)
    s = pretrain.distinct_scenes(w, 300, worlds.generator(0))
    assert len({tuple(a) for a in s.attrs[:, 0].tolist()}) == 300
    with pytest.raises(ValueError, match="only 300 distinct"):
        pretrain.distinct_scenes(w, 301, worlds.generator(0))


def test_class_features_are_normalised_means(tiny_clip):
    model, _, tokenizer = tiny_clip
    prompts = [["a photo of a circle.", "a circle."], ["a photo of a square."]]
    with torch.no_grad():
        cls = pretrain.class_features(model, tokenizer, prompts)
        one = features.encode_texts(model, tokenizer, prompts[0])
    assert cls.shape == (2, 128)
    assert torch.allclose(cls.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert torch.allclose(cls[0], torch.nn.functional.normalize(one.mean(0), dim=0), atol=1e-5)
