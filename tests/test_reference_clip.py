"""Our CLIP is OpenAI's CLIP: the same weights give the same features, logits, pixels and ids.

The reference is OpenAI's own code as published on PyPI (``clip-anytorch``, the ``clip``
package of github.com/openai/CLIP; a dev dependency). For ViT-B/32, ViT-B/16 and RN50 a
seeded random OpenAI model is built, its state dict (OpenAI's key names, float16 as
released) written to a file, and that file read twice: by OpenAI's ``clip.model.build_model``
(what ``clip.load`` does with a downloaded checkpoint) and by :func:`clipadapt.core.models.load_clip`
with the ``openai`` tag, through open_clip's loader of downloaded weights (the code path of the
``colab`` profile, less the download). Image features, text features and logits agree to 1e-5;
the same weights in open_clip's default GELU build do not. The evaluation transform and the
tokenizer are compared on a picture that is not square and on awkward captions.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import types

import open_clip
import pytest
import torch
from torch import nn

from clipadapt import profiles
from clipadapt.core import models

# OpenAI's clip.py imports `packaging` through setuptools' pkg_resources, which setuptools 81
# removed; it uses it for one torch version comparison. Hand it the `packaging` package itself.
# (test_fp16.py does the same; find_spec refuses the stand-in once it is in sys.modules)
if "pkg_resources" not in sys.modules and importlib.util.find_spec("pkg_resources") is None:
    import packaging.version

    sys.modules["pkg_resources"] = types.SimpleNamespace(packaging=packaging)

clip = pytest.importorskip("clip", reason="OpenAI's clip package (clip-anytorch) is in the dev extra")
from clip import model as openai_model  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-5)
# OpenAI's published architectures (clip/model.py's build_model reads these from a checkpoint)
ARCHITECTURES = {
    "ViT-B-32": dict(embed_dim=512, vision_layers=12, vision_width=768, vision_patch_size=32),
    "ViT-B-16": dict(embed_dim=512, vision_layers=12, vision_width=768, vision_patch_size=16),
    "RN50": dict(embed_dim=1024, vision_layers=(3, 4, 6, 3), vision_width=64, vision_patch_size=None),
}
TEXT = dict(image_resolution=224, context_length=77, vocab_size=49408, transformer_width=512, transformer_heads=8,
            transformer_layers=12)
CAPTIONS = [
    "a photo of a american_bulldog, a type of pet.",
    "Apply_Eye_Makeup",
    "3 dogs, 2 cats & 1 bird?!",
    "Café au lait: naïve résumé -- ÅÄÖ, 東京, 😀",
    "  spaced   out\ttext\n",
    "don't stop_believing #42 (v2.0) [sic]",
    "X X X X X X X X X X X X X X X X apple_pie.",
]


@contextlib.contextmanager
def plain_gelu(model: nn.Module):
    """``model`` with every QuickGELU swapped for GELU (what open_clip builds for the
    architecture without the tag's record), put back on exit."""
    swapped = []
    for module in model.modules():
        for name, child in list(module.named_children()):
            if isinstance(child, open_clip.model.QuickGELU):
                setattr(module, name, nn.GELU())
                swapped.append((module, name, child))
    try:
        yield len(swapped)
    finally:
        for module, name, child in swapped:
            setattr(module, name, child)


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def pair(request, tmp_path_factory):
    """``(name, OpenAI's model, ours, our preprocess, our tokenizer)`` from one random file."""
    torch.set_num_threads(1)
    name = request.param
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        released = openai_model.CLIP(**ARCHITECTURES[name], **TEXT)
    openai_model.convert_weights(released)  # OpenAI released float16 weights
    state = {k: v.clone() for k, v in released.state_dict().items()}
    del released
    path = tmp_path_factory.mktemp("openai") / f"{name}.pt"
    torch.save(state, path)
    reference = openai_model.build_model(torch.load(path)).float().eval()  # clip.load on the CPU
    ours, preprocess, tokenizer = models.load_clip(name, models.OPENAI, weights_file=path)
    return name, reference, ours, preprocess, tokenizer


def _inputs(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 3, 224, 224, generator=g), clip.tokenize(CAPTIONS[:2])


def test_image_features_text_features_and_logits_match_openai(pair):
    name, reference, ours, _, _ = pair
    images, ids = _inputs()
    with torch.no_grad():
        ref_image, ref_text = reference.encode_image(images), reference.encode_text(ids)
        our_image, our_text = ours.encode_image(images), ours.encode_text(ids)
        ref_logits, _ = reference(images, ids)  # (images, texts)
        our_image_n, our_text_n, scale = ours(images, ids)[:3]
    our_logits = scale * our_image_n @ our_text_n.T
    print(f"{name}: largest |ours - OpenAI's|: image features {(our_image - ref_image).abs().max():.1e}, "
          f"text features {(our_text - ref_text).abs().max():.1e}, logits {(our_logits - ref_logits).abs().max():.1e}")
    torch.testing.assert_close(our_image, ref_image, **TOL)
    torch.testing.assert_close(our_text, ref_text, **TOL)
    torch.testing.assert_close(our_logits, ref_logits, **TOL)


def test_a_gelu_build_of_the_same_weights_fails_the_comparison(pair):
    """The mix-up issue 18 found (open_clip's GELU under OpenAI's weights) is caught here."""
    name, reference, ours, _, _ = pair
    images, ids = _inputs()
    with torch.no_grad():
        ref_text = reference.encode_text(ids)
        with plain_gelu(ours) as n:
            assert n == (12 if name == "RN50" else 24)  # text blocks (and image blocks)
            gelu_text = ours.encode_text(ids)
        torch.testing.assert_close(ours.encode_text(ids), ref_text, **TOL)  # restored
    print(f"{name}: largest |GELU build - OpenAI's| text features {(gelu_text - ref_text).abs().max():.1e}")
    with pytest.raises(AssertionError):
        torch.testing.assert_close(gelu_text, ref_text, **TOL)
    assert (gelu_text - ref_text).abs().max() > 100 * TOL["atol"]


def test_preprocessing_matches_openai(pair):
    from PIL import Image

    name, reference, _, preprocess, _ = pair
    g = torch.Generator().manual_seed(2)
    pixels = (torch.rand(180, 301, 3, generator=g) * 255).byte().numpy()  # not square, odd width
    openai_transform = clip.clip._transform(reference.visual.input_resolution)  # clip.load's, without the download
    for image in (Image.fromarray(pixels), Image.fromarray(pixels).convert("L"), Image.fromarray(pixels[:, :150])):
        torch.testing.assert_close(preprocess(image), openai_transform(image), rtol=0, atol=0)


def test_tokenizer_matches_openai(pair):
    _, _, _, _, tokenizer = pair
    assert torch.equal(tokenizer(CAPTIONS), clip.tokenize(CAPTIONS))
    long = " ".join(["a_b, c!"] * 60)  # past 77 tokens: both cut and end with the end token
    assert torch.equal(tokenizer([long]), clip.tokenize([long], truncate=True))


def test_every_openai_tag_builds_quickgelu(monkeypatch, tmp_path):
    """For every architecture open_clip has OpenAI weights for, and for colab-smoke's random
    file that stands for them, the build asks for QuickGELU; without a tag it does not."""
    seen = []

    def record(name, pretrained=None, **kwargs):
        seen.append((name, kwargs.get("force_quick_gelu", False)))
        return nn.Linear(1, 1)

    monkeypatch.setattr(open_clip, "create_model", record)
    monkeypatch.setattr(models, "random_weights_file", lambda name: tmp_path / "w.safetensors")
    (tmp_path / "w.safetensors").write_bytes(b"")
    names = open_clip.list_pretrained_models_by_tag(models.OPENAI)
    assert {"ViT-B-32", "ViT-B-16", "RN50"} <= set(names)
    for name in names:
        models.create(name, models.OPENAI)
        models.create(name, models.RANDOM_FILE)
        models.create(name, None)
        assert seen[-3:] == [(name, True), (name, True), (name, False)], name
    for p in profiles.PROFILES.values():
        if p.clip_pretrained in (models.OPENAI, models.RANDOM_FILE):
            assert models.tag_config(p.clip_model, p.clip_pretrained)["quick_gelu"], p.name


def test_a_weights_file_needs_its_tag(tmp_path):
    with pytest.raises(ValueError, match="needs the tag"):
        models.create("ViT-B-32", None, weights_file=tmp_path / "x.pt")
    with pytest.raises(models.WeightsUnavailableError, match="no weights file"):
        models.create("ViT-B-32", models.OPENAI, weights_file=tmp_path / "missing.pt")
    (tmp_path / "tiny.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(models.WeightsUnavailableError, match=r"tiny\.pt into 'RN50'.*expected a state dict"):
        models.create("RN50", models.OPENAI, weights_file=tmp_path / "tiny.pt")
