"""Seeds: one place where every random stream of the library gets its seed.

* :func:`seed_everything` -- the global generators (Python, NumPy, PyTorch), set once
  before a model is built, so that its random initialisation repeats;
* :func:`generator` -- a *named* stream, ``generator(0, "fewshot", "outlines", "train")``:
  the seed is a hash of the base seed and the names, so adding a stream never shifts
  another (the synthetic worlds draw from these);
* :func:`step_generator` -- the stream of training step ``step`` (which examples a batch
  holds, which frames a video shows), so that a batch depends only on the seed and its
  step, never on what ran before it.
"""

from __future__ import annotations

import random
import zlib

import numpy as np
import torch

# a prime larger than any run's number of steps: (seed, step) pairs never collide
_STEP_STRIDE = 1_000_003


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def derive(seed: int, *names: str) -> int:
    """A 32-bit seed from a base seed and names (CRC-32 of ``"seed/name/..."``)."""
    return zlib.crc32("/".join([str(int(seed)), *map(str, names)]).encode())


def generator(seed: int, *names: str) -> torch.Generator:
    """A CPU generator for the named stream ``names`` of ``seed``."""
    g = torch.Generator()
    g.manual_seed(derive(seed, *names))
    return g


def step_generator(seed: int, step: int) -> torch.Generator:
    """A CPU generator for training step ``step`` of a run seeded with ``seed``."""
    if step < 0:
        raise ValueError(f"step must be non-negative, got {step}")
    return torch.Generator().manual_seed(int(seed) * _STEP_STRIDE + int(step))
