"""Person detectors on a converted ncnn model: RTMDet (nano/tiny) and YOLOX (nano).

Families and output roles (metadata `detector.family`, `output_blobs`):
  rtmdet  cls_8/cls_16/cls_32: class logits [C, H, W] (pre-sigmoid; C = 1 for person models,
          80 for COCO models: the person channel is `person_class`);
          box_8/box_16/box_32: distances (l, t, r, b) from the grid point in units of the stride, [4, H, W].
          Decode (mmdet RTMDetHead + DistancePointBBoxCoder, prior offset 0):
            point (x, y) = (j * s, i * s); box = (x - l*s, y - t*s, x + r*s, y + b*s),
            clamped to the resized image (new_w, new_h) inside the padded input; score = sigmoid(logit).
            Per level: keep score > threshold, at most NMS_PRE by score; then NMS over all levels.
  yolox   output: [N, 85] rows = (dx, dy, log w, log h, objectness, 80 class scores), levels 8/16/32,
          row-major grid; the graph already applies the sigmoid to objectness and classes.
          Decode (YOLOX `decode_outputs`): cx = (dx + j) * s, cy = (dy + i) * s, w = exp(log w) * s, ...
          score = objectness * person class score.
Then for both: greedy NMS at IoU `nms_iou` (IoU = inter / union with areas (x2-x1)*(y2-y1), as
mmcv's nms), at most MAX_DETECTIONS, boxes back to image pixels with the letterbox factors and
clipped to the image.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from .constants import DETECTOR_DEFAULTS, LETTERBOX_PAD_VALUE, MAX_DETECTIONS, NMS_PRE
from edgepose.errors import EdgeposeError
from edgepose.model_meta import ModelMeta
from .image_input import as_bgr8
from .ncnn_model import NcnnModel
from .preprocess import letterbox, letterbox_size


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
        max_keep: Optional[int] = None) -> np.ndarray:
    """Greedy NMS; returns kept indices, highest score first (stable on ties)."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (boxes[:, i].astype(np.float32) for i in range(4))
    areas = (x2 - x1) * (y2 - y1)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        if max_keep is not None and len(keep) >= max_keep:
            break
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        union = areas[i] + areas[rest] - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def decode_rtmdet(outputs: Dict[str, np.ndarray], strides: Sequence[int], person_class: int, score_threshold: float,
                  valid_size: Tuple[int, int], nms_pre: int = NMS_PRE) -> Tuple[np.ndarray, np.ndarray]:
    """Raw heads -> candidate boxes (M, 4) in model-input pixels and scores (M,), before NMS."""
    all_boxes, all_scores = [], []
    for s in strides:
        cls = outputs[f"cls_{s}"]
        reg = outputs[f"box_{s}"]
        if cls.ndim == 2:
            cls = cls[None]
        if reg.ndim != 3 or reg.shape[0] != 4 or cls.shape[1:] != reg.shape[1:]:
            raise EdgeposeError(f"RTMDet outputs at stride {s} have shapes {cls.shape} and {reg.shape}; "
                                f"expected [C, H, W] and [4, H, W]")
        channel = person_class if cls.shape[0] > 1 else 0
        scores = _sigmoid(cls[channel].reshape(-1))
        idx = np.flatnonzero(scores > score_threshold)
        if idx.size > nms_pre:
            idx = idx[np.argsort(-scores[idx], kind="stable")[:nms_pre]]
        if idx.size == 0:
            continue
        h, w = reg.shape[1:]
        ys, xs = np.divmod(idx, w)
        px, py = xs.astype(np.float32) * s, ys.astype(np.float32) * s
        d = reg.reshape(4, -1)[:, idx] * np.float32(s)
        boxes = np.stack([px - d[0], py - d[1], px + d[2], py + d[3]], axis=1)
        all_boxes.append(boxes)
        all_scores.append(scores[idx])
    if not all_boxes:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
    boxes = np.concatenate(all_boxes)
    vw, vh = valid_size
    np.clip(boxes[:, 0::2], 0, vw, out=boxes[:, 0::2])
    np.clip(boxes[:, 1::2], 0, vh, out=boxes[:, 1::2])
    return boxes.astype(np.float32), np.concatenate(all_scores).astype(np.float32)


def decode_yolox(output: np.ndarray, strides: Sequence[int], input_size: Tuple[int, int], person_class: int,
                 score_threshold: float) -> Tuple[np.ndarray, np.ndarray]:
    """[N, 5 + C] rows -> candidate boxes (M, 4) in model-input pixels and scores (M,), before NMS."""
    w_in, h_in = input_size
    grids, steps = [], []
    for s in strides:
        hs, ws = h_in // s, w_in // s
        ys, xs = np.mgrid[0:hs, 0:ws]
        grids.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        steps.append(np.full(hs * ws, s))
    grid = np.concatenate(grids).astype(np.float32)
    step = np.concatenate(steps).astype(np.float32)[:, None]
    out = output.reshape(-1, output.shape[-1])
    if out.shape[0] != grid.shape[0] or out.shape[1] < 6:
        raise EdgeposeError(f"YOLOX output has shape {output.shape}; expected ({grid.shape[0]}, 5 + classes) "
                            f"for input {w_in}x{h_in} and strides {list(strides)}")
    scores = out[:, 4] * out[:, 5 + person_class]
    idx = np.flatnonzero(scores > score_threshold)
    o = out[idx]
    c = (o[:, 0:2] + grid[idx]) * step[idx]
    wh = np.exp(o[:, 2:4]) * step[idx]
    boxes = np.concatenate([c - wh * 0.5, c + wh * 0.5], axis=1)
    return boxes.astype(np.float32), scores[idx].astype(np.float32)


class Detector:
    """`Detector(model)(image) -> boxes (N, 4) float32 xyxy image pixels, scores (N,) float32`.

    score_threshold: None -> the family's person threshold (0.3, constants.py); for AP evaluation
    pass the metadata's official test threshold (`detector.meta.detector["score_threshold"]`).
    nms_iou / max_detections: None -> the metadata's `detector` values (official test config),
    else the family defaults (RTMDet 0.6, YOLOX 0.45; 100 detections).
    """

    def __init__(self, model: str, threads: Optional[int] = None, precision: Optional[str] = None,
                 score_threshold: Optional[float] = None, nms_iou: Optional[float] = None,
                 max_detections: Optional[int] = None, fp16: Optional[bool] = None,
                 device: Optional[str] = None):
        self.model = NcnnModel(model, task="detect", threads=threads, precision=precision, fp16=fp16,
                               device=device)
        meta = self.model.meta
        det = dict(meta.detector or {})
        roles = meta.output_blobs
        family = det.get("family") or ("rtmdet" if "cls_8" in roles else "yolox" if "output" in roles else None)
        if family not in DETECTOR_DEFAULTS:
            raise EdgeposeError(f"{self.model.json_path}: unknown detector family {family!r} "
                                f"(supported: {', '.join(DETECTOR_DEFAULTS)})")
        defaults = DETECTOR_DEFAULTS[family]
        self.family = family
        self.strides = [int(s) for s in det.get("strides") or defaults["strides"]]
        need = ([f"cls_{s}" for s in self.strides] + [f"box_{s}" for s in self.strides]
                if family == "rtmdet" else ["output"])
        missing = [r for r in need if r not in roles]
        if missing:
            raise EdgeposeError(f"{self.model.json_path}: output_blobs lacks {', '.join(missing)} "
                                f"for a {family} detector")
        self.person_class = int(det.get("person_class", defaults["person_class"]))
        # The metadata's score_threshold is the official *evaluation* threshold (0.05 / 0.01, for AP);
        # a pose pipeline wants the person threshold of the family default unless told otherwise.
        self.score_threshold = float(score_threshold if score_threshold is not None
                                     else defaults["score_threshold"])
        self.nms_iou = float(nms_iou if nms_iou is not None else det.get("nms_iou", defaults["nms_iou"]))
        self.max_detections = int(max_detections if max_detections is not None
                                  else det.get("max_per_img", MAX_DETECTIONS))
        self.nms_pre = int(det.get("nms_pre", NMS_PRE))
        self.pad_value = int(det.get("pad_value", LETTERBOX_PAD_VALUE))
        self.input_size = self.model.input_size
        self.letterbox_rule = "mmdet" if family == "rtmdet" else "yolox"

    @property
    def meta(self) -> ModelMeta:
        return self.model.meta

    def __call__(self, image: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """image (H, W[, C]) (any dtype as_bgr8 takes) -> boxes (N, 4) float32 x1, y1, x2, y2 image
        pixels, scores (N,) float32, highest score first."""
        image = as_bgr8(image)
        canvas, factors = self.preprocess(image)
        outputs = self.inference(canvas)
        return self.postprocess(outputs, factors, image.shape)

    def preprocess(self, image: np.ndarray) -> Tuple[np.ndarray, Tuple[float, float]]:
        """uint8 BGR image -> letterboxed uint8 canvas (H_in, W_in, 3), (scale_x, scale_y)."""
        return letterbox(image, self.input_size, self.letterbox_rule, self.pad_value)

    def inference(self, canvas: np.ndarray) -> Dict[str, np.ndarray]:
        """Letterboxed canvas -> the raw heads {role: float32 array} (roles: see the module doc)."""
        return self.model.run(self.model.mat_from_bgr(canvas))

    def candidates(self, outputs: Dict[str, np.ndarray],
                   image_shape: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
        """Decoded boxes (M, 4) (model-input pixels) and scores (M,) above the threshold, before NMS."""
        if self.family == "rtmdet":
            valid = letterbox_size(image_shape[1], image_shape[0], self.input_size, self.letterbox_rule)
            return decode_rtmdet(outputs, self.strides, self.person_class, self.score_threshold, valid,
                                 self.nms_pre)
        return decode_yolox(outputs["output"], self.strides, self.input_size, self.person_class,
                            self.score_threshold)

    def postprocess(self, outputs: Dict[str, np.ndarray], factors: Tuple[float, float],
                    image_shape: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
        """Raw heads, letterbox (scale_x, scale_y), image (h, w[, c]) -> boxes (N, 4) float32 xyxy in
        image pixels after NMS, clipped to the image, and scores (N,) float32."""
        boxes, scores = self.candidates(outputs, image_shape)
        keep = nms(boxes, scores, self.nms_iou, self.max_detections)
        boxes, scores = boxes[keep], scores[keep]
        sx, sy = factors
        boxes = boxes / np.array([sx, sy, sx, sy], dtype=np.float32)
        h, w = image_shape[:2]
        np.clip(boxes[:, 0::2], 0, w, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, h, out=boxes[:, 1::2])
        return boxes.astype(np.float32), scores.astype(np.float32)
