"""Stage clocks and latency statistics."""
from __future__ import annotations

import statistics
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

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


@dataclass
class Slice:
    """One timed stretch of a bench row: stage seconds and persons of every measured frame."""
    frames: List[Dict[str, float]] = field(default_factory=list)
    persons: List[int] = field(default_factory=list)

    @property
    def fps(self) -> float:
        total = sum(f["total"] for f in self.frames)
        return len(self.frames) / total if total > 0 else 0.0


def slice_runner(one_frame, clock: StageClock):
    """-> run(warmup, frames, seconds) -> Slice: `measure` of `one_frame() -> persons` on
    `clock`. The frame function (and whatever it holds, a tracker say) lives across slices."""
    def run(warmup: int = 3, frames: Optional[int] = None, seconds: Optional[float] = 5.0) -> Slice:
        persons = measure(one_frame, clock, warmup, frames, seconds)
        return Slice(frames=list(clock.frames), persons=persons)
    return run


def add_infer(slices: Sequence[Slice], stages: Sequence[str]) -> None:
    """Book every frame's `infer` time (the sum of `stages`: what the engine ratio compares)."""
    for sl in slices:
        for f in sl.frames:
            f["infer"] = sum(f.get(s, 0.0) for s in stages)


def infer_fps(slices: Sequence[Slice]) -> Dict[str, float]:
    """Frames per second of detection + pose alone: median and best over the slices."""
    per = []
    for sl in slices:
        t = sum(f.get("infer", 0.0) for f in sl.frames)
        if t > 0:
            per.append(len(sl.frames) / t)
    if not per:
        return {"infer_fps": 0.0, "infer_fps_best": 0.0}
    return {"infer_fps": statistics.median(per), "infer_fps_best": max(per)}


def spread_pct(values: Sequence[float]) -> float:
    """(max - min) / median in percent (values not empty)."""
    med = statistics.median(values)
    return 100.0 * (max(values) - min(values)) / med if med > 0 else float("nan")


def row_summary(slices: Sequence[Slice], stages: List[str]) -> Dict[str, object]:
    """What every bench row reports: frames, mean persons, FPS over the slices, stage latencies."""
    frames = [f for s in slices for f in s.frames]
    persons = [p for s in slices for p in s.persons]
    row: Dict[str, object] = {"frames": len(frames), "persons": float(np.mean(persons)) if persons else 0.0}
    row.update(fps_summary(slices))
    if "infer" in stages:
        row.update(infer_fps(slices))
    row["stages_ms"] = stage_table(frames, stages)
    return row


def fps_summary(slices: Sequence[Slice]) -> Dict[str, object]:
    """A row measured in slices spread over the run: its FPS is the median of the slices'
    FPS, so a stretch when the device was busy or throttled moves one slice, not the
    row. `fps_best` is the fastest slice: what the device does undisturbed (timeit's rule:
    slower repeats come from other load, not from the code), the steadier figure to compare
    across runs on a shared machine. The slices, their spread and the all-frames mean are
    kept so the noise stays visible."""
    per = [s.fps for s in slices if s.frames]
    frames = [f for s in slices for f in s.frames]
    total = sum(f["total"] for f in frames)
    if not per:
        return {"fps": 0.0, "fps_best": 0.0, "fps_slices": [], "fps_mean": 0.0, "fps_spread_pct": float("nan"),
                "median_quiet": False}
    med = statistics.median(per)
    return {"fps": med, "fps_best": max(per), "fps_slices": per,
            "fps_mean": len(frames) / total if total > 0 else 0.0,
            "fps_spread_pct": spread_pct(per), "median_quiet": median_is_quiet(slices)}


def median_is_quiet(slices: Sequence[Slice], tolerance: float = 0.10) -> bool:
    """Whether most slices ran within `tolerance` of the fastest one, so the median is a
    quiet slice. Not so when other load or throttling slowed half the row or more."""
    per = [s.fps for s in slices if s.frames]
    if not per:
        return False
    quiet = sum(f >= (1.0 - tolerance) * max(per) for f in per)
    return quiet > len(per) / 2


def split_budget(rounds: int, frames: Optional[int], seconds: Optional[float]):
    """Per-slice budgets [(frames, seconds)] so that `rounds` slices add up to the row's budget."""
    if frames is not None:
        n = max(1, min(rounds, frames))
        return [(frames // n + (1 if i < frames % n else 0), None) for i in range(n)]
    n = max(1, rounds)
    return [(None, (seconds or 5.0) / n)] * n


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
    """Peak resident memory of this process. Linux: VmHWM of /proc/self/status, which starts
    afresh at exec (getrusage's ru_maxrss keeps the high-water mark of the process that
    spawned us, so a child of a big parent would report the parent's peak). Elsewhere
    ru_maxrss (macOS reports bytes, others KiB)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0
