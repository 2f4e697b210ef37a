"""The public API as a user's type-checked code calls it; never run, only checked.

tests/board_install.sh runs `mypy --strict` on this file against the installed wheel, so a public
name that mypy cannot see (not re-exported by `edgepose/__init__.py`), a missing annotation or a
signature that refuses ordinary arguments (lists for boxes, (image, timestamp) frames, a duck-typed
solution) fails CI.
"""
from typing import Iterator, List, Optional, Tuple

import numpy as np

from edgepose import (Body, Detector, EdgeposeError, PoseEstimator, Poses, PoseTracker, TrackedPoses, Wholebody,
                      draw_mmpose, draw_openpose)


def photo(image: np.ndarray, det: str, pose: str) -> np.ndarray:
    wb = Wholebody(det=det, pose=pose, precision="fp16", device="cpu")
    keypoints, scores = wb(image)                              # (N, 133, 2), (N, 133)
    poses: Poses = wb.infer(image)
    canvas = draw_mmpose(image, keypoints, scores, boxes=poses.boxes, threshold=0.3)
    draw_mmpose(canvas, [[[1.0, 2.0]]], [[0.9]], boxes=[[0.0, 0.0, 4.0, 4.0]], track_ids=[7])
    return draw_openpose(image.shape, poses.keypoints, poses.scores)


def stages(image: np.ndarray, det: str, pose: str) -> Tuple[np.ndarray, np.ndarray]:
    detector = Detector(det, threads=2, score_threshold=0.3)
    canvas, factors = detector.preprocess(image)
    boxes, box_scores = detector.postprocess(detector.inference(canvas), factors, image.shape)
    estimator = PoseEstimator(pose, concurrency=2)
    estimator(image, [[0, 0, 10, 10]])                         # boxes as plain lists
    estimator(image)                                           # None: the whole image
    crops, centers, scales, runs = estimator.preprocess(image, boxes)
    simcc_x, simcc_y = estimator.inference(crops)
    return estimator.postprocess(simcc_x, simcc_y, centers, scales, runs)


class MySolution:
    """Any object with a detector and a pose estimator can feed a PoseTracker."""

    def __init__(self, det: str, pose: str) -> None:
        self.detector = Detector(det)
        self.pose_estimator = PoseEstimator(pose)


def video(frames: List[np.ndarray], times: List[float], det: str, pose: str) -> Optional[TrackedPoses]:
    tracker = PoseTracker(Body(det=det, pose=pose), det_every=5, smooth=True)
    last: Optional[TrackedPoses] = None
    for poses in tracker.stream(frames):
        last = poses
    stamped: Iterator[TrackedPoses] = tracker.stream(zip(frames, times))
    for poses in stamped:
        print(poses.track_ids, poses.detected, len(poses))
    PoseTracker(MySolution(det, pose))(frames[0], timestamp=0.5)
    try:
        PoseTracker.load(det, pose, device="gpu", det_every=3)
    except EdgeposeError as e:
        print(e.code)
    return last
