"""How a frame uses the machine: threads per extractor, persons in flight, cores, wait policy.

The plan is picked from the cores (the big ones on a big.LITTLE phone) and, per frame, the
number of persons:
  - one image at a time (the detector; a lone person): every core on one extractor;
  - two persons or more: one single-threaded extractor per core, persons in flight at once
    (ncnn releases the GIL). Measured on 2 cores, 15 persons: 95 ms against 134 ms for
    two OpenMP threads per person, because a small pose model's layers are too short to
    split across cores without waiting at every barrier;
  - video: the detector of the next frame runs while the poses of this one do
    (`PoseTracker.stream`), using a core the poses leave idle (the last persons of a frame,
    tracking, drawing).
Wait policy: idle OpenMP threads spin briefly, then sleep (GOMP_SPINCOUNT=10000, set when edgepose
is imported, before ncnn loads; edgepose/openmp.py has the measurements). libgomp's default long
spin takes the core from the thread that has work when another process competes (two busy
processes on 2 cores: p99 2.3 s), while sleeping at once (PASSIVE) makes every layer's barrier a
wake-up and the quiet frame 3x slower.
`threads=` / `concurrency=` given by the user override the plan.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from typing import List, Optional, Sequence, Tuple

from edgepose import openmp
from edgepose.errors import BadArgumentError

CORE_CHOICES = ("auto", "big", "little", "all")
# ncnn's powersave codes: 0 all cores, 1 little cores, 2 big cores.
_POWERSAVE = {"all": 0, "little": 1, "big": 2}
WAIT_POLICY_ENV = "OMP_WAIT_POLICY"


@dataclass(frozen=True)
class Plan:
    """What the runtime does with the cores. Frozen: one plan per solution, printed by run/bench."""
    cores: str                  # "all" | "big" | "little": which cores inference runs on
    cpu_ids: Tuple[int, ...]    # those cores' ids (empty: not known, the OS decides)
    cpus: int                   # how many cores the plan uses
    det_threads: int            # ncnn threads of the detector's extractor (one image)
    pose_threads_single: int    # ncnn threads of a pose extractor when one person runs
    persons_in_flight: int      # pose extractors running at once when several persons run
    overlap: bool               # video: next frame's detector alongside this frame's poses
    wait_policy: str            # OpenMP idle threads: "passive" (sleep) or what the user set
    blocktime_ms: int           # ncnn's openmp_blocktime (LLVM OpenMP builds)
    pinned_threads: Optional[int] = None   # user's threads= (every extractor), else None
    pinned_concurrency: Optional[int] = None  # user's concurrency=, else None

    def pose_split(self, persons: int) -> Tuple[int, int]:
        """-> (threads per pose extractor, persons in flight) for a frame of `persons`."""
        if self.pinned_threads is not None or self.pinned_concurrency is not None:
            threads = self.pinned_threads or (1 if (self.pinned_concurrency or 1) > 1 else self.cpus)
            return threads, max(1, self.pinned_concurrency or 1)
        if persons <= 1:
            return self.pose_threads_single, 1
        in_flight = min(self.persons_in_flight, persons)
        return max(1, self.cpus // in_flight), in_flight

    def describe(self) -> str:
        ids = ",".join(map(str, self.cpu_ids)) if self.cpu_ids else "os-chosen"
        threads, flight = self.pose_split(2)
        t1, _ = self.pose_split(1)
        pinned = " (threads/concurrency given)" if self.pinned_threads or self.pinned_concurrency else ""
        return (f"schedule: {self.cpus} {self.cores} core(s) [{ids}]; detector {self.det_threads} thread(s); "
                f"1 person: {t1} thread(s); 2+ persons: {flight} in flight x {threads} thread(s){pinned}; "
                f"video: detector {'overlaps' if self.overlap else 'before'} poses; "
                f"idle threads {self.wait_policy}, blocktime {self.blocktime_ms} ms")

    def as_dict(self) -> dict:
        from dataclasses import asdict
        d = asdict(self)
        d["cpu_ids"] = list(self.cpu_ids)
        return d


# -- the machine -------------------------------------------------------------
def _max_freq_khz(cpu: int) -> Optional[int]:
    try:
        with open(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/cpuinfo_max_freq") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def usable_cpus() -> List[int]:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def core_clusters(cpus: Sequence[int], freqs: Optional[Sequence[Optional[int]]] = None) -> Tuple[List[int], List[int]]:
    """-> (big, little) core ids from each core's maximum frequency (what ncnn reads too).

    Little = the cores of the lowest maximum frequency when frequencies differ; everything
    else is big (a prime core counts as big). Same frequencies or unknown: all big, none little."""
    freqs = list(freqs) if freqs is not None else [_max_freq_khz(c) for c in cpus]
    known = [f for f in freqs if f]
    if len(known) != len(cpus) or len(set(known)) < 2:
        return list(cpus), []
    low = min(known)
    little = [c for c, f in zip(cpus, freqs) if f == low]
    big = [c for c, f in zip(cpus, freqs) if f != low]
    return big, little


def make_plan(cores: str = "auto", threads: Optional[int] = None, concurrency: Optional[int] = None,
              cpus: Optional[Sequence[int]] = None, freqs: Optional[Sequence[Optional[int]]] = None,
              environ=None) -> Plan:
    """The plan for this machine. `cpus`/`freqs`/`environ` let tests fake one."""
    if cores not in CORE_CHOICES:
        raise BadArgumentError(f"cores {cores!r} is not one of {', '.join(CORE_CHOICES)}")
    for name, value in (("threads", threads), ("concurrency", concurrency)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise BadArgumentError(f"{name} must be a positive integer, got {value!r}")
    env = os.environ if environ is None else environ
    ids = list(cpus) if cpus is not None else usable_cpus()
    big, little = core_clusters(ids, freqs)
    if cores == "auto":
        cores = "big" if little else "all"
    chosen = {"all": ids, "big": big, "little": little or ids}[cores]
    if cores == "little" and not little:
        cores = "all"  # one cluster: there are no little cores to prefer
    n = max(1, len(chosen))
    det_threads = threads if threads is not None else n
    policy = openmp.describe(env)
    return Plan(cores=cores, cpu_ids=tuple(chosen) if cores != "all" or little else tuple(ids), cpus=n,
                det_threads=det_threads, pose_threads_single=threads if threads is not None else n,
                persons_in_flight=concurrency if concurrency is not None else n,
                overlap=n > 1,
                wait_policy=policy, blocktime_ms=0,
                pinned_threads=threads, pinned_concurrency=concurrency)


def with_overrides(plan: Plan, threads: Optional[int] = None, concurrency: Optional[int] = None) -> Plan:
    """The same cores and policy with the user's threads/concurrency pinned."""
    if threads is None and concurrency is None:
        return plan
    fresh = make_plan(plan.cores, threads, concurrency, cpus=plan.cpu_ids or None)
    return replace(fresh, cpu_ids=plan.cpu_ids, wait_policy=plan.wait_policy)


# -- applying it -------------------------------------------------------------
def prepare_wait_policy() -> str:
    """The short spin unless the user chose (see edgepose/openmp.py); `import edgepose` already did
    this, so it only matters for code that reached here another way. Returns the policy in force."""
    loaded_first = "ncnn" in sys.modules and openmp.SPIN_ENV not in os.environ
    openmp.prefer_short_spin()
    return openmp.describe(ncnn_loaded_first=loaded_first)


def apply_to_option(opt, plan: Plan, threads: int) -> None:
    """The plan's fields of an ncnn Option (before the net loads, or between frames)."""
    opt.num_threads = int(threads)
    if hasattr(opt, "openmp_blocktime"):
        opt.openmp_blocktime = int(plan.blocktime_ms)


def bind_process_cores(plan: Plan) -> None:
    """Bind ncnn's OpenMP threads (ncnn's powersave) to the plan's cores, where ncnn can."""
    if plan.cores == "all":
        return
    import ncnn
    if hasattr(ncnn, "set_cpu_powersave"):
        ncnn.set_cpu_powersave(_POWERSAVE[plan.cores])


def bind_this_thread(plan: Plan) -> None:
    """Run the calling thread (a pose worker) on the plan's cores (Linux; elsewhere the OS decides)."""
    if plan.cores == "all" or not plan.cpu_ids or not hasattr(os, "sched_setaffinity"):
        return
    try:
        os.sched_setaffinity(0, plan.cpu_ids)  # 0: the calling thread on Linux
    except OSError:
        pass


_DEFAULT: Optional[Plan] = None


def default_plan() -> Plan:
    """This machine's plan with no overrides (computed once)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = make_plan()
    return _DEFAULT
