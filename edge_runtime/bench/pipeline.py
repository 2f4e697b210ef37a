"""The edgepose pipeline under a stage clock: decode, detect, crop, pose, decode keypoints,
track/smooth, draw. Each stage calls the same methods `Body`/`Wholebody` and `PoseTracker`
use, so the timing is of the code users run, not of a copy of it."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Dict, List, Optional

import cv2
import numpy as np

from ..detector import Detector
from ..draw import draw_mmpose
from ..pose import PoseEstimator
from ..pose_tracker import PoseTracker
from ..schedule import make_plan
from .timing import Slice, StageClock, add_infer, row_summary, slice_runner

STAGES = ["decode", "detect", "crop", "pose", "decode_keypoints", "track_smooth", "draw", "total"]
# Parts of `detect` and `pose` spent inside ncnn (extractor + extract); the rest of the
# frame is our own Python/numpy/OpenCV work.
NCNN_STAGES = ["detect_ncnn", "pose_ncnn"]
# What the ratio against the baseline compares: detection + pose (crops and keypoint decoding
# included), the work the baseline does too. Image decoding, tracking and drawing are timed but
# left out of the ratio, for both engines.
INFER_STAGES = ["detect", "crop", "pose", "decode_keypoints"]
_TRACKER_INNER = ("detect", "crop", "pose", "decode_keypoints")


class _TimedDetector:
    def __init__(self, detector: Detector, clock: StageClock):
        self.inner, self.clock = detector, clock
        self.meta = detector.meta
        self.model = detector.model

    def __call__(self, image):
        d, c = self.inner, self.clock
        t0 = time.perf_counter()
        canvas, factors = d.preprocess(image)
        t1 = time.perf_counter()
        outputs = d.inference(canvas)
        t2 = time.perf_counter()
        result = d.postprocess(outputs, factors, image.shape)
        t3 = time.perf_counter()
        c.add("detect", t3 - t0)
        c.add("detect_ncnn", t2 - t1)
        return result


class _TimedPose:
    def __init__(self, pose: PoseEstimator, clock: StageClock):
        self.inner, self.clock = pose, clock
        self.meta = pose.meta

    def __call__(self, image, boxes):
        p, c = self.inner, self.clock
        with c.stage("crop"):
            crops, centers, scales, runs = p.preprocess(image, np.asarray(boxes, np.float32).reshape(-1, 4))
        t0 = time.perf_counter()
        simcc_x, simcc_y = p.inference(crops)
        dt = time.perf_counter() - t0
        c.add("pose", dt)
        c.add("pose_ncnn", dt)
        with c.stage("decode_keypoints"):
            return p.postprocess(simcc_x, simcc_y, centers, scales, runs)


@dataclass
class _Solution:
    detector: object
    pose_estimator: object


def load_pipeline(det_model: str, pose_model: str, precision: str, threads: Optional[int],
                  concurrency: Optional[int] = None, cores: str = "auto", device: str = "cpu"):
    """threads/concurrency None: the schedule's own choice (what `Wholebody(det, pose)` does)."""
    t0 = time.perf_counter()
    plan = make_plan(cores, threads, concurrency)
    det = Detector(det_model, threads=plan.det_threads, precision=precision if precision != "fp16" else "fp32",
                   fp16=precision == "fp16", device=device)
    pose = PoseEstimator(pose_model, precision=precision, plan=plan, device=device)
    return det, pose, time.perf_counter() - t0


def pipeline_runner(det: Detector, pose: PoseEstimator, encoded: bytes, det_every: int = 1, draw: bool = True):
    """-> run(warmup, frames, seconds) -> Slice: decode -> PoseTracker -> draw on one encoded
    image, repeated as a video. The tracker lives across slices, as it would in a stream."""
    clock = StageClock()
    tracker = PoseTracker(_Solution(_TimedDetector(det, clock), _TimedPose(pose, clock)),
                          det_every=det_every, smooth=True)
    buf = np.frombuffer(encoded, dtype=np.uint8)

    def one_frame():
        t0 = time.perf_counter()
        with clock.stage("decode"):
            image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        t1 = time.perf_counter()
        before = clock.current(_TRACKER_INNER)
        result = tracker(image)
        # What the tracker call spent beyond detection and pose: NMS, tracking, smoothing.
        clock.add("track_smooth", time.perf_counter() - t1 - (clock.current(_TRACKER_INNER) - before))
        if draw:
            with clock.stage("draw"):
                draw_mmpose(image, result.keypoints, result.scores, result.boxes, result.track_ids)
        clock.add("total", time.perf_counter() - t0)
        clock.end_frame()
        return len(result)

    return slice_runner(one_frame, clock)


def pipeline_row(slices: List[Slice]) -> Dict[str, object]:
    """FPS (median over slices), stage latencies over all frames, the share of the frame in
    our own work around ncnn (crop, letterbox, box and keypoint decoding, NMS, tracking,
    smoothing; image decoding and drawing are their own stages, the same for any engine)."""
    add_infer(slices, INFER_STAGES)
    row = row_summary(slices, STAGES + NCNN_STAGES + ["infer"])
    frames = [f for s in slices for f in s.frames]
    total = sum(f["total"] for f in frames)
    ncnn_time = sum(f.get(s, 0.0) for f in frames for s in NCNN_STAGES)
    io_time = sum(f.get(s, 0.0) for f in frames for s in ("decode", "draw"))
    row["outside_ncnn_fraction"] = (total - ncnn_time - io_time) / total if total > 0 else float("nan")
    row["pose_ms_per_person"] = (1000.0 * sum(f.get("pose_ncnn", 0.0) for f in frames)
                                 / max(sum(p for s in slices for p in s.persons), 1))
    return row
