"""Speed ratios that hold on a shared machine: the functions compared are timed in turn, round
after round, and a verdict reads the median of the rounds' ratios.

A machine that others use slows down in bursts of seconds to minutes. Timed in blocks (every
call of A, then every call of B), A and B see different loads, and their ratio moves by a
factor of two from one run to the next. Timed in turn -- one call of each per round, the order
rotated by one place each round so that none always goes first -- the calls of one round share
the load, and the ratio of their times cancels much of it. What it cannot cancel is the
share of the processors this process gets from one second to the next, which on a busy
machine changes within a call; the processor time the process itself spends does not depend
on that share, so :func:`interleaved` records both clocks. :func:`speedup` turns two
functions' times into per-round ratios and summarises them (:class:`Spread`: median,
quartiles, extremes); :func:`verdict` judges the median against a target and says whether the
middle half of the rounds agrees.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence


@dataclasses.dataclass(frozen=True)
class Times:
    """Seconds of one function's calls, one a round: on the wall clock, and of processor time
    that this process spent (every thread of it)."""

    wall: list[float]
    cpu: list[float]


def interleaved(fns: dict[str, Callable[[], object]], rounds: int,
                sync: Callable[[], object] = lambda: None) -> dict[str, Times]:
    """The seconds of every call, ``{name: Times}``: each round calls each of ``fns`` once, in
    their order rotated by the round's number (round 1 starts with the second); ``sync``
    (CUDA's synchronise on a GPU) runs before and after each call."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    if not fns:
        raise ValueError("interleaved needs at least one function to time, got none")
    names = list(fns)
    times = {name: Times([], []) for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            sync()
            wall, cpu = time.perf_counter(), time.process_time()
            fns[name]()
            sync()
            times[name].cpu.append(time.process_time() - cpu)
            times[name].wall.append(time.perf_counter() - wall)
    return times


@dataclasses.dataclass(frozen=True)
class Spread:
    """A measurement's rounds summarised: the median, the quartiles (the middle half of the
    rounds lies in ``q1 .. q3``) and the extremes."""

    median: float
    q1: float
    q3: float
    low: float
    high: float
    rounds: int

    def text(self, fmt: str = "{:.2f}x") -> str:
        """``1.42x over 7 rounds (middle half 1.38x-1.47x, all 1.30x-1.55x)``, each value in ``fmt``."""
        f = fmt.format
        return (f"{f(self.median)} over {self.rounds} rounds (middle half {f(self.q1)}-{f(self.q3)}, "
                f"all {f(self.low)}-{f(self.high)})")

    def __str__(self) -> str:
        return self.text()


def spread(values: Sequence[float]) -> Spread:
    """Median, quartiles (inclusive: of 1, 2, 3, 4 and 5, 2 and 4) and extremes of ``values``."""
    values = list(values)
    if not values:
        raise ValueError("spread needs at least one value, got none")
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else values * 3
    return Spread(statistics.median(values), q1, q3, min(values), max(values), len(values))


def speedup(reference_s: Sequence[float], candidate_s: Sequence[float]) -> Spread:
    """How many times faster the candidate is than the reference, round by round
    (``reference_s[i] / candidate_s[i]``: seconds of the same round), summarised."""
    if len(reference_s) != len(candidate_s):
        raise ValueError(f"speedup needs the same rounds for both, got {len(reference_s)} and {len(candidate_s)}")
    if any(t <= 0 for t in list(reference_s) + list(candidate_s)):
        raise ValueError(f"seconds must be positive, got {list(reference_s)} and {list(candidate_s)}")
    return spread([ref / t for ref, t in zip(reference_s, candidate_s)])


def verdict(measured: Spread, target: float, at_least: bool = True) -> tuple[bool, bool]:
    """``(met, firm)``: whether the median meets ``target`` (``>=``, or ``<=`` with
    ``at_least=False``), and whether the middle half of the rounds lies on the same side, so
    that a rerun under similar load would very likely judge the same."""
    if at_least:
        return measured.median >= target, (measured.q1 >= target) == (measured.q3 >= target)
    return measured.median <= target, (measured.q1 <= target) == (measured.q3 <= target)
