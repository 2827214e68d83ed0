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

Recurrent layers (VoP^C's BiLSTM prompt generator) are left out of every count, as the VoP
paper leaves prompt generation out of its costs. On the CPU and on CUDA their fused kernels
are invisible to the counter anyway; on the meta device they run as plain matrix products,
so they are subtracted explicitly, and a count is the same on every device.
`count_macs_on_meta` counts a module's method on the meta device (shapes, no arithmetic): a
full-size ViT-B/32 on 12 frames in a tenth of a second instead of seconds on the CPU.

:func:`vit_macs` is the analytic count for a plain ViT image encoder; the tests check the
two against each other.
"""

from __future__ import annotations

import contextlib
import copy
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
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


@contextlib.contextmanager
def _recurrent_left_out(counter: flop_counter.FlopCounterMode):
    """While inside, what ``counter`` counts within a recurrent layer is taken back out;
    yields a dict ``{operator: flops}`` of what was, filled when the block ends."""
    global_counts = counter.flop_counts["Global"]  # operator -> flops, updated as ops run
    at_entry: list[dict] = []
    taken: dict = {}

    def before(module, args):
        if isinstance(module, nn.RNNBase):
            at_entry.append(dict(global_counts))

    def after(module, args, output):
        if isinstance(module, nn.RNNBase):
            start = at_entry.pop()
            if not at_entry:  # the outermost recurrent layer: what it added, all of it
                for op, n in global_counts.items():
                    taken[op] = taken.get(op, 0) + n - start.get(op, 0)

    hooks = (nn.modules.module.register_module_forward_pre_hook(before),
             nn.modules.module.register_module_forward_hook(after))
    try:
        yield taken
    finally:
        for h in hooks:
            h.remove()


def count_macs(fn: Callable, *args, **kwargs) -> MacCount:
    """Multiply-adds of ``fn(*args, **kwargs)`` (one forward pass, no gradients), recurrent
    layers left out."""
    with attention_fastpath(False), torch.no_grad():
        counter = flop_counter.FlopCounterMode(display=False, custom_mapping=_extra_formulas())
        with counter, _recurrent_left_out(counter) as taken:
            fn(*args, **kwargs)
    counts = counter.get_flop_counts().get("Global", {})
    by_op = {str(k).replace("aten.", ""): (int(v) - int(taken.get(k, 0))) // 2 for k, v in counts.items()}
    by_op = {k: v for k, v in by_op.items() if v}
    return MacCount(total=sum(by_op.values()), by_operator=by_op)


def owner(method: Callable) -> tuple[nn.Module, str | None] | None:
    """``(module, method name)`` of a module's bound method, ``(module, None)`` of a module,
    else None (a function: :func:`count_macs_on_meta` cannot move what it closes over)."""
    if isinstance(method, nn.Module):
        return method, None
    module = getattr(method, "__self__", None)
    return (module, method.__name__) if isinstance(module, nn.Module) else None


def count_macs_on_meta(method: Callable, *inputs: torch.Tensor) -> MacCount:
    """:func:`count_macs` of ``method(*inputs)``, a module's bound method (``model.encode_image``)
    or a module (its call), run on a copy of the module on the meta device, where tensors have
    shapes and no data: the count the CPU gives (the tests check it) without the arithmetic.
    The module is left as it is."""
    owned = owner(method)
    if owned is None:
        raise TypeError(f"count_macs_on_meta needs a module or a module's bound method (e.g. model.encode_image), "
                        f"got {method!r}")
    module, name = owned
    # the copy's weights are made on the meta device directly (the memo hands deepcopy each
    # one), so nothing of size is copied
    memo = {id(p): nn.Parameter(p.to("meta"), requires_grad=p.requires_grad) for p in module.parameters()}
    memo.update({id(b): b.to("meta") for b in module.buffers()})
    on_meta = copy.deepcopy(module, memo).to("meta")
    return count_macs(on_meta if name is None else getattr(on_meta, name), *(x.to("meta") for x in inputs))


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
