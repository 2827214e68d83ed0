"""The colab profile's code paths, executed in CI: every chapter of _toc.yml run by papermill
under ``colab-smoke`` (ViT-B/32 with random weights read from a local file, EuroSAT, MSR-VTT
and the colab profile's General-10 datasets in their real formats written by
clipadapt.data.fixtures, a handful of steps). A chapter takes part by being in _toc.yml and reading
everything from its profile; nothing here names a chapter."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import nbformat
import pytest
import torch

from clipadapt import book, citations, profiles
from clipadapt.data import fixtures
from clipadapt.data.fetch import download
from clipadapt.experiments import settings
from clipadapt.training import budgets, loop as train

ROOT = Path(__file__).resolve().parents[1]
SMOKE = "colab-smoke"
# what colab-smoke may change in the colab profile: its name, the weights' source, the device
SCALE = {"name", "description", "clip_pretrained", "device", "based_on"}


def test_smoke_profile_is_the_colab_profile_at_ci_scale():
    colab, smoke = profiles.get("colab"), profiles.get(SMOKE)
    differ = {f.name for f in dataclasses.fields(colab) if getattr(colab, f.name) != getattr(smoke, f.name)}
    assert differ <= SCALE, differ - SCALE
    assert smoke.device == "cpu" and smoke.based_on == "colab"
    # the data, the model and the frame size are the colab profile's; only the sizes are smaller
    a, b = settings.of(colab), settings.of(smoke)
    assert (b.fewshot.dataset, b.videos.source, b.suites.datasets) == (a.fewshot.dataset, a.videos.source,
                                                                       a.suites.datasets)
    assert b.videos.train_pairs < a.videos.train_pairs and b.scenes.test < a.scenes.test
    assert budgets.of(smoke)["video_steps"] < budgets.of(colab)["video_steps"]


def test_fit_autocasts_on_the_cpu_when_asked():
    """The mixed-precision path of train.fit (autocast, GradScaler, clipping), which the colab
    profile takes on CUDA, run on the CPU in bfloat16 (a chapter in bfloat16 would be 50 times
    slower here: this CPU has no bfloat16 units)."""
    seen = []

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Linear(4, 1)

        def forward(self, x):
            seen.append(self.w(x).dtype)
            return self.w(x).float().pow(2).mean()

    model = Probe()
    for amp_cpu in (False, True):
        train.fit(model, model, lambda step: torch.ones(2, 4), train.Recipe(lr=1e-3, grad_clip=1.0), 2,
                  amp_cpu=amp_cpu, progress=False, device="cpu")
    assert seen == [torch.float32] * 2 + [torch.bfloat16] * 2


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("colab-smoke")
    data = fixtures.write_all(out / "data", settings.of(profiles.get(SMOKE)).suites.datasets)
    before = os.environ.get(download.DATA_ENV)
    os.environ[download.DATA_ENV] = str(data)  # seen by the kernels papermill starts
    try:
        executed = book.execute(SMOKE, dest=out / "exec", root=ROOT, log=lambda *_: None)
    finally:
        if before is None:
            os.environ.pop(download.DATA_ENV, None)
        else:
            os.environ[download.DATA_ENV] = before
    return {"exec": out / "exec", "executed": executed, "data": data}


def _pending(nb_path):
    return book.pending(ROOT / nb_path, SMOKE)


def test_every_chapter_ran_under_colab_smoke(smoke_run):
    """Every chapter ran, except those that say in their metadata what they still lack."""
    names = {Path(e.notebook).name for e in smoke_run["executed"]}
    waiting = {p.name: why for p in book.toc_notebooks(ROOT) if (why := _pending(p))}
    assert names == {p.name for p in book.toc_notebooks(ROOT)} - set(waiting)
    assert all(len(why) > 20 for why in waiting.values()), waiting  # a reason, not a flag
    for name, why in waiting.items():
        print(f"{name}: pending under {SMOKE}: {why}")
    print("\n".join(f"{e.notebook}: {e.seconds:.1f} s" for e in smoke_run["executed"]))


@pytest.mark.parametrize("nb_path", book.toc_notebooks(ROOT), ids=lambda p: p.stem)
def test_chapter_executed_the_colab_code_paths(smoke_run, nb_path):
    why = _pending(nb_path)
    if why:
        pytest.skip(f"pending under {SMOKE}: {why}")
    nb = nbformat.read(smoke_run["exec"] / nb_path, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and f'profile = "{SMOKE}"' in injected[0].source
    text = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            assert out.output_type != "error", f"cell {i}: {out.get('ename')}: {out.get('evalue')}"
            if out.output_type == "stream":
                text.append(out.text)
                if out.name == "stderr":
                    assert "Traceback" not in out.text, f"cell {i}: {out.text[:500]}"
    assert SMOKE in "".join(text), f"{nb_path.name} never printed its profile"
    assert citations.figure_problems(nb) == [], "a captioned cell shows several outputs: one figure name twice"


def test_the_random_weights_came_from_a_local_file(smoke_run):
    files = list((smoke_run["data"] / "weights").glob("ViT-B-32-random-seed0.safetensors"))
    assert files and files[0].stat().st_size > 100e6  # ViT-B/32 in float16: about 300 MB


def test_random_file_weights_load_through_open_clips_file_path(tmp_path, monkeypatch):
    """``pretrained="random-file"``: seeded random weights written once, then read back by
    open_clip from the file (the path downloaded weights take), in float16 storage."""
    from clipadapt.core import models

    monkeypatch.setenv(download.DATA_ENV, str(tmp_path))
    a = models.create("tiny-clip", models.RANDOM_FILE)
    path = models.random_weights_file("tiny-clip")
    assert path.parent == tmp_path / "weights" and path.is_file()
    mtime = path.stat().st_mtime_ns
    b = models.create("tiny-clip", models.RANDOM_FILE)
    assert path.stat().st_mtime_ns == mtime  # reused, not rewritten
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name
    torch.manual_seed(0)
    fresh = models.create("tiny-clip", None).state_dict()
    w = "visual.transformer.resblocks.0.attn.in_proj_weight"
    assert torch.equal(a.state_dict()[w], fresh[w].half().float())
