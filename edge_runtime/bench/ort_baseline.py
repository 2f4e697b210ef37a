"""The baseline in the same run: the same ONNX models in ONNX Runtime.

rtmlib's pipeline (the peer users compare with) when it is installed and accepts the
detector file, else our own ONNX Runtime path built on the runtime's own pre/post
functions, so only the inference engine differs. onnxruntime is optional on a
board: it is imported by name only when a baseline is asked for, so `import
edge_runtime` never loads it.
"""
from __future__ import annotations

import importlib
import time
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from ..detector import decode_rtmdet, decode_yolox, nms
from edgepose.errors import EdgeposeError
from edgepose.model_meta import ModelMeta
from ..preprocess import boxes_to_center_scale, crop_person, input_to_image, letterbox, letterbox_size
from ..simcc import decode_simcc
from .timing import Slice, StageClock, add_infer, row_summary, slice_runner

BASELINE_STAGES = ["decode", "detect", "pose", "total", "infer"]
# Compared with edgepose's detect + crop + pose + decode_keypoints: the same work (the
# baseline's pose stage crops and decodes its keypoints too).
BASELINE_INFER = ["detect", "pose"]


def _ort():
    try:
        return importlib.import_module("onnxruntime")
    except ImportError:
        raise EdgeposeError("the ONNX Runtime baseline needs onnxruntime: pip install onnxruntime "
                            "(or pass --no-baseline)") from None


def _session(path: str, threads: int, input_hw: Optional[Tuple[int, int]] = None, spinning: bool = False):
    """A CPU session limited to `threads`. `input_hw`: run a fully convolutional file whose
    input is fixed at another size (the shared RTMDet raw heads say 640x640) at the size
    ncnn runs, so both engines do the same work."""
    ort = _ort()
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    # The pipeline alternates two sessions (detector, pose), each with its own pool. With
    # ORT's default spin-waiting the idle pool's worker keeps spinning while the other
    # session runs: at 2 threads on 2 cores that was 24 FPS with slices swinging 22-38,
    # against a steady 48 FPS without spinning. The baseline should be ORT at its best.
    # spinning=True: ORT's own default, as rtmlib ships it (the peer as users run it).
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    source = path
    if input_hw is not None:
        onnx = importlib.import_module("onnx")
        model = onnx.load(path)
        dims = model.graph.input[0].type.tensor_type.shape.dim
        if len(dims) == 4 and all(d.dim_value for d in dims[2:]) and \
                (dims[2].dim_value, dims[3].dim_value) != tuple(input_hw):
            dims[2].dim_value, dims[3].dim_value = input_hw
            for out in model.graph.output:  # output sizes follow the input; let ORT infer them
                out.type.tensor_type.ClearField("shape")
            source = model.SerializeToString()
    return ort.InferenceSession(source, sess_options=so, providers=["CPUExecutionProvider"])


def _normalise(pixels_bgr: np.ndarray, meta: ModelMeta) -> np.ndarray:
    """uint8 HWC BGR -> float32 NCHW as the ONNX file expects (its own mean/std and order)."""
    x = pixels_bgr.astype(np.float32)
    if meta.model_channel_order.lower() == "rgb":
        x = x[..., ::-1]
    x = (x - np.asarray(meta.mean, np.float32)) / np.asarray(meta.std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def _scaled_outputs(path: str) -> set:
    """Outputs produced by a Mul with a constant: box distances already in pixels.

    Exports differ: some end the box branch at the conv (units of stride, what the ncnn
    graph gives after conversion), others multiply by the stride inside the graph."""
    onnx = importlib.import_module("onnx")
    model = onnx.load(path, load_external_data=False)
    constants = {t.name for t in model.graph.initializer}
    constants |= {n.output[0] for n in model.graph.node if n.op_type == "Constant"}
    outputs = {o.name for o in model.graph.output}
    return {n.output[0] for n in model.graph.node
            if n.op_type == "Mul" and n.output[0] in outputs and any(i in constants for i in n.input)}


class OrtDetector:
    """RTMDet (raw heads, or deploy export with NMS inside) and YOLOX in ONNX Runtime."""

    def __init__(self, onnx_path: str, meta: ModelMeta, threads: int,
                 score_threshold: float, nms_iou: float):
        self.session = _session(onnx_path, threads, (meta.input_height, meta.input_width))
        self.meta = meta
        det = meta.detector or {}
        self.family = det.get("family", "rtmdet")
        self.strides = det.get("strides", [8, 16, 32])
        self.person_class = int(det.get("person_class", 0))
        self.score_threshold, self.nms_iou = score_threshold, nms_iou
        self.input_size = (meta.input_width, meta.input_height)
        self.rule = "mmdet" if self.family == "rtmdet" else "yolox"
        self.pad = int(det.get("pad_value", 114))
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.pixel_outputs = _scaled_outputs(onnx_path)

    def _roles(self, outs: List[np.ndarray]) -> Dict[str, np.ndarray]:
        # Raw RTMDet heads: name the six tensors by channel count (1 = class logits for a
        # person-only head, 4 = box distances) and by grid size (stride).
        roles = {}
        w_in = self.input_size[0]
        for name, arr in zip(self.output_names, outs):
            a = arr[0]
            stride = int(round(w_in / a.shape[-1]))
            if a.shape[0] == 4 and name in self.pixel_outputs:
                a = a / np.float32(stride)  # this export multiplies distances by the stride in-graph
            roles[("box_" if a.shape[0] == 4 else "cls_") + str(stride)] = a
        return roles

    def __call__(self, image: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        canvas, (sx, sy) = letterbox(image, self.input_size, self.rule, self.pad)
        outs = self.session.run(None, {self.input_name: _normalise(canvas, self.meta)})
        if "dets" in self.output_names:  # deploy export: NMS already inside the graph
            named = dict(zip(self.output_names, outs))
            dets, labels = named["dets"][0], named["labels"][0]
            keep = (labels == self.person_class) & (dets[:, 4] > self.score_threshold)
            boxes, scores = dets[keep, :4].astype(np.float32), dets[keep, 4].astype(np.float32)
        else:
            if self.family == "yolox":
                boxes, scores = decode_yolox(outs[0][0], self.strides, self.input_size,
                                             self.person_class, self.score_threshold)
            else:
                valid = letterbox_size(image.shape[1], image.shape[0], self.input_size, self.rule)
                boxes, scores = decode_rtmdet(self._roles(outs), self.strides, self.person_class,
                                              self.score_threshold, valid)
            keep = nms(boxes, scores, self.nms_iou, 100)
            boxes, scores = boxes[keep], scores[keep]
        boxes = boxes / np.array([sx, sy, sx, sy], np.float32)
        h, w = image.shape[:2]
        np.clip(boxes[:, 0::2], 0, w, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, h, out=boxes[:, 1::2])
        return boxes, scores


class OrtPose:
    """Top-down SimCC pose in ONNX Runtime; all persons of a frame in one batch when the
    file allows it (the official deploy exports have a dynamic batch axis)."""

    def __init__(self, onnx_path: str, meta: ModelMeta, threads: int):
        self.session = _session(onnx_path, threads)
        self.meta = meta
        self.input_size = (meta.input_width, meta.input_height)
        self.split = float(meta.simcc_split_ratio or 2.0)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.batched = not isinstance(inp.shape[0], int)

    def __call__(self, image: np.ndarray, boxes: np.ndarray):
        if len(boxes) == 0:
            k = self.meta.num_keypoints
            return np.zeros((0, k, 2), np.float32), np.zeros((0, k), np.float32)
        centers, scales = boxes_to_center_scale(boxes, self.input_size)
        crops = [_normalise(crop_person(image, centers[i], scales[i], self.input_size), self.meta)
                 for i in range(len(boxes))]
        if self.batched:
            sx, sy = self.session.run(None, {self.input_name: np.concatenate(crops)})[:2]
        else:
            outs = [self.session.run(None, {self.input_name: c})[:2] for c in crops]
            sx, sy = np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])
        pts, scores = decode_simcc(sx, sy, self.split)
        return input_to_image(pts, centers, scales, self.input_size), scores


class RtmlibPipeline:
    """rtmlib's RTMDet + RTMPose (the peer library), sessions limited to `threads`."""

    def __init__(self, det_onnx: str, pose_onnx: str, det_meta: ModelMeta, pose_meta: ModelMeta, threads: int,
                 as_shipped: bool = False):
        rtmlib = importlib.import_module("rtmlib")
        self.det = rtmlib.RTMDet(det_onnx, model_input_size=(det_meta.input_width, det_meta.input_height),
                                 backend="onnxruntime", device="cpu")
        self.pose = rtmlib.RTMPose(pose_onnx, model_input_size=(pose_meta.input_width, pose_meta.input_height),
                                   backend="onnxruntime", device="cpu")
        # rtmlib opens its sessions with ONNX Runtime's defaults (all cores, spin-waiting); match our
        # threads, and keep its spin-waiting only `as_shipped`.
        self.det.session = _session(det_onnx, threads, spinning=as_shipped)
        self.pose.session = _session(pose_onnx, threads, spinning=as_shipped)

    def detector(self, image):
        boxes = self.det(image)
        return np.asarray(boxes, np.float32).reshape(-1, 4), None

    def pose_estimator(self, image, boxes):
        return self.pose(image, bboxes=list(boxes))


def make_baseline(det_onnx: str, pose_onnx: str, det_meta: ModelMeta, pose_meta: ModelMeta, threads: int,
                  score_threshold: float, nms_iou: float, prefer_rtmlib: bool = True, as_shipped: bool = False):
    """-> (name, detect(image) -> (boxes, scores), pose(image, boxes) -> (keypoints, scores))."""
    # rtmlib reads only deploy exports with NMS inside ("dets"/"labels"); raw heads go our own way.
    if prefer_rtmlib and "dets" in [o.name for o in _session(det_onnx, 1).get_outputs()]:
        try:
            pipe = RtmlibPipeline(det_onnx, pose_onnx, det_meta, pose_meta, threads, as_shipped)
            probe = np.full((det_meta.input_height, det_meta.input_width, 3), 114, np.uint8)
            pipe.detector(probe)  # rtmlib accepts only some detector exports; find out now
            return ("rtmlib as shipped (onnxruntime, spin-waiting)" if as_shipped else
                    "rtmlib (onnxruntime, no spin-waiting)"), pipe.detector, pipe.pose_estimator
        except Exception:
            pass
    det = OrtDetector(det_onnx, det_meta, threads, score_threshold, nms_iou)
    pose = OrtPose(pose_onnx, pose_meta, threads)
    return "onnxruntime (edgepose pre/post)", det, pose


def baseline_runner(detect, pose, encoded: bytes):
    """-> run(warmup, frames, seconds) -> Slice: decode, detect, pose in ONNX Runtime."""
    clock = StageClock()
    buf = np.frombuffer(encoded, dtype=np.uint8)

    def one_frame():
        t0 = time.perf_counter()
        with clock.stage("decode"):
            image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        with clock.stage("detect"):
            boxes, _ = detect(image)
        with clock.stage("pose"):
            pose(image, boxes)
        clock.add("total", time.perf_counter() - t0)
        clock.end_frame()
        return len(boxes)

    return slice_runner(one_frame, clock)


def baseline_row(slices: List[Slice]) -> Dict[str, object]:
    add_infer(slices, BASELINE_INFER)
    return row_summary(slices, BASELINE_STAGES)
