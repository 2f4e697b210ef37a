"""SimCC decoding, vectorised over all persons and keypoints (mmpose 1.x `get_simcc_maximum`).

For each person n and keypoint k:
  x_bin = argmax(simcc_x[n, k]), y_bin = argmax(simcc_y[n, k])   (first maximum on ties)
  score = min(max(simcc_x[n, k]), max(simcc_y[n, k]))             (mmpose 1.3: the smaller maximum)
  if score <= 0: x_bin = y_bin = -1                                 (mmpose marks them invalid)
  location in model-input pixels = bin / simcc_split_ratio
Scores are the raw maxima (no sigmoid/softmax), as the official decoder returns them.
Note: rtmlib 0.0.16 averages the two maxima instead of taking the smaller one.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np


def simcc_maximum(simcc_x: np.ndarray, simcc_y: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(N, K, Wx), (N, K, Wy) -> bins (N, K, 2) float32 and scores (N, K) float32."""
    if simcc_x.ndim != 3 or simcc_y.ndim != 3 or simcc_x.shape[:2] != simcc_y.shape[:2]:
        raise ValueError(f"SimCC shapes {simcc_x.shape} and {simcc_y.shape} are not (N, K, W) pairs")
    x_bins = simcc_x.argmax(axis=2)
    y_bins = simcc_y.argmax(axis=2)
    locs = np.stack((x_bins, y_bins), axis=-1).astype(np.float32)
    scores = np.minimum(simcc_x.max(axis=2), simcc_y.max(axis=2)).astype(np.float32)
    locs[scores <= 0.0] = -1.0
    return locs, scores


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray,
                 split_ratio: float) -> Tuple[np.ndarray, np.ndarray]:
    """Keypoints in model-input pixels (N, K, 2) float32 and their scores (N, K)."""
    locs, scores = simcc_maximum(simcc_x, simcc_y)
    return locs / np.float32(split_ratio), scores
