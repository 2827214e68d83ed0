"""Many processes, one run: the few collective pieces that data-parallel training needs.

Under ``torchrun --nproc_per_node=N`` every process runs the same program on its own
shard of each global batch (:func:`shard`), PyTorch's DistributedDataParallel
averages the gradients, and three things make the result that of one process on the
whole global batch:

* :func:`gather_with_grad` -- a contrastive loss sees every process's features, so the
  negatives are the global batch; the gather is differentiable, so each process's
  features receive the gradient of the whole loss (as the official VoP and TempMe code
  does with its ``AllGather``);
* :func:`gather_objects` -- the same for Python objects (the batch's captions);
* :func:`encode_sharded` -- evaluation: each process encodes every ``world``-th input,
  and the features are gathered back in order before anything is ranked.

With one process (no process group) every function here is the identity, so the
single-GPU and CPU paths run exactly the code they always ran.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import torch
import torch.distributed as dist


def active() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """The process that prints and writes files (rank 0)."""
    return rank() == 0


def launched() -> bool:
    """True when started by ``torchrun`` (or anything that sets ``WORLD_SIZE`` and ``RANK``)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_from_env(device_type: str) -> torch.device | None:
    """Join the process group that ``torchrun`` describes in the environment (NCCL on GPUs,
    gloo on the CPU); returns this process's device, or None when not launched so."""
    if not launched():
        return None
    local = int(os.environ.get("LOCAL_RANK", 0))
    if device_type == "cuda":
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def barrier() -> None:
    if active():
        dist.barrier()


class _Gather(torch.autograd.Function):
    """All-gather whose backward hands each process the gradient of its own rows, summed
    over every process's loss. Each process computes the same global loss L, so that sum is
    ``world * dL/dx``; DistributedDataParallel's averaging then makes the parameters'
    gradient exactly ``dL/dtheta`` of one process on the global batch. (CLIP4Clip's and
    VoP's ``AllGather`` keep only the local part, a gradient ``world`` times smaller;
    Adam hardly notices, an equality test does.)"""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # (B, ...) -> (world * B, ...)
        parts = [torch.empty_like(x) for _ in range(world())]
        dist.all_gather(parts, x.contiguous())
        ctx.rows = (rank() * len(x), (rank() + 1) * len(x))
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # sum over the processes' losses
        return grad[ctx.rows[0]:ctx.rows[1]]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """``(sum of B, ...)``: every process's ``x`` ``(B, ...)`` in rank order; gradients flow
    back to each process's own rows (see :class:`_Gather`)."""
    if not active():
        return x
    sizes = torch.tensor([len(x)], device=x.device)
    every = [torch.empty_like(sizes) for _ in range(world())]
    dist.all_gather(every, sizes)
    sizes = [int(s) for s in every]
    if len(set(sizes)) == 1:
        return _Gather.apply(x)
    # uneven parts (a video that could not be read was left out): pad, gather, trim
    padded = torch.cat([x, x.new_zeros((max(sizes) - len(x), *x.shape[1:]))])
    full = _Gather.apply(padded)
    return torch.cat([full[r * max(sizes): r * max(sizes) + n] for r, n in enumerate(sizes)])


def gather_objects(items: list) -> list:
    """Every process's list, concatenated in rank order."""
    if not active():
        return list(items)
    out: list = [None] * world()
    dist.all_gather_object(out, list(items))
    return [x for part in out for x in part]


def mean(value: torch.Tensor | float) -> float:
    """The mean of a scalar over the processes (for logging)."""
    value = float(value.detach()) if torch.is_tensor(value) else float(value)
    if not active():
        return value
    t = torch.tensor([value], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return t.item() / world()


def broadcast_object(obj):
    """Rank 0's ``obj`` on every process."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shard(indices: torch.Tensor, rank: int = 0, world: int = 1) -> torch.Tensor:
    """Process ``rank``'s contiguous part of a global batch's example indices: the shards of
    the ``world`` processes, in rank order, are exactly the global batch (so gathered
    features line up with it)."""
    if world == 1:
        return indices
    if len(indices) % world:
        raise ValueError(f"a global batch of {len(indices)} does not split over {world} processes; "
                         "choose a number of processes that divides it")
    b = len(indices) // world
    return indices[rank * b:(rank + 1) * b]


def encode_sharded(fn: Callable, inputs: Sequence, encode: Callable) -> torch.Tensor | tuple:
    """``encode(fn, inputs)`` (e.g. :func:`clipadapt.core.features.encode_batched`) with the
    work split over the processes: process ``r`` encodes ``inputs[r::world]``, and the
    outputs are gathered and put back in the order of ``inputs``."""
    if not active():
        return encode(fn, inputs)
    w, r = world(), rank()
    mine = encode(fn, inputs[r::w])
    parts = mine if isinstance(mine, tuple) else (mine,)
    n = len(inputs)
    size = -(-n // w)  # the longest shard; shorter ones are padded for all_gather
    out = []
    for p in parts:
        padded = torch.zeros((size, *p.shape[1:]), dtype=p.dtype, device=p.device)
        padded[: len(p)] = p
        chunks = [torch.empty_like(padded) for _ in range(w)]
        dist.all_gather(chunks, padded)
        full = torch.empty((n, *p.shape[1:]), dtype=p.dtype, device=p.device)
        for src, chunk in enumerate(chunks):
            count = len(range(src, n, w))
            full[src::w] = chunk[:count]
        out.append(full)
    return tuple(out) if isinstance(mine, tuple) else out[0]
