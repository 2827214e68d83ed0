"""Counting multiply-adds and timing forward passes.

The VoP and TempMe papers (and most vision papers) quote fvcore's "GFLOPs", which count
one multiply-add as one operation. :func:`count_macs` runs a forward pass under
``torch.utils.flop_counter.FlopCounterMode`` (which counts two operations per multiply-add)
and halves its total. Two details make the count complete:

* PyTorch's fused attention "fast path" bypasses the counter under ``no_grad``, so it is
  switched off while counting;
* on the CPU, attention runs as ``aten._scaled_dot_product_flash_attention_for_cpu``, which
  the counter does not know; it is taught here with the same formula as the GPU kernels
  (``Q K^T`` and ``attention @ V``).

:func:`vit_macs` is the analytic count for a plain ViT image encoder; the tests check the
two against each other.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch.utils import flop_counter

_aten = torch.ops.aten


def _sdpa_cpu_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def _extra_formulas() -> dict:
    extra = {}
    op = getattr(_aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if op is not None:
        extra[op] = _sdpa_cpu_flops
    return extra


@contextlib.contextmanager
def attention_fastpath(enabled: bool):
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(enabled)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


@dataclass
class MacCount:
    total: int
    by_operator: dict[str, int]

    @property
    def giga(self) -> float:
        return self.total / 1e9

    def __str__(self) -> str:
        return f"{self.giga:.2f} G multiply-adds"


def count_macs(fn: Callable, *args, **kwargs) -> MacCount:
    """Multiply-adds of ``fn(*args, **kwargs)`` (one forward pass, no gradients)."""
    with attention_fastpath(False), torch.no_grad():
        counter = flop_counter.FlopCounterMode(display=False, custom_mapping=_extra_formulas())
        with counter:
            fn(*args, **kwargs)
    counts = counter.get_flop_counts().get("Global", {})
    by_op = {str(k).replace("aten.", ""): int(v) // 2 for k, v in counts.items()}
    return MacCount(total=int(counter.get_total_flops()) // 2, by_operator=by_op)


def vit_macs(image_size: int, patch_size: int, width: int, layers: int, mlp_ratio: float = 4.0,
             output_dim: int | None = None, extra_tokens: int = 0) -> int:
    """Analytic multiply-adds of a ViT image encoder on one image.

    Patch embedding, then per layer: the QKV projection, the attention scores ``Q K^T``,
    the weighted sum ``A V``, the output projection and the two MLP matrices; finally the
    projection of the class token. Layer norms, softmax and GELU are not counted (fvcore's
    convention). ``extra_tokens`` adds tokens (prompts) to every layer's sequence.
    """
    grid = image_size // patch_size
    n = grid * grid + 1 + extra_tokens
    hidden = int(width * mlp_ratio)
    patch = grid * grid * (3 * patch_size * patch_size) * width
    per_layer = n * width * 3 * width + 2 * n * n * width + n * width * width + 2 * n * width * hidden
    proj = width * output_dim if output_dim else 0
    return patch + layers * per_layer + proj


@dataclass
class Timing:
    median_s: float
    times_s: list[float]
    items: int

    @property
    def throughput(self) -> float:
        """Items per second at the median time."""
        return self.items / self.median_s

    def __str__(self) -> str:
        return f"{1e3 * self.median_s:.1f} ms median ({self.throughput:.1f} items/s)"


def time_forward(fn: Callable, *args, items: int = 1, warmup: int = 2, repeats: int = 5, **kwargs) -> Timing:
    """Median wall time of ``fn(*args)`` after ``warmup`` untimed calls (CUDA synchronised)."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    times = []
    with torch.no_grad():
        for i in range(warmup + repeats):
            sync()
            t0 = time.perf_counter()
            fn(*args, **kwargs)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return Timing(statistics.median(times), times, items)
