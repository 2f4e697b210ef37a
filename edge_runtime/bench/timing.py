"""Stage clocks and latency statistics."""
from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Dict, List, Optional

import numpy as np


class StageClock:
    """Accumulates wall time per named stage within a frame, and keeps every frame's totals."""

    def __init__(self):
        self.frames: List[Dict[str, float]] = []
        self._current: Dict[str, float] = defaultdict(float)

    @contextmanager
    def stage(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._current[name] += time.perf_counter() - t0

    def add(self, name: str, seconds: float) -> None:
        self._current[name] += seconds

    def current(self, names) -> float:
        """Time booked so far in this frame under the given stages."""
        return sum(self._current.get(n, 0.0) for n in names)

    def end_frame(self) -> Dict[str, float]:
        frame = dict(self._current)
        self.frames.append(frame)
        self._current = defaultdict(float)
        return frame

    def discard(self) -> None:
        self.frames.clear()
        self._current = defaultdict(float)


def measure(one_frame, clock: "StageClock", warmup: int, frames: Optional[int],
            seconds: Optional[float]) -> List[int]:
    """Warm up, forget the warm-up, then run `one_frame() -> persons` for `frames` frames
    or `seconds` seconds; returns the person count of every measured frame."""
    for _ in range(warmup):
        one_frame()
    clock.discard()
    persons: List[int] = []
    start = time.perf_counter()
    while True:
        persons.append(one_frame())
        if frames is not None and len(persons) >= frames:
            break
        if frames is None and time.perf_counter() - start >= (seconds or 5.0):
            break
    return persons


def summarize(values_s: List[float]) -> Dict[str, float]:
    """Milliseconds: mean, p50, p90, p99, min, max over the measured frames."""
    if not values_s:
        return {k: float("nan") for k in ("mean", "p50", "p90", "p99", "min", "max")}
    ms = np.asarray(values_s, dtype=np.float64) * 1000.0
    return {
        "mean": float(ms.mean()),
        "p50": float(np.percentile(ms, 50)),
        "p90": float(np.percentile(ms, 90)),
        "p99": float(np.percentile(ms, 99)),
        "min": float(ms.min()),
        "max": float(ms.max()),
    }


def stage_table(frames: List[Dict[str, float]], stages: List[str]) -> Dict[str, Dict[str, float]]:
    return {s: summarize([f.get(s, 0.0) for f in frames]) for s in stages}


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB, macOS bytes)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0
