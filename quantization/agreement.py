"""Agreement of a reduced-precision model with its FP32 reference, without labels.

All metrics compare the same persons (same boxes) run through two variants:
- mean pixel error: Euclidean distance between the two keypoint positions, image pixels;
- PCK@0.05: share of keypoints whose distance is at most 0.05 x the person box size
  (box size = max(width, height), as mmpose's PCK with bbox normalisation);
- SimCC argmax agreement: share of keypoints whose x and y argmax bins are the same
  (exact) or differ by at most one bin on each axis (within one);
- box agreement (detectors): per FP32 box, the best IoU with the variant's boxes.
Every metric is given per body part (keypoint-set `parts`) and for all keypoints.
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

PCK_FRACTION = 0.05


def _parts_with_all(parts: Optional[Mapping[str, Sequence[int]]], k: int) -> Dict[str, Tuple[int, int]]:
    out = {"all": (0, k)}
    for name, (start, stop) in (parts or {}).items():
        if (start, stop) != (0, k):
            out[name] = (int(start), int(stop))
    return out


def keypoint_errors(ref_kpts: np.ndarray, test_kpts: np.ndarray) -> np.ndarray:
    """(N, K) Euclidean pixel distance between two (N, K, 2) keypoint arrays."""
    ref = np.asarray(ref_kpts, np.float64)
    test = np.asarray(test_kpts, np.float64)
    if ref.shape != test.shape or ref.ndim != 3 or ref.shape[-1] != 2:
        raise ValueError(f"keypoint arrays {ref.shape} and {test.shape} are not the same (N, K, 2)")
    return np.linalg.norm(ref - test, axis=-1)


def box_sizes(boxes_xyxy: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
    return np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])


def keypoint_agreement(ref_kpts: np.ndarray, test_kpts: np.ndarray, boxes_xyxy: np.ndarray,
                       parts: Optional[Mapping[str, Sequence[int]]] = None) -> Dict[str, Dict[str, float]]:
    """{part: {"mean_px_error", "pck@0.05", "count"}} over N persons x K keypoints."""
    err = keypoint_errors(ref_kpts, test_kpts)
    size = box_sizes(boxes_xyxy)
    if len(size) != err.shape[0]:
        raise ValueError(f"{len(size)} boxes for {err.shape[0]} persons")
    within = err <= PCK_FRACTION * size[:, None]
    out = {}
    for name, (a, b) in _parts_with_all(parts, err.shape[1]).items():
        e, w = err[:, a:b], within[:, a:b]
        out[name] = {"mean_px_error": float(e.mean()) if e.size else float("nan"),
                     "pck@0.05": float(w.mean()) if w.size else float("nan"),
                     "count": int(e.size)}
    return out


def simcc_bins(simcc_x: np.ndarray, simcc_y: np.ndarray) -> np.ndarray:
    """(N, K, 2) int argmax bins of SimCC logits (N, K, Wx), (N, K, Wy); first maximum on ties."""
    return np.stack([np.argmax(simcc_x, -1), np.argmax(simcc_y, -1)], axis=-1)


def argmax_agreement(ref_bins: np.ndarray, test_bins: np.ndarray,
                     parts: Optional[Mapping[str, Sequence[int]]] = None) -> Dict[str, Dict[str, float]]:
    """{part: {"argmax_exact", "argmax_within_one", "count"}} from (N, K, 2) argmax bins."""
    if np.shape(ref_bins) != np.shape(test_bins) or np.ndim(ref_bins) != 3:
        raise ValueError(f"argmax bins {np.shape(ref_bins)} and {np.shape(test_bins)} are not the same (N, K, 2)")
    d = np.abs(np.asarray(ref_bins, np.int64) - np.asarray(test_bins, np.int64))
    exact = (d == 0).all(axis=-1)
    near = (d <= 1).all(axis=-1)
    out = {}
    for name, (a, b) in _parts_with_all(parts, d.shape[1]).items():
        e, n = exact[:, a:b], near[:, a:b]
        out[name] = {"argmax_exact": float(e.mean()) if e.size else float("nan"),
                     "argmax_within_one": float(n.mean()) if n.size else float("nan"),
                     "count": int(e.size)}
    return out


def simcc_argmax_agreement(ref_x: np.ndarray, ref_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                           parts: Optional[Mapping[str, Sequence[int]]] = None) -> Dict[str, Dict[str, float]]:
    """argmax_agreement straight from SimCC logits (N, K, W)."""
    for a, b in ((ref_x, test_x), (ref_y, test_y)):
        if np.shape(a) != np.shape(b) or np.ndim(a) != 3:
            raise ValueError(f"SimCC arrays {np.shape(a)} and {np.shape(b)} are not the same (N, K, W)")
    return argmax_agreement(simcc_bins(ref_x, ref_y), simcc_bins(test_x, test_y), parts)


def box_iou_xyxy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of xyxy boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=-1)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=-1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def best_box_ious(ref_boxes: np.ndarray, test_boxes: np.ndarray) -> np.ndarray:
    """For each reference box, the best IoU with any test box (0 when the test found none)."""
    iou = box_iou_xyxy(ref_boxes, test_boxes)
    if iou.shape[0] == 0:
        return np.zeros(0)
    return iou.max(axis=1) if iou.shape[1] else np.zeros(iou.shape[0])


def summarize_box_agreement(best_ious: np.ndarray, ref_count: int, test_count: int) -> Dict[str, float]:
    best = np.asarray(best_ious, np.float64)
    return {"mean_best_iou": float(best.mean()) if best.size else float("nan"),
            "matched@0.5": float((best >= 0.5).mean()) if best.size else float("nan"),
            "boxes_ref": int(ref_count), "boxes": int(test_count)}
