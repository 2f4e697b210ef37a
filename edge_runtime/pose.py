"""Top-down SimCC pose estimation (RTMPose / DWPose / RTMW) on a converted ncnn model.

Per person: box -> centre/scale (padding 1.25, aspect fix) -> one warpAffine to the raw-pixel
model input -> ncnn -> SimCC decode -> inverse affine. See preprocess.py and simcc.py for the
exact rules. ncnn has no batch dimension, so persons run one per extractor; several
persons run at once on a thread pool (ncnn releases the GIL while it computes), as many as
the schedule says (schedule.py: one single-threaded extractor per core by default).
Every extractor computes the same arithmetic, so the keypoints do not depend on the split.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .constants import DEFAULT_SIMCC_SPLIT_RATIO, MIN_BOX_SIZE
from edgepose.errors import EdgeposeError
from edgepose.model_meta import ModelMeta
from .image_input import as_bgr8
from .ncnn_model import NcnnModel
from .schedule import Plan, bind_process_cores, bind_this_thread, default_plan, with_overrides
from .preprocess import boxes_to_center_scale, crop_person, input_to_image
from .simcc import decode_simcc

if TYPE_CHECKING:
    from numpy.typing import ArrayLike


def check_boxes(boxes: Optional[ArrayLike], image_shape: Sequence[int]) -> np.ndarray:
    """User boxes ((N, 4) or (4,) x1, y1, x2, y2; extra columns dropped) -> (N, 4) float32 xyxy
    with x1 <= x2, y1 <= y2; None -> the whole image of `image_shape` (h, w[, c])."""
    if boxes is None:
        h, w = image_shape[:2]
        return np.array([[0, 0, w, h]], dtype=np.float32)
    arr = np.asarray(boxes, dtype=np.float32)
    if arr.size == 0:
        return np.zeros((0, 4), dtype=np.float32)
    if arr.ndim == 1 and arr.shape[0] == 4:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] < 4:
        raise EdgeposeError(f"boxes must have shape (N, 4) as x1, y1, x2, y2; got {arr.shape}")
    arr = arr[:, :4]
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if bad.size:
        raise EdgeposeError(f"box {int(bad[0])} is not finite: {arr[bad[0]].tolist()}")
    return np.concatenate([np.minimum(arr[:, :2], arr[:, 2:]), np.maximum(arr[:, :2], arr[:, 2:])], axis=1)


class PoseEstimator:
    """`PoseEstimator(model)(image, boxes) -> keypoints (N, K, 2) float32 image pixels, scores (N, K)`.

    model: converted model folder, .json or .ncnn.param. precision: "fp32" | "fp16" | "int8" | None
    (see ncnn_model.py). threads (ncnn threads per extractor) and concurrency (persons run at
    once) override the schedule's choice per frame (`plan`, default: schedule.default_plan()).
    device: "cpu" | "gpu" | "gpu:N" (on a GPU the extractors share the one Vulkan device).
    Boxes narrower or shorter than 1 pixel are not run: their keypoints sit at the box centre
    with score 0. Boxes outside the image are run as they are (the crop is the zero border).
    """

    def __init__(self, model: str, threads: Optional[int] = None, precision: Optional[str] = None,
                 concurrency: Optional[int] = None, fp16: Optional[bool] = None, plan: Optional[Plan] = None,
                 device: Optional[str] = None):
        self.plan = with_overrides(plan or default_plan(), threads, concurrency)
        # ncnn's gemm and convolution layers keep the thread count they were loaded with (their
        # packed weights follow its tiling), so a crowd's single-threaded extractors and a lone
        # person's all-core extractor need nets loaded at their own count: `model` for crowds,
        # a second net loaded on the first lone person when the counts differ. The outputs are
        # the same bits either way (tests/runtime/test_schedule.py).
        self._source = model
        self._precision, self._fp16, self._device = precision, fp16, device
        self.model = self._load(self.plan.pose_split(2)[0])
        self._by_threads = {self.model.threads: self.model}
        bind_process_cores(self.plan)
        meta = self.model.meta
        for role in ("simcc_x", "simcc_y"):
            if role not in meta.output_blobs:
                raise EdgeposeError(f"{self.model.json_path}: output_blobs lacks the {role!r} role "
                                    f"(a SimCC pose model needs simcc_x and simcc_y)")
        self.input_size: Tuple[int, int] = self.model.input_size
        self.split_ratio = float(meta.simcc_split_ratio or DEFAULT_SIMCC_SPLIT_RATIO)
        self.num_keypoints = meta.num_keypoints
        self.concurrency = self.plan.pose_split(2)[1]  # persons in flight on a crowd
        self._pool: Optional[ThreadPoolExecutor] = None

    @property
    def meta(self) -> ModelMeta:
        return self.model.meta

    def __call__(self, image: np.ndarray, boxes: Optional[ArrayLike] = None) -> Tuple[np.ndarray, np.ndarray]:
        """image (H, W[, C]) (any dtype as_bgr8 takes), boxes (N, 4) x1, y1, x2, y2 image pixels
        (None: the whole image) -> keypoints (N, K, 2) float32 image pixels, scores (N, K) float32."""
        image = as_bgr8(image)
        boxes = check_boxes(boxes, image.shape)
        crops, centers, scales, runs = self.preprocess(image, boxes)
        simcc_x, simcc_y = self.inference(crops)
        return self.postprocess(simcc_x, simcc_y, centers, scales, runs)

    # -- the three stages ----------------------------------------------------
    def preprocess(self, image: np.ndarray,
                   boxes: np.ndarray) -> Tuple[List[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
        """uint8 BGR image, (N, 4) float32 xyxy boxes -> crops (list of uint8 (H_in, W_in, 3)) for the
        boxes that run, centres (N, 2), scales (N, 2), run mask (N,) bool."""
        centers, scales = boxes_to_center_scale(boxes, self.input_size)
        sizes = boxes[:, 2:] - boxes[:, :2]
        runs = (sizes >= MIN_BOX_SIZE).all(axis=1)
        crops = [crop_person(image, centers[i], scales[i], self.input_size) for i in np.flatnonzero(runs)]
        return crops, centers, scales, runs

    def inference(self, crops: List[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        """Crops -> simcc_x (N, K, Wx), simcc_y (N, K, Wy) float32."""
        if not crops:
            k = self.num_keypoints
            wx, wy = (int(round(s * self.split_ratio)) for s in self.input_size)
            return np.zeros((0, k, wx), np.float32), np.zeros((0, k, wy), np.float32)
        threads, in_flight = self.plan.pose_split(len(crops))
        model = self._net_for(threads)
        if in_flight > 1 and len(crops) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="edgepose-pose",
                                                initializer=bind_this_thread, initargs=(self.plan,))
            outs = list(self._pool.map(lambda c: self._run_one(c, model), crops))
        else:
            outs = [self._run_one(c, model) for c in crops]
        return np.stack([o["simcc_x"] for o in outs]), np.stack([o["simcc_y"] for o in outs])

    def _load(self, threads: int) -> NcnnModel:
        return NcnnModel(self._source, task="pose", threads=threads, precision=self._precision, fp16=self._fp16,
                         device=self._device)

    def _net_for(self, threads: int) -> NcnnModel:
        if threads not in self._by_threads:
            self._by_threads[threads] = self._load(threads)
        return self._by_threads[threads]

    def _run_one(self, crop: np.ndarray, model: Optional[NcnnModel] = None) -> Dict[str, np.ndarray]:
        model = model or self.model
        out = model.run(model.mat_from_bgr(crop), roles=("simcc_x", "simcc_y"))
        for role in ("simcc_x", "simcc_y"):
            if out[role].ndim != 2:
                raise EdgeposeError(f"{self.model.json_path}: {role} output has shape {out[role].shape}, "
                                    f"expected (K, W)")
        return out

    def postprocess(self, simcc_x: np.ndarray, simcc_y: np.ndarray, centers: np.ndarray,
                    scales: np.ndarray, runs: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
        """SimCC of the M boxes that ran (M, K, Wx) / (M, K, Wy), centres and scales (N, 2) of all
        boxes, run mask (N,) bool (None: all ran) -> keypoints (N, K, 2) float32 in image pixels and
        scores (N, K) float32 (a box that did not run: its centre, score 0)."""
        n = len(centers)
        if runs is None:
            runs = np.ones(n, dtype=bool)
        k = simcc_x.shape[1] if simcc_x.shape[0] else self.num_keypoints
        keypoints = np.repeat(centers.astype(np.float32)[:, None, :], k, axis=1)
        scores = np.zeros((n, k), dtype=np.float32)
        if simcc_x.shape[0]:
            pts, sc = decode_simcc(simcc_x, simcc_y, self.split_ratio)
            keypoints[runs] = input_to_image(pts, centers[runs], scales[runs], self.input_size)
            scores[runs] = sc
        return keypoints, scores

    def close(self) -> None:
        """Stop the worker threads; a later call with several persons starts new ones."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
