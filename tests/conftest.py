import os

import pytest
import torch

# the tests run on the CPU with the tiny profile, whatever the machine has
os.environ.setdefault("CLIPADAPT_PROFILE", "tiny")
# a lab trains its runs one after another here (clipadapt.experiments.lab.workers); the
# tests of side-by-side training, and the tiny book's kernels (test_book.py), ask for two
os.environ.setdefault("CLIPADAPT_LAB_WORKERS", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # one of `make test`'s workers (pytest-xdist): one thread each, and one for the
    # kernels and commands a test starts (they read OMP_NUM_THREADS); on 2 cores two
    # one-thread processes do about 1.5 times the work of one process on two threads
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
else:
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session", autouse=True)
def _one_rendered_video_world(tmp_path_factory):
    """The synthetic video worlds are rendered once per session and copied into each work
    folder (clipadapt.data.world_cache), for every test and for the kernels the book's tests
    start; under pytest-xdist the workers share the session's folder."""
    from clipadapt.data import world_cache

    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "rendered-worlds"
    before = os.environ.get(world_cache.CACHE_ENV)
    os.environ[world_cache.CACHE_ENV] = str(shared)
    yield shared
    if before is None:
        os.environ.pop(world_cache.CACHE_ENV, None)
    else:
        os.environ[world_cache.CACHE_ENV] = before


@pytest.fixture(scope="session")
def tiny_clip():
    from clipadapt.core import models

    return models.load_clip("tiny-clip", pretrained="synthetic")


@pytest.fixture(autouse=True)
def _tiny_clip_trainable_again(request):
    """Methods freeze the CLIP they wrap, and a test that wraps the session's shared tiny CLIP
    without copying it would leave it frozen for the tests after it on its worker (which
    ones follow depends on how pytest-xdist shares the files out): after each test that used
    it, every weight is trainable again, as loaded."""
    yield
    if "tiny_clip" in request.fixturenames:
        request.getfixturevalue("tiny_clip")[0].requires_grad_(True)


@pytest.fixture(scope="session")
def vit_b32():
    from clipadapt.core import models

    return models.create("ViT-B-32", pretrained=None)


@pytest.fixture
def one_thread():
    """One thread, so that every run of a test (in this process or a subprocess) does the
    same arithmetic and results can be compared bit for bit."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
