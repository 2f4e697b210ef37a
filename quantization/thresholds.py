"""Activation clipping thresholds and weight scales for symmetric int8 (range -127..127).

Activations: one scale per quantised layer input (`scale = 127 / threshold`), chosen
from a histogram of |x| over the calibration set:
  kl          ncnn2table's method: 2048 bins over [0, absmax], zeros skipped; every
              threshold bin t in 128..2047 is tried by merging the clipped distribution
              into 128 levels, expanding it back and taking the KL divergence; the winner's
              threshold is (t + 0.5) * absmax / 2048.
  aciq        ncnn2table's ACIQ: Gaussian clip alpha(8 bit) * std, with std estimated
              from absmax and the element count N; never above absmax.
  percentile  the 99.99th percentile of |x| (non-zero values).
  mse         the threshold minimising the expected squared error (clipping + rounding)
              under the histogram.
Weights: one scale per output channel (per group for depthwise), 127 / absmax, 31 / absmax
for 3x3 stride-1 convolutions (ncnn's int8 winograd F43 needs 6-bit weights), as ncnn2table.
"""
from __future__ import annotations

import math

import numpy as np

NUM_BINS = 2048
TARGET_BIN = 128
METHODS = ("kl", "aciq", "percentile", "mse")


def kl_threshold_bin(hist: np.ndarray, num_bins: int = NUM_BINS, target_bin: int = TARGET_BIN) -> int:
    """The threshold bin ncnn2table's KL search picks for a histogram of |x|."""
    hist = np.asarray(hist, dtype=np.float64)
    total = hist.sum()
    if total <= 0:
        return num_bins - 1
    h = (hist / total).astype(np.float32).astype(np.float64)
    eps = 1e-4
    best_t, best_kl = target_bin, math.inf
    csum = np.concatenate([[0.0], np.cumsum(h)])
    for t in range(target_bin, num_bins):
        clip = np.full(t, eps)
        clip += h[:t]
        clip[t - 1] += csum[num_bins] - csum[t]
        per = t / target_bin
        # Merge bins [j*per, (j+1)*per) of the *unclipped* histogram into level j with
        # fractional edge bins, average per source bin, then spread back (ncnn's scheme).
        starts = np.arange(target_bin) * per
        ends = starts + per
        lu = np.ceil(starts).astype(np.int64)
        ls = lu - starts
        rl = np.floor(ends).astype(np.int64)
        rs = ends - rl
        lu[0], ls[0] = 0, 0.0                   # first level has no left fraction
        rl[-1], rs[-1] = t, 0.0                 # last level ends exactly at t
        ls = np.where(ls > 0, ls, 0.0)
        rs = np.where(rs > 0, rs, 0.0)
        left_h = np.where(ls > 0, h[np.maximum(lu - 1, 0)], 0.0)
        right_h = np.where(rs > 0, h[np.minimum(rl, num_bins - 1)], 0.0)
        inner = np.where(rl > lu, csum[rl] - csum[lu], 0.0)
        quant = (inner + ls * left_h + rs * right_h) / (rl - lu + ls + rs)
        expand = np.full(t, eps)
        diff = np.zeros(t + 1)
        full = rl > lu
        np.add.at(diff, lu[full], quant[full])
        np.add.at(diff, rl[full], -quant[full])
        expand += np.cumsum(diff)[:t]
        m = ls > 0
        np.add.at(expand, lu[m] - 1, ls[m] * quant[m])
        m = rs > 0
        np.add.at(expand, rl[m], rs[m] * quant[m])
        kl = float(np.sum(clip * np.log(clip / expand)))
        if kl < best_kl:
            best_kl, best_t = kl, t
    return best_t


def kl_threshold(hist: np.ndarray, absmax: float) -> float:
    return (kl_threshold_bin(hist) + 0.5) * absmax / len(hist)


def aciq_threshold(absmax: float, count: int, num_bits: int = 8) -> float:
    alpha_gaussian = [0, 1.71063519, 2.15159277, 2.55913646, 2.93620062, 3.28691474, 3.6151146, 3.92403714]
    gaussian_const = (0.5 * 0.35) * (1 + math.sqrt(math.pi * math.log(4)))
    std = (absmax * 2 * gaussian_const) / math.sqrt(2 * math.log(max(count, 2)))
    return min(absmax, alpha_gaussian[num_bits - 1] * std)


def percentile_threshold(hist: np.ndarray, absmax: float, percentile: float = 99.99) -> float:
    hist = np.asarray(hist, dtype=np.float64)
    cdf = np.cumsum(hist)
    if cdf[-1] <= 0:
        return absmax
    idx = int(np.searchsorted(cdf, cdf[-1] * percentile / 100.0))
    return (min(idx, len(hist) - 1) + 1) * absmax / len(hist)


def mse_threshold(hist: np.ndarray, absmax: float, levels: int = 127) -> float:
    """Threshold minimising E[(x - q(x))^2] for x distributed as the histogram (bin centres)."""
    hist = np.asarray(hist, dtype=np.float64)
    n = len(hist)
    width = absmax / n
    centres = (np.arange(n) + 0.5) * width
    best, best_err = absmax, math.inf
    for t_bin in range(TARGET_BIN // 2, n + 1, 4):
        t = t_bin * width
        step = t / levels
        inside = centres <= t
        err_round = np.sum(hist[inside]) * step * step / 12.0
        err_clip = np.sum(hist[~inside] * (centres[~inside] - t) ** 2)
        err = err_round + err_clip
        if err < best_err:
            best_err, best = err, t
    return best


def activation_scale(method: str, hist: np.ndarray, absmax: float, count: int) -> float:
    """int8 scale (127 / threshold) for one layer input."""
    if absmax <= 0:
        return 1.0
    if method == "kl":
        t = kl_threshold(hist, absmax)
    elif method == "aciq":
        t = aciq_threshold(absmax, count)
    elif method == "percentile":
        t = percentile_threshold(hist, absmax)
    elif method == "mse":
        t = mse_threshold(hist, absmax)
    else:
        raise ValueError(f"unknown calibration method {method!r} (one of {', '.join(METHODS)})")
    return 127.0 / t if t > 0 else 1.0


def weight_scales(weight: np.ndarray, groups: int, levels: float = 127.0) -> np.ndarray:
    """Per-group scales `levels / absmax` over `groups` equal slices of the flat weights."""
    w = np.asarray(weight, dtype=np.float32).reshape(groups, -1)
    absmax = np.abs(w).max(axis=1)
    return np.where(absmax > 0, levels / np.where(absmax > 0, absmax, 1.0), 1.0).astype(np.float32)


def float2int8(x: np.ndarray) -> np.ndarray:
    """ncnn's float2int8: round half away from zero, clamp to [-127, 127]."""
    r = np.sign(x) * np.floor(np.abs(x) + 0.5)
    return np.clip(r, -127, 127).astype(np.int8)
