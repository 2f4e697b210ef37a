"""How much a (partly) int8 model's outputs move away from the fp32 model's, measured
by running it in stock ncnn over a fixed set of calibration inputs.

Pose models: SimCC argmax-within-one-bin agreement (both axes within one bin, per
keypoint), mean keypoint deviation in model-input pixels, mean cosine of the logits.
Detectors (RTMDet roles): cosine of the sigmoid person scores and score-weighted cosine of
the box distances (detection_similarity), plus the raw output cosine and the agreement of
"score above 0.3" over all anchors. Other detectors: mean raw output cosine.
RTMDet: the primary value is pseudo_label_ap (box AP against fp32's confident detections),
which follows real box AP far better than output cosines (a few anchors decide AP).
The `primary` value is what mixed precision steers on.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from edgepose.errors import BadModelError
from edgepose.model_meta import ModelMeta

from .agreement import argmax_agreement, simcc_bins
from .calibration import make_net, run_net
from .output_calibration import quantized_model
from edgepose.ncnn_io import NcnnModel, write_model


@dataclass
class Score:
    primary: float               # pose: argmax within one bin; detect: detection_similarity
    cosine: float
    agreement: Optional[float] = None
    mean_deviation_px: Optional[float] = None
    detection_similarity: Optional[float] = None
    pseudo_ap: Optional[float] = None

    def as_dict(self) -> Dict[str, float]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def finite(self) -> bool:
        return all(np.isfinite(v) for v in self.as_dict().values())


def _non_finite(outputs: Sequence[Dict[str, np.ndarray]]) -> int:
    return sum(int(np.count_nonzero(~np.isfinite(v))) for out in outputs for v in out.values())


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 1.0 if na == nb else 0.0
    return float(a @ b / (na * nb))


def compare_outputs(meta: ModelMeta, ref: Sequence[Dict[str, np.ndarray]],
                    got: Sequence[Dict[str, np.ndarray]]) -> Score:
    roles = meta.output_blobs
    if _non_finite(ref) or _non_finite(got):
        # NaN hides in argmax (first NaN wins) and in max(); a candidate with it agrees with nothing
        nan = float("nan")
        return Score(primary=nan, cosine=nan)
    cos = float(np.mean([_cos(r[b], g[b]) for r, g in zip(ref, got) for b in roles.values()]))
    if meta.task == "pose":
        bx, by = roles["simcc_x"], roles["simcc_y"]
        ref_bins = np.stack([simcc_bins(r[bx][None], r[by][None])[0] for r in ref])
        got_bins = np.stack([simcc_bins(g[bx][None], g[by][None])[0] for g in got])
        agree = argmax_agreement(ref_bins, got_bins)["all"]["argmax_within_one"]
        ratio = float(meta.simcc_split_ratio or 2.0)
        dev = float(np.linalg.norm((ref_bins - got_bins) / ratio, axis=-1).mean())
        return Score(primary=agree, cosine=cos, agreement=agree, mean_deviation_px=dev)
    # detectors: does each anchor stay on the same side of the score threshold?
    cls = [b for role, b in roles.items() if role.startswith("cls")]
    if not cls:
        return Score(primary=cos, cosine=cos)
    thr = np.log(0.3 / 0.7)
    same = np.concatenate([((r[b] > thr) == (g[b] > thr)).ravel() for r, g in zip(ref, got) for b in cls])
    sim = detection_similarity(roles, ref, got)
    pap = pseudo_label_ap(meta, ref, got)
    return Score(primary=sim if pap is None else pap, cosine=cos, agreement=float(same.mean()),
                 detection_similarity=sim, pseudo_ap=pap)


PSEUDO_GT_SCORE = 0.3       # fp32 detections at or above this person score are the "ground truth"
CANDIDATE_SCORE = 0.05      # candidate detections down to the official test threshold


def _rtmdet_detections(meta: ModelMeta, outputs: Dict[str, np.ndarray], score_threshold: float):
    from edgepose.runtime.detector import decode_rtmdet, nms

    det = meta.detector or {}
    strides = [int(s) for s in det.get("strides") or (8, 16, 32)]
    by_role = {role: outputs[blob] for role, blob in meta.output_blobs.items()}
    size = (int(meta.input_width), int(meta.input_height))
    boxes, scores = decode_rtmdet(by_role, strides, int(det.get("person_class", 0)), score_threshold, size)
    keep = nms(boxes, scores, float(det.get("nms_iou", 0.6)), int(det.get("max_per_img", 100)))
    return boxes[keep], scores[keep]


def pseudo_label_ap(meta: ModelMeta, ref: Sequence[Dict[str, np.ndarray]],
                    got: Sequence[Dict[str, np.ndarray]]) -> Optional[float]:
    """Person box AP (COCO 0.5:0.95) of the candidate's detections against the fp32 model's
    confident detections taken as ground truth, over the scoring inputs: what box AP on a
    labelled set measures, without labels (RTMDet roles only; None otherwise or when fp32
    finds nobody). 1.0 when the candidate reproduces fp32's boxes."""
    roles = meta.output_blobs
    if not all(f"{k}_{s}" in roles for k in ("cls", "box") for s in (8, 16, 32)):
        return None
    from .coco_eval import evaluate_boxes

    images, annotations, dets = [], [], {}
    for i, (r, g) in enumerate(zip(ref, got)):
        images.append({"id": i, "width": int(meta.input_width), "height": int(meta.input_height)})
        boxes, scores = _rtmdet_detections(meta, r, PSEUDO_GT_SCORE)
        for b in boxes:
            w, h = float(b[2] - b[0]), float(b[3] - b[1])
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": 1, "iscrowd": 0,
                                "bbox": [float(b[0]), float(b[1]), w, h], "area": w * h})
        dets[i] = _rtmdet_detections(meta, g, CANDIDATE_SCORE)
    if not annotations:
        return None
    gt = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}
    return float(evaluate_boxes(gt, dets)["AP"])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x.astype(np.float64), -60, 60)))


def detection_similarity(roles: Dict[str, str], ref: Sequence[Dict[str, np.ndarray]],
                         got: Sequence[Dict[str, np.ndarray]]) -> float:
    """What detection quality depends on, 0..1: cosine of the sigmoid scores (background
    anchors weigh ~0, unlike in raw logits) and cosine of the box distances weighted by
    the fp32 score of their anchor, averaged over strides and inputs (RTMDet roles)."""
    vals = []
    for r, g in zip(ref, got):
        for role, b in roles.items():
            if not role.startswith("cls_"):
                continue
            pr, pg = _sigmoid(r[b]), _sigmoid(g[b])
            vals.append(_cos(pr, pg))
            box = roles.get("box_" + role[4:])
            if box is not None:
                w = np.sqrt(pr.max(axis=0, keepdims=True))
                vals.append(_cos(r[box] * w, g[box] * w))
    return float(np.mean(vals))


class Evaluator:
    """Runs candidate models (NcnnModel objects) over fixed inputs and scores them vs fp32."""

    def __init__(self, meta: ModelMeta, fp32_param: str, fp32_bin: str, inputs: Sequence[np.ndarray],
                 threads: Optional[int] = None):
        self.meta = meta
        self.inputs = list(inputs)
        self.threads = threads
        self.blobs = list(meta.output_blobs.values())
        net = make_net(fp32_param, fp32_bin, threads=threads)
        self.reference = [run_net(net, meta.input_blob, x, self.blobs) for x in self.inputs]
        if _non_finite(self.reference):
            raise BadModelError(f"{fp32_bin}: the fp32 model gives NaN/Inf outputs on the calibration "
                                f"inputs; its weights are damaged (re-convert it)")
        self._tmp = tempfile.TemporaryDirectory(prefix="edgepose-quant-")

    def outputs(self, model: NcnnModel) -> List[Dict[str, np.ndarray]]:
        param = os.path.join(self._tmp.name, "candidate.param")
        binf = os.path.join(self._tmp.name, "candidate.bin")
        write_model(model, param, binf)
        net = make_net(param, binf, int8=True, threads=self.threads)
        return [run_net(net, self.meta.input_blob, x, self.blobs) for x in self.inputs]

    def score(self, model: NcnnModel) -> Score:
        return compare_outputs(self.meta, self.reference, self.outputs(model))

    def close(self) -> None:
        self._tmp.cleanup()


def layer_sensitivity(evaluator: Evaluator, model: NcnnModel, layers: Sequence[str],
                      scales: Dict[str, float], progress: Optional[Callable] = None,
                      bias_shifts: Optional[Dict[str, np.ndarray]] = None) -> Dict[str, Score]:
    """Score of the model with each layer alone in int8 (all others float)."""
    wrap = progress or (lambda it, desc: it)
    return {name: evaluator.score(quantized_model(model, [name], scales, bias_shifts))
            for name in wrap(list(layers), "sensitivity (one layer in int8 at a time)")}


def float_gain(evaluator: Evaluator, model: NcnnModel, layers: Sequence[str], scales: Dict[str, float],
               progress: Optional[Callable] = None,
               bias_shifts: Optional[Dict[str, np.ndarray]] = None) -> Dict[str, Score]:
    """Score of the all-int8 model with each layer alone kept float: where int8 errors pile
    up through the network, what counts is how much keeping a layer float recovers, which
    its solo damage (layer_sensitivity) can misjudge."""
    wrap = progress or (lambda it, desc: it)
    layers = list(layers)
    return {name: evaluator.score(quantized_model(model, [n for n in layers if n != name], scales, bias_shifts))
            for name in wrap(layers, "sensitivity (one layer in float at a time)")}
