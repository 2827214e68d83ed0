"""Peak memory of the tensors a block of code holds, counted tensor by tensor on any device.

A GPU's allocator reports its peak (``torch.cuda.max_memory_allocated``); the CPU's does
not, and a process's resident size mixes tensors with everything else Python holds. On
the CPU, :class:`LiveTensors` counts what a GPU's allocator would hold: it watches every
operation (a ``TorchDispatchMode``, so the backward pass too), adds the bytes of each new
storage the moment an operation returns it, and takes them off when that storage is freed
(a ``weakref.finalize`` on the storage). Views share their storage and are counted once.

    with LiveTensors(model, optimizer) as live:
        loss = model(x).sum(); loss.backward()
    live.peak   # bytes: what existed before (``model``, ``optimizer``) plus the most held at once since

What it does not see: memory that no tensor owns (a CUDA context, cuBLAS's workspace,
the caching allocator's rounding) -- :mod:`clipadapt.bench.dryrun` adds those as stated
allowances -- and tensors made before the block unless they are handed to it.
"""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map_only


def _tensors(objects) -> list[torch.Tensor]:
    """The tensors of ``objects``: modules (parameters, buffers, gradients), optimisers
    (their state), tensors, or nested lists/dicts of them."""
    out: list[torch.Tensor] = []
    for obj in objects:
        if isinstance(obj, torch.nn.Module):
            for t in [*obj.parameters(), *obj.buffers()]:
                out += [t] if t.grad is None else [t, t.grad]
        elif isinstance(obj, torch.optim.Optimizer):
            tree_map_only(torch.Tensor, out.append, list(obj.state.values()))
        else:
            tree_map_only(torch.Tensor, out.append, obj)
    return out


def storage_bytes(*objects) -> int:
    """Bytes of the distinct storages of the tensors in ``objects`` (see :class:`LiveTensors`);
    a storage shared by views counts once."""
    return LiveTensors(*objects).already


class LiveTensors(TorchDispatchMode):
    """Bytes held by tensors: ``live`` now, ``peak`` the most at once. ``held`` (modules,
    optimisers, tensors) are what exists from the start; they are counted from the start,
    and taken off if the block frees them. Everything an operation makes inside the block is
    counted until it is freed."""

    def __init__(self, *held):
        super().__init__()
        self.live = self.peak = 0
        self._counted: set[int] = set()  # data pointers of the storages being counted
        for t in _tensors(held):
            self._track(t)
        self.already = self.live

    def _free(self, key: int, nbytes: int) -> None:
        self._counted.discard(key)
        self.live -= nbytes

    def _track(self, t: torch.Tensor) -> None:
        if t.device.type == "meta":
            return
        s = t.untyped_storage()
        key = s.data_ptr()
        if key in self._counted or s.nbytes() == 0:
            return
        self._counted.add(key)
        self.live += s.nbytes()
        self.peak = max(self.peak, self.live)
        weakref.finalize(s, self._free, key, s.nbytes())

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        tree_map_only(torch.Tensor, self._track, out)
        return out

    def reset_peak(self) -> None:
        """Start a new peak from what is held now."""
        self.peak = self.live
