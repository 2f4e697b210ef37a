"""How idle OpenMP threads wait, chosen before ncnn's libgomp loads (it reads the environment once).

Measured on 2 cores (detector + one person at 2 threads; p50 / p99 ms, quiet | two busy processes):
libgomp's default spin (300,000 rounds) 27 / 39 | 27 / 2341, OMP_WAIT_POLICY=PASSIVE 90 / 155 | 69 / 140,
GOMP_SPINCOUNT=10000 28 / 34 | 77 / 245. A short spin keeps the quiet speed (every ncnn layer ends in a
barrier, and waking a sleeping thread costs more than the layer) and, once another process holds the
core, gives it up in microseconds instead of spinning through the time slice.
"""
from __future__ import annotations

import os
import sys
from typing import Mapping, Optional

POLICY_ENV = "OMP_WAIT_POLICY"
SPIN_ENV = "GOMP_SPINCOUNT"
SHORT_SPIN = "10000"


def prefer_short_spin(environ: Optional[dict] = None) -> None:
    """Set a short spin unless ncnn is already loaded or the user chose a policy or spin count."""
    env = os.environ if environ is None else environ
    if "ncnn" in sys.modules or POLICY_ENV in env or SPIN_ENV in env:
        return
    env[SPIN_ENV] = SHORT_SPIN


def describe(environ: Optional[Mapping[str, str]] = None, ncnn_loaded_first: bool = False) -> str:
    env = os.environ if environ is None else environ
    if env.get(POLICY_ENV):
        return f"{POLICY_ENV}={env[POLICY_ENV].lower()}"
    if env.get(SPIN_ENV):
        return f"spin {env[SPIN_ENV]} rounds, then sleep"
    return "libgomp default spin" + (" (ncnn was imported before edgepose)" if ncnn_loaded_first else "")
