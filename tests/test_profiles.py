import pytest

from clipadapt import profiles


def test_names_and_lookup():
    assert set(profiles.PROFILES) == {"tiny", "colab", "paper", "colab-smoke"}
    assert profiles.get("tiny").clip_model == "tiny-clip"
    assert profiles.get("Colab").clip_model == "ViT-B-32"
    p = profiles.get("tiny")
    assert profiles.get(p) is p


def test_unknown_profile_lists_choices():
    with pytest.raises(profiles.UnknownProfileError, match="colab, colab-smoke, paper, tiny"):
        profiles.get("huge")


def test_environment_fallback(monkeypatch):
    monkeypatch.setenv(profiles.ENV_VAR, "paper")
    assert profiles.get(None).name == "paper"
    monkeypatch.setenv(profiles.ENV_VAR, "nonsense")
    with pytest.raises(profiles.UnknownProfileError, match="nonsense"):
        profiles.get(None)


def test_default_without_environment_is_tiny_on_cpu(monkeypatch):
    import torch

    monkeypatch.delenv(profiles.ENV_VAR, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert profiles.get(None).name == "tiny"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert profiles.get(None).name == "colab"
