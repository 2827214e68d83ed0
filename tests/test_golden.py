"""Every method switched on gives the outputs stored in tests/golden/methods.safetensors
(regenerate with ``make golden`` only after a change meant to move them)."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent / "golden"))
import cases  # noqa: E402

from clipadapt.core.checkpoints import read_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def stored_and_now():
    stored, _ = read_checkpoint(cases.STORE)
    return stored, cases.outputs()


def test_the_same_cases_are_stored(stored_and_now):
    stored, now = stored_and_now
    assert sorted(stored) == sorted(now), "the golden cases changed: run `make golden` and review the diff"


@pytest.mark.parametrize("key", sorted(cases.outputs()))
def test_golden_output(stored_and_now, key):
    stored, now = stored_and_now
    assert now[key].shape == stored[key].shape
    assert torch.allclose(now[key], stored[key], atol=1e-4, rtol=1e-4), \
        f"{key} moved by {(now[key] - stored[key]).abs().max().item():.2e}"
