"""How much a (partly) int8 model's outputs move away from the fp32 model's, measured
by running it in stock ncnn over a fixed set of calibration inputs.

Pose models: SimCC argmax-within-one-bin agreement (both axes within one bin, per
keypoint), mean keypoint deviation in model-input pixels, mean cosine of the logits.
Detectors (RTMDet roles): cosine of the sigmoid person scores and score-weighted cosine of
the box distances (detection_similarity), plus the raw output cosine and the agreement of
"score above 0.3" over all anchors. Other detectors: mean raw output cosine.
The `primary` value is what mixed precision steers on.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from edge_runtime.model_meta import ModelMeta

from .agreement import argmax_agreement, simcc_bins
from .calibration import make_net, run_net
from .int8_writer import quantize_layers
from .ncnn_io import NcnnModel, write_model


@dataclass
class Score:
    primary: float               # pose: argmax within one bin; detect: detection_similarity
    cosine: float
    agreement: Optional[float] = None
    mean_deviation_px: Optional[float] = None

    def as_dict(self) -> Dict[str, float]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 1.0 if na == nb else 0.0
    return float(a @ b / (na * nb))


def compare_outputs(meta: ModelMeta, ref: Sequence[Dict[str, np.ndarray]],
                    got: Sequence[Dict[str, np.ndarray]]) -> Score:
    roles = meta.output_blobs
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
    return Score(primary=detection_similarity(roles, ref, got), cosine=cos, agreement=float(same.mean()))


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
                      scales: Dict[str, float], progress: Optional[Callable] = None) -> Dict[str, Score]:
    """Score of the model with each layer alone in int8 (all others float)."""
    wrap = progress or (lambda it, desc: it)
    return {name: evaluator.score(quantize_layers(model, [name], scales))
            for name in wrap(list(layers), "sensitivity (one layer in int8 at a time)")}
