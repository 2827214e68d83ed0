"""Peak resident memory of this process or of its children (a Jupyter kernel), sampled by a
background thread while a block runs: what the benchmarks report on the CPU."""

from __future__ import annotations

import threading
import time

import psutil


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
