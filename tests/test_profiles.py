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


# -- a profile holds what every chapter shares; the rest is data, resolved at the entry points --
def test_a_profile_holds_only_what_every_chapter_shares():
    import dataclasses

    fields = {f.name for f in dataclasses.fields(profiles.Profile)}
    assert fields == {"name", "description", "clip_model", "clip_pretrained", "device", "video_frames",
                      "video_size", "based_on"}
    assert profiles.lineage(profiles.get("colab-smoke")) == ["colab", "colab-smoke"]
    dry = profiles.get("colab-smoke").replace(name="colab-smoke-dry-run", based_on="colab-smoke")
    assert profiles.lineage(dry) == ["colab", "colab-smoke", "colab-smoke-dry-run"]


def test_library_functions_take_a_resolved_profile():
    from clipadapt.training import recipes

    with pytest.raises(TypeError, match=r"expected a Profile \(clipadapt\.profiles\.get\('tiny'\) resolves a name\)"):
        recipes.get("CoOp", "tiny")


ENTRY_POINTS = {"chapter", "reproduce", "book", "pretrain", "bench/__main__"}


def test_profiles_get_is_called_only_at_the_entry_points():
    """A chapter's setup, reproduce, bench, book and the pre-training command resolve a
    profile's name; everything below them is handed the Profile."""
    import ast
    from pathlib import Path

    import clipadapt

    root = Path(clipadapt.__file__).parent
    found = []
    for path in root.rglob("*.py"):
        module = path.relative_to(root).with_suffix("").as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "profiles"):
                found.append(module)
    assert found and set(found) <= ENTRY_POINTS, sorted(set(found) - ENTRY_POINTS)


def test_every_profile_has_its_settings_and_budgets():
    from clipadapt.experiments import settings
    from clipadapt.training import budgets

    for name in profiles.PROFILES:
        p = profiles.get(name)
        s, b = settings.of(p), budgets.of(p)
        assert s.profile == name and s.fewshot.shots and s.videos.train_pairs > 0 and s.chapter1.pretrain.steps > 0
        assert {"fewshot_epochs", "video_steps", "multilabel_train"} <= set(b)
    smoke = settings.of(profiles.get("colab-smoke"))
    assert smoke.fewshot.dataset == "eurosat" and smoke.fewshot.shots == (1,)  # colab's, changed key by key
    assert smoke.suites.datasets == settings.of(profiles.get("colab")).suites.datasets and smoke.suites.classes == 3


@pytest.mark.parametrize("text,says", [
    ('[fewshot]\ntiny = { dataset = "outlines", shots = [1], test_per_class = 1, extra = 2 }\n',
     "fewshot.tiny.extra: unknown key"),
    ('[fewshot]\nhuge = { dataset = "outlines" }\n', "fewshot.huge: not a profile"),
    ('[fewshot]\ntiny = { dataset = "outlines", shots = [1] }\n', "fewshot.tiny.test_per_class: missing"),
    ('[frames]\ntiny = {}\n', "frames: unknown table"),
    ('[fewshot\n', "not readable TOML"),
])
def test_a_bad_settings_file_is_refused_by_file_and_key(tmp_path, text, says):
    from clipadapt.experiments import settings

    path = tmp_path / "_settings.toml"
    path.write_text(text)
    with pytest.raises(settings.SpecError) as err:
        settings.of(profiles.get("tiny"), path)
    assert str(err.value).startswith(f"{path}: ") and says in str(err.value), str(err.value)


def test_a_bad_budget_is_refused_by_file_and_key(tmp_path):
    from clipadapt.training import budgets

    path = tmp_path / "_shared.toml"
    path.write_text("[budgets.tiny]\nvideo_steps = 0\n")
    with pytest.raises(budgets.BudgetError, match=r"_shared\.toml: budgets\.tiny\.video_steps: expected a positive"):
        budgets.of(profiles.get("tiny"), path)
    path.write_text("[budgets.tiny]\nvideo_step = 3\n")
    with pytest.raises(budgets.BudgetError, match=r"budgets\.tiny\.video_step: unknown budget"):
        budgets.of(profiles.get("tiny"), path)
