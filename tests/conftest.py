import os

import pytest
import torch

# the tests run on the CPU with the tiny profile, whatever the machine has
os.environ.setdefault("CLIPADAPT_PROFILE", "tiny")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def tiny_clip():
    from clipadapt.core import models

    return models.load_clip("tiny-clip", pretrained="synthetic")


@pytest.fixture(scope="session")
def vit_b32():
    from clipadapt.core import models

    return models.create("ViT-B-32", pretrained=None)
