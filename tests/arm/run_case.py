"""One fixed workload run identically on x86 (host) and aarch64 (emulated root).

A case folder holds `case.json`, the images and the converted models. `run_case` runs the
detector and the pose model at each precision listed there ({"detector"|"pose": {precision:
model folder relative to the case}}) and returns flat arrays, so the
two machines' results can be compared key by key. Pose runs on the boxes stored in the case
(the x86 fp32 detections), so a pose difference is the pose model's, not the detector's.
Only the board runtime is used here (edgepose.runtime + numpy + OpenCV).
"""
from __future__ import annotations

import json
import os
from typing import Dict, Optional, Sequence

import numpy as np

CASE_FILE = "case.json"


def load_case(case_dir: str) -> dict:
    with open(os.path.join(case_dir, CASE_FILE), encoding="utf-8") as f:
        return json.load(f)


def read_image(case_dir: str, rel: str) -> np.ndarray:
    import cv2
    image = cv2.imread(os.path.join(case_dir, rel), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(os.path.join(case_dir, rel))
    return image


def run_detector(case_dir: str, case: dict, precision: str) -> Dict[str, np.ndarray]:
    from edgepose.runtime.detector import Detector
    det = Detector(os.path.join(case_dir, case["detector"][precision]), threads=1, precision=precision)
    out: Dict[str, np.ndarray] = {}
    for i, rel in enumerate(case["images"]):
        image = read_image(case_dir, rel)
        canvas, factors = det.preprocess(image)
        raw = det.inference(canvas)
        for role, arr in raw.items():
            out[f"det/{precision}/{i}/raw/{role}"] = arr
        boxes, scores = det.postprocess(raw, factors, image.shape)
        out[f"det/{precision}/{i}/boxes"] = boxes
        out[f"det/{precision}/{i}/scores"] = scores
    return out


def run_pose(case_dir: str, case: dict, precision: str) -> Dict[str, np.ndarray]:
    from edgepose.runtime.pose import PoseEstimator
    pose = PoseEstimator(os.path.join(case_dir, case["pose"][precision]), threads=1, precision=precision)
    out: Dict[str, np.ndarray] = {}
    for i, rel in enumerate(case["images"]):
        image = read_image(case_dir, rel)
        boxes = np.asarray(case["boxes"][i], dtype=np.float32).reshape(-1, 4)
        crops, centers, scales, runs = pose.preprocess(image, boxes)
        simcc_x, simcc_y = pose.inference(crops)
        keypoints, scores = pose.postprocess(simcc_x, simcc_y, centers, scales, runs)
        out[f"pose/{precision}/{i}/simcc_x"] = simcc_x
        out[f"pose/{precision}/{i}/simcc_y"] = simcc_y
        out[f"pose/{precision}/{i}/keypoints"] = keypoints
        out[f"pose/{precision}/{i}/scores"] = scores
    return out


def run_case(case_dir: str, precisions: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
    """Every model at every precision of the case (or only those in `precisions`), runtime defaults."""
    case = load_case(case_dir)
    results: Dict[str, np.ndarray] = {}
    for precision in case["detector"]:
        if precisions is None or precision in precisions:
            results.update(run_detector(case_dir, case, precision))
    for precision in case["pose"]:
        if precisions is None or precision in precisions:
            results.update(run_pose(case_dir, case, precision))
    return results


def non_finite_keys(results: Dict[str, np.ndarray]):
    return sorted(k for k, v in results.items() if not np.isfinite(v).all())


def keypoint_distances(results: Dict[str, np.ndarray], reference: Dict[str, np.ndarray],
                       precision: str, ref_precision: str = "fp32") -> np.ndarray:
    """Every keypoint's distance (px) between `results` at `precision` and `reference` at `ref_precision`."""
    prefix = f"pose/{precision}/"
    dists = [np.zeros(0, np.float32)]
    for key in sorted(results):
        if key.startswith(prefix) and key.endswith("/keypoints"):
            ref = reference[key.replace(prefix, f"pose/{ref_precision}/", 1)]
            dists.append(np.linalg.norm(results[key] - ref, axis=-1).ravel())
    return np.concatenate(dists)


def keypoint_deviation(results: Dict[str, np.ndarray], reference: Dict[str, np.ndarray],
                       precision: str, ref_precision: str = "fp32") -> float:
    """Largest keypoint distance (px) between `results` at `precision` and `reference` fp32."""
    dists = keypoint_distances(results, reference, precision, ref_precision)
    return float(dists.max()) if dists.size else 0.0


def box_deviation(results: Dict[str, np.ndarray], reference: Dict[str, np.ndarray],
                  precision: str, ref_precision: str = "fp32") -> float:
    """Largest box-corner difference (px); inf when the number of boxes differs."""
    worst = 0.0
    prefix = f"det/{precision}/"
    for key in results:
        if key.startswith(prefix) and key.endswith("/boxes"):
            ref = reference[key.replace(prefix, f"det/{ref_precision}/", 1)]
            if ref.shape != results[key].shape:
                return float("inf")
            if ref.size:
                worst = max(worst, float(np.abs(results[key] - ref).max()))
    return worst


def simcc_deviation(results: Dict[str, np.ndarray], reference: Dict[str, np.ndarray],
                    precision: str, ref_precision: str = "fp32") -> float:
    """Largest absolute SimCC logit difference."""
    worst = 0.0
    prefix = f"pose/{precision}/"
    for key in results:
        if key.startswith(prefix) and "/simcc_" in key and results[key].size:
            ref = reference[key.replace(prefix, f"pose/{ref_precision}/", 1)]
            worst = max(worst, float(np.abs(results[key] - ref).max()))
    return worst
