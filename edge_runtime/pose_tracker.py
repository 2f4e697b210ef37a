"""Video pipeline: skip-frame detection, pose, pose NMS, track ids, One-Euro smoothing.

Per frame:
1. boxes: the detector runs on frames 0, N, 2N, ... (`det_every=N`) and whenever
   no person is being followed. In between, each person's box is carried from
   their previous pose (BlazePose-style): the tight box around the keypoints
   with score > `keypoint_threshold`, enlarged by `box_expand`, with its size
   change per frame limited to `max_box_change` (10%: people do not grow faster
   at video rates; this also keeps a poor pose from inflating its own box frame
   after frame). A carried box keeps its person's track id. A person whose pose
   confidence falls below `min_pose_score` is dropped and the detector runs on
   the next frame.
2. pose on every box (the solution's pose estimator).
3. pose NMS (OKS) so two boxes on one person never give two skeletons.
4. greedy IoU/OKS tracking -> track ids.
5. One-Euro smoothing of each track's keypoints (on by default for video).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Protocol, Tuple, Union

import numpy as np

from .one_euro import OneEuroFilter, OneEuroParams
from .pose_nms import keypoint_boxes, pose_nms
from .tracking import Tracker

# A video frame: an image, or (image, timestamp in seconds) when the frames carry their own times.
Frame = Union[np.ndarray, Tuple[np.ndarray, Optional[float]]]
# This frame's boxes (N, 4), box scores (N,), track ids carried with the boxes (N,) or None
# (detections: the tracker matches them), and whether the detector ran.
FrameBoxes = Tuple[np.ndarray, np.ndarray, Optional[np.ndarray], bool]


class TopDownPipeline(Protocol):
    """What PoseTracker needs of a solution (Body, Wholebody, or any object with these two)."""

    @property
    def detector(self) -> Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]:
        """image -> boxes (N, 4) xyxy image pixels, scores (N,)."""

    @property
    def pose_estimator(self) -> Callable[[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]:
        """image, boxes (N, 4) -> keypoints (N, K, 2) image pixels, scores (N, K)."""


@dataclass
class TrackedPoses:
    boxes: np.ndarray         # (N,4) float32 xyxy, image pixels: the box the pose was estimated in
    box_scores: np.ndarray    # (N,) detector score, or the pose's mean keypoint score for carried boxes
    keypoints: np.ndarray     # (N,K,2) float32 image pixels (smoothed when smoothing is on)
    scores: np.ndarray        # (N,K) float32
    track_ids: np.ndarray     # (N,) int64
    detected: bool = False    # True when the detector ran on this frame

    def __len__(self) -> int:
        return len(self.boxes)


def _num_keypoints(pose_estimator: object) -> int:
    meta = getattr(pose_estimator, "meta", None)
    n = getattr(meta, "num_keypoints", 0) if meta is not None else 0
    return int(n or 0)


def _sigmas(pose_estimator: object) -> Optional[List[float]]:
    meta = getattr(pose_estimator, "meta", None)
    kp = getattr(meta, "keypoints", None) if meta is not None else None
    return kp.get("sigmas") if isinstance(kp, dict) else None


_END = object()


def expand_boxes(boxes: np.ndarray, factor: float) -> np.ndarray:
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    c = (b[:, :2] + b[:, 2:]) / 2
    half = (b[:, 2:] - b[:, :2]) / 2 * factor
    return np.concatenate([c - half, c + half], axis=1)


def limit_box_change(new: np.ndarray, old: np.ndarray, max_ratio: float) -> np.ndarray:
    """Keep each new box's width/height within [1/max_ratio, max_ratio] of the old box's."""
    c = (new[:, :2] + new[:, 2:]) / 2
    size_new = np.maximum(new[:, 2:] - new[:, :2], 1.0)
    size_old = np.maximum(old[:, 2:] - old[:, :2], 1.0)
    size = np.clip(size_new, size_old / max_ratio, size_old * max_ratio)
    return np.concatenate([c - size / 2, c + size / 2], axis=1).astype(np.float32)


class PoseTracker:
    """Multi-person pose for video. `PoseTracker(Wholebody(...), det_every=5)(frame)`.

    `solution` needs `.detector(image) -> (boxes, scores)` and
    `.pose_estimator(image, boxes) -> (keypoints, scores)` (e.g. `Body`, `Wholebody`).
    `fps` sets the time step of the smoother when frames come without timestamps.
    """

    def __init__(self, solution: TopDownPipeline, det_every: int = 5, smooth: bool = True, fps: float = 30.0,
                 keypoint_threshold: float = 0.3, box_expand: float = 1.2, max_box_change: float = 1.1,
                 min_pose_score: float = 0.15, min_keypoints: int = 3, pose_nms_threshold: float = 0.5,
                 one_euro: Optional[OneEuroParams] = None, tracker: Optional[Tracker] = None):
        if det_every < 1:
            raise ValueError("det_every must be >= 1")
        self.solution = solution
        self.detector = solution.detector
        self.pose_estimator = solution.pose_estimator
        self.det_every = int(det_every)
        self.smooth = smooth
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.keypoint_threshold = keypoint_threshold
        self.box_expand = box_expand
        self.max_box_change = max_box_change
        self.min_pose_score = min_pose_score
        self.min_keypoints = min_keypoints
        self.pose_nms_threshold = pose_nms_threshold
        self.one_euro = one_euro or OneEuroParams(score_threshold=keypoint_threshold)
        self.sigmas = _sigmas(self.pose_estimator)
        self.tracker = tracker or Tracker(sigmas=None if self.sigmas is None else np.asarray(self.sigmas,
                                                                                            np.float32),
                                          score_threshold=keypoint_threshold)
        self.num_keypoints = _num_keypoints(self.pose_estimator)
        self.reset()

    @classmethod
    def load(cls, det: str, pose: str, device: Optional[str] = None, precision: Optional[str] = None,
             threads: Optional[int] = None, concurrency: int = 1, **kwargs: Any) -> "PoseTracker":
        """`PoseTracker.load(det, pose, device="gpu", det_every=5)`: loads both models on `device`
        ("cpu" | "gpu" | "gpu:N"); the other keywords go to PoseTracker."""
        from .solutions import TopDownSolution
        return cls(TopDownSolution(det=det, pose=pose, device=device, precision=precision, threads=threads,
                                   concurrency=concurrency), **kwargs)

    @property
    def device(self) -> str:
        """Where the pose model runs: "cpu" or the Vulkan device's description."""
        model = getattr(self.pose_estimator, "model", None)
        gpu = getattr(model, "gpu", None)
        return "cpu" if gpu is None else gpu.describe()

    def reset(self) -> None:
        self.frame_index = -1
        self._since_detection: Optional[int] = None     # frames since the detector ran; None: never
        self._last: Optional[TrackedPoses] = None       # raw (unsmoothed) poses of the last frame
        self._last_shape: Optional[Tuple[int, ...]] = None
        self._filters: Dict[int, OneEuroFilter] = {}
        self.tracker.tracks.clear()

    # -- boxes ---------------------------------------------------------------
    def _carried_boxes(self, shape: Tuple[int, ...]) -> Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Boxes (M, 4) from the last frame's poses, their pose scores (M,) and track ids (M,);
        None when no pose is good enough to follow (the detector runs)."""
        last = self._last
        if last is None or len(last) == 0 or self._last_shape != shape[:2]:
            return None
        pose_conf = last.scores.mean(axis=1)
        enough = (last.scores >= self.keypoint_threshold).sum(axis=1) >= self.min_keypoints
        keep = (pose_conf >= self.min_pose_score) & enough
        if not keep.any():
            return None
        tight = keypoint_boxes(last.keypoints[keep], last.scores[keep], self.keypoint_threshold)
        boxes = limit_box_change(expand_boxes(tight, self.box_expand), last.boxes[keep], self.max_box_change)
        h, w = shape[:2]
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w)
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h)
        big = ((boxes[:, 2] - boxes[:, 0]) >= 2) & ((boxes[:, 3] - boxes[:, 1]) >= 2)
        if not big.any():
            return None
        return boxes[big], pose_conf[keep][big].astype(np.float32), last.track_ids[keep][big]

    # -- main ----------------------------------------------------------------
    def __call__(self, frame: np.ndarray, timestamp: Optional[float] = None) -> TrackedPoses:
        """One video frame (H, W[, C]) -> its tracked poses; timestamp in seconds (None: frame index / fps)."""
        from .image_input import as_bgr8
        image = as_bgr8(frame)
        return self._finish(image, *self._boxes(image), timestamp)

    def _detection_due(self) -> bool:
        """Whether the next frame's boxes come from the detector whatever this frame's poses are."""
        return self._since_detection is None or self._since_detection + 1 >= self.det_every

    def _boxes(self, image: np.ndarray, detection: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> FrameBoxes:
        """This frame's boxes: the detector's (`detection`, when it already ran on this frame)
        or the ones carried from the last poses. Advances the frame counters."""
        self.frame_index += 1
        since = self._since_detection
        # Boxes are carried only between detections (`since` is None until the first one).
        carried = self._carried_boxes(image.shape) if not self._detection_due() else None
        if since is None or carried is None:
            boxes, box_scores = detection if detection is not None else self.detector(image)
            self._since_detection = 0
            return boxes, box_scores, None, True
        boxes, box_scores, known_ids = carried
        self._since_detection = since + 1
        return boxes, box_scores, known_ids, False

    def stream(self, frames: Iterable[Frame]) -> Iterator[TrackedPoses]:
        """Poses of every frame of `frames` (images, or (image, timestamp) pairs), in order; the
        same results as calling the tracker on each frame. With the plan's overlap on, the
        detector of the next frame runs (on its own thread, at its loaded thread count: ncnn's
        convolutions keep the count they were loaded with) while the poses of this one do, so
        a core the poses leave idle is used; idle OpenMP threads sleep (schedule.py), so the
        extra threads share the cores instead of spinning on them."""
        from .image_input import as_bgr8
        plan = getattr(self.pose_estimator, "plan", None)
        overlap = bool(plan is not None and plan.overlap)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgepose-detect") if overlap else None
        it = iter(frames)
        try:
            current = next(it, _END)
            pending = None
            while current is not _END:
                frame, timestamp = current if isinstance(current, tuple) else (current, None)
                image = as_bgr8(frame)
                detection = pending.result() if pending is not None else None
                pending = None
                boxes = self._boxes(image, detection)
                current = next(it, _END)
                if pool is not None and current is not _END and self._detection_due():
                    nxt = current[0] if isinstance(current, tuple) else current
                    pending = pool.submit(self.detector, as_bgr8(nxt))
                yield self._finish(image, *boxes, timestamp)
        finally:
            if pool is not None:
                pool.shutdown(wait=True)

    def _finish(self, image: np.ndarray, boxes: np.ndarray, box_scores: np.ndarray, known_ids: Optional[np.ndarray],
                detected: bool, timestamp: Optional[float]) -> TrackedPoses:
        """Pose, pose NMS, tracking and smoothing of one frame's boxes."""
        t = self.frame_index / self.fps if timestamp is None else float(timestamp)
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        box_scores = np.asarray(box_scores, np.float32).reshape(-1)

        k = self.num_keypoints
        if len(boxes):
            keypoints, scores = self.pose_estimator(image, boxes)
            keypoints = np.asarray(keypoints, np.float32)
            scores = np.asarray(scores, np.float32)
            k = keypoints.shape[1]
            keep = pose_nms(keypoints, scores, boxes, sigmas=self.sigmas,
                            oks_threshold=self.pose_nms_threshold, score_threshold=self.keypoint_threshold,
                            pose_scores=scores.mean(axis=1))
            keep.sort()
            boxes, box_scores, keypoints, scores = boxes[keep], box_scores[keep], keypoints[keep], scores[keep]
            if known_ids is not None:
                known_ids = known_ids[keep]
        else:
            keypoints = np.zeros((0, k, 2), np.float32)
            scores = np.zeros((0, k), np.float32)

        # A carried box keeps the id of the pose it came from; detections are matched.
        ids = self.tracker.update(boxes, keypoints, scores, known_ids=known_ids)
        self._last = TrackedPoses(boxes, box_scores, keypoints, scores, ids, detected)
        self._last_shape = image.shape[:2]

        out_kp = keypoints
        if self.smooth and len(ids):
            out_kp = keypoints.copy()
            for i, tid in enumerate(ids):
                f = self._filters.get(int(tid))
                if f is None:
                    f = self._filters[int(tid)] = OneEuroFilter(self.one_euro)
                size = float(max(boxes[i, 2] - boxes[i, 0], boxes[i, 3] - boxes[i, 1]))
                out_kp[i] = f(keypoints[i], scores[i], t, scale=size)
        # Free the smoothing state of tracks the tracker has ended.
        for tid in [i for i in self._filters if i not in self.tracker.tracks]:
            del self._filters[tid]
        return TrackedPoses(boxes, box_scores, out_kp, scores, ids, detected)
