"""Competing load for `edgepose bench --load N`: N busy processes that stop by themselves.

Each is a separate Python process spinning on the clock for at most `seconds` (so a bench
killed half way leaves nothing running for long); they are also ended when the measurement
is over. Phones and boards always have other processes; this shows what they cost.
"""
from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager
from typing import Iterator, List

_BUSY = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


def start_busy(n: int, seconds: float) -> List[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", _BUSY.format(seconds=float(seconds))],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(max(0, int(n)))]


def stop(procs: List[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()


@contextmanager
def busy_processes(n: int, seconds: float) -> Iterator[List[subprocess.Popen]]:
    """`with busy_processes(2, 30): measure()`: two cores' worth of competing work meanwhile."""
    procs = start_busy(n, seconds)
    try:
        yield procs
    finally:
        stop(procs)
