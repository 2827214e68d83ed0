"""Peak memory of a block of code: on the CPU the resident size of this process or of its
children (a Jupyter kernel), sampled by a background thread while the block runs (what the
benchmarks report); on a GPU the allocator's own peak (:func:`peak_during`)."""

from __future__ import annotations

import ctypes
import threading
import time
from typing import Any, Callable

import psutil
import torch


class PeakMemory:
    """Peak resident memory, sampled every ``interval`` s: of this process's children (the
    Jupyter kernel) by default, or of this process itself (``children=False``)."""

    def __init__(self, interval: float = 0.05, children: bool = True):
        self.interval, self.children, self.peak, self._stop = interval, children, 0, threading.Event()

    def rss(self) -> int:
        me = psutil.Process()
        if not self.children:
            return me.memory_info().rss
        total = 0
        for child in me.children(recursive=True):
            try:
                total = max(total, child.memory_info().rss)
            except psutil.Error:
                pass
        return total

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval)

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def release_freed_memory() -> None:
    """Give freed heap pages back to the system (glibc), so that the resident size before a
    block is its real starting level."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the baseline is then only less tight
        pass


def peak_during(fn: Callable[[], Any], device: torch.device) -> tuple[Any, int]:
    """``fn()`` and the bytes it took at its peak above the level before it: on a GPU the
    peak of allocated memory; on the CPU the peak resident size of this process, sampled
    every 10 ms (memory the allocator kept from earlier work and reused is not counted)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        out = fn()
        return out, torch.cuda.max_memory_allocated(device) - before
    release_freed_memory()
    with PeakMemory(interval=0.01, children=False) as mem:
        before = mem.rss()
        out = fn()
    return out, max(0, mem.peak - before)
