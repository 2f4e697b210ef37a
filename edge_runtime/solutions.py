"""rtmlib-style solutions: a person detector followed by a top-down pose model.

    body = Body(det="models/rtmdet-nano", pose="models/rtmpose-t_body8")
    keypoints, scores = body(image)          # (N, 17, 2) image pixels, (N, 17)
    poses = body.infer(image)                # boxes, box_scores, keypoints, scores
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from .detector import Detector
from edgepose.errors import EdgeposeError
from .image_input import as_bgr8
from .pose import PoseEstimator
from .schedule import make_plan


@dataclass
class Poses:
    """One frame's people. N persons, K keypoints; all float32, image pixels."""
    boxes: np.ndarray        # (N, 4) x1, y1, x2, y2
    box_scores: np.ndarray   # (N,)
    keypoints: np.ndarray    # (N, K, 2) x, y
    scores: np.ndarray       # (N, K)

    def __len__(self) -> int:
        return int(self.boxes.shape[0])


class TopDownSolution:
    """Detector + PoseEstimator. `det`/`pose`: converted model folder, .json or .ncnn.param.

    threads, precision ("fp32" | "fp16" | "int8" | None) and fp16 (force fp16 arithmetic on/off)
    apply to both models unless det_precision / pose_precision say otherwise.
    The schedule (threads per extractor, persons in flight, cores, wait policy) is chosen from
    the machine (schedule.py; `.plan`, printed by `edgepose run`/`bench`). threads: ncnn threads
    of every extractor, concurrency: persons run at once; both override the plan.
    cores: "auto" (big cores on big.LITTLE, else all) | "big" | "little" | "all".
    device: "cpu" | "gpu" | "gpu:N" (Vulkan) for both models unless det_device / pose_device say otherwise.
    """
    keypoint_counts: Tuple[int, ...] = ()   # allowed K (empty: any)
    kind = "pose"

    def __init__(self, det: Optional[str] = None, pose: Optional[str] = None, threads: Optional[int] = None,
                 precision: Optional[str] = None, fp16: Optional[bool] = None,
                 det_precision: Optional[str] = None, pose_precision: Optional[str] = None,
                 score_threshold: Optional[float] = None, nms_iou: Optional[float] = None,
                 concurrency: Optional[int] = None, cores: str = "auto", device: Optional[str] = None,
                 det_device: Optional[str] = None, pose_device: Optional[str] = None):
        if det is None or pose is None:
            raise EdgeposeError(f"{type(self).__name__} needs det= and pose= model paths (folders, .json or "
                                f".ncnn.param from `edgepose convert`; `edgepose demo` fetches and converts them)")
        self.plan = make_plan(cores, threads, concurrency)
        self.detector = Detector(det, threads=self.plan.det_threads, precision=det_precision or precision, fp16=fp16,
                                 score_threshold=score_threshold, nms_iou=nms_iou, device=det_device or device)
        self.pose_estimator = PoseEstimator(pose, precision=pose_precision or precision, fp16=fp16,
                                            plan=self.plan, device=pose_device or device)
        k = self.pose_estimator.num_keypoints
        if self.keypoint_counts and k and k not in self.keypoint_counts:
            raise EdgeposeError(f"{self.pose_estimator.model.json_path}: has {k} keypoints; {type(self).__name__} "
                                f"expects {' or '.join(map(str, self.keypoint_counts))} ({self.kind} model)")

    def infer(self, image: np.ndarray) -> Poses:
        """image (H, W[, C]) (any dtype as_bgr8 takes) -> the frame's boxes, box scores, keypoints, scores."""
        image = as_bgr8(image)
        boxes, box_scores = self.detector(image)
        keypoints, scores = self.pose_estimator(image, boxes)
        return Poses(boxes, box_scores, keypoints, scores)

    def __call__(self, image: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """image -> keypoints (N, K, 2) float32 image pixels, scores (N, K) float32."""
        poses = self.infer(image)
        return poses.keypoints, poses.scores


class Body(TopDownSolution):
    """Body keypoints: COCO-17 (RTMPose body), also Halpe-26 models."""
    keypoint_counts = (17, 26)
    kind = "body"


class Wholebody(TopDownSolution):
    """COCO-WholeBody 133 keypoints (RTMPose whole-body, DWPose, RTMW)."""
    keypoint_counts = (133,)
    kind = "whole-body"
