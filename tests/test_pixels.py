import open_clip
import pytest
import torch

from clipadapt.core import models, pixels


def test_statistics_are_openais_and_models_re_exports_them():
    assert torch.equal(pixels.MEAN, torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1))
    assert torch.equal(pixels.STD, torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1))
    assert models.MEAN is pixels.MEAN and models.STD is pixels.STD  # notebooks write models.MEAN
    assert models.normalize is pixels.normalize and models.denormalize is pixels.denormalize


def test_normalize_and_denormalize_round_trip():
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    y = pixels.normalize(x)
    assert torch.allclose(y.mean((0, 2, 3)), ((x - pixels.MEAN) / pixels.STD).mean((0, 2, 3)))
    assert torch.allclose(pixels.denormalize(y), x, atol=1e-6)
    assert torch.allclose(pixels.normalize(pixels.denormalize(y)), y, atol=1e-5)
    far = pixels.denormalize(torch.full((1, 3, 2, 2), 10.0))  # beyond any picture: clipped for showing
    assert far.min() >= 0 and far.max() <= 1


def test_normalize_uint8_is_normalize_of_scaled_frames_exactly():
    frames = torch.randint(0, 256, (3, 5, 7, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    x = pixels.normalize_uint8(frames)
    assert x.shape == (3, 3, 5, 7) and x.is_contiguous()
    assert torch.equal(x, pixels.normalize(frames.permute(0, 3, 1, 2).float() / 255.0))


def test_wrong_shapes_are_named():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\), got \(3, 8, 8\)"):
        pixels.normalize(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\), got \(2, 8, 8, 3\)"):
        pixels.normalize(torch.zeros(2, 8, 8, 3))  # channels last: a decoded frame, not a model input
    with pytest.raises(ValueError, match=r"normalised images of shape \(B, 3, H, W\), got \(8, 8\)"):
        pixels.denormalize(torch.zeros(8, 8))
    with pytest.raises(ValueError, match=r"uint8 frames of shape \(B, H, W, 3\), got torch.float32"):
        pixels.normalize_uint8(torch.zeros(2, 8, 8, 3))
    with pytest.raises(ValueError, match=r"got torch.uint8 \(2, 3, 8, 8\)"):
        pixels.normalize_uint8(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
