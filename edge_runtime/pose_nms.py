"""Pose-level NMS: one person never yields two skeletons.

Two boxes on the same person (a detection plus a box carried from the last
frame, or two detections the box NMS let through) give two nearly identical
skeletons. Box IoU misses some of these (a tight and a loose box), so poses are
compared by OKS, the COCO keypoint similarity: the mean over keypoints
confident in both poses of exp(-d^2 / (2 * area * (2 sigma)^2)), with the
area of the reference pose's box. The most confident pose is kept and every
pose with OKS above `oks_threshold` against it is dropped; then the next.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

# Used when the model metadata carries no sigmas: the COCO-17 body value range.
DEFAULT_SIGMA = 0.05


def _sigmas(k: int, sigmas) -> np.ndarray:
    if sigmas is None or len(sigmas) != k:
        return np.full(k, DEFAULT_SIGMA, np.float32)
    s = np.asarray([DEFAULT_SIGMA if v is None else v for v in sigmas], np.float32)
    return s


def box_area(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def keypoint_boxes(keypoints: np.ndarray, scores: np.ndarray, score_threshold: float) -> np.ndarray:
    """Tight box (N,4) around each pose's confident keypoints (all keypoints if none is)."""
    kp = np.asarray(keypoints, np.float32)
    ok = np.asarray(scores) >= score_threshold
    ok = np.where(ok.any(axis=1, keepdims=True), ok, True)
    big = np.float32(1e9)
    x = np.where(ok, kp[..., 0], big), np.where(ok, kp[..., 0], -big)
    y = np.where(ok, kp[..., 1], big), np.where(ok, kp[..., 1], -big)
    return np.stack([x[0].min(1), y[0].min(1), x[1].max(1), y[1].max(1)], axis=1).astype(np.float32)


def oks_matrix(kp_a, sc_a, kp_b, sc_b, boxes_a=None, sigmas=None,
               score_threshold: float = 0.3) -> np.ndarray:
    """OKS of every pose in a (N,K,2) with every pose in b (M,K,2) -> (N,M).

    Only keypoints with score >= score_threshold in both poses count; a pair
    with none in common has OKS 0. The scale is the area of a's box (or of the
    tight box around a's keypoints when no boxes are given).
    """
    kp_a = np.asarray(kp_a, np.float32)
    kp_b = np.asarray(kp_b, np.float32)
    n, m = len(kp_a), len(kp_b)
    if n == 0 or m == 0:
        return np.zeros((n, m), np.float32)
    k = kp_a.shape[1]
    if kp_b.shape[1] != k:
        return np.zeros((n, m), np.float32)
    var = (2 * _sigmas(k, sigmas)) ** 2
    if boxes_a is None:
        boxes_a = keypoint_boxes(kp_a, sc_a, score_threshold)
    area = np.maximum(box_area(boxes_a), 1.0)
    d2 = ((kp_a[:, None] - kp_b[None]) ** 2).sum(-1)                       # (N,M,K)
    e = d2 / (2.0 * area[:, None, None] * var[None, None, :])
    valid = (np.asarray(sc_a)[:, None, :] >= score_threshold) & (np.asarray(sc_b)[None, :, :] >= score_threshold)
    valid &= np.isfinite(d2)
    cnt = valid.sum(-1)
    s = np.where(valid, np.exp(-np.minimum(e, 80.0)), 0.0).sum(-1)
    return np.where(cnt > 0, s / np.maximum(cnt, 1), 0.0).astype(np.float32)


def pose_nms(keypoints, scores, boxes=None, sigmas=None, oks_threshold: float = 0.5,
             score_threshold: float = 0.3, pose_scores: Optional[np.ndarray] = None) -> np.ndarray:
    """Indices of the poses to keep, most confident first.

    A pose's confidence is `pose_scores` if given, else the mean of its keypoint
    scores. Poses with OKS > oks_threshold against a kept one are dropped.
    """
    keypoints = np.asarray(keypoints, np.float32)
    scores = np.asarray(scores, np.float32)
    n = len(keypoints)
    if n == 0:
        return np.zeros(0, np.int64)
    conf = scores.mean(axis=1) if pose_scores is None else np.asarray(pose_scores, np.float32)
    order = np.argsort(-conf, kind="stable")
    if boxes is None:
        boxes = keypoint_boxes(keypoints, scores, score_threshold)
    boxes = np.asarray(boxes, np.float32)
    oks = oks_matrix(keypoints, scores, keypoints, scores, boxes_a=boxes, sigmas=sigmas,
                     score_threshold=score_threshold)
    # Symmetric: a small pose inside a large one is judged on the smaller scale too.
    oks = np.minimum(oks, oks.T)
    keep = []
    suppressed = np.zeros(n, bool)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        suppressed |= oks[i] > oks_threshold
    return np.asarray(keep, np.int64)
