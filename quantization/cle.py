"""Cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization") on the ncnn graph.

For a pair A -> B where B reads A's output channel i as its input channel i, scaling A's
output channel i by 1/s_i and B's input channel i by s_i leaves the network's function
unchanged IF everything between them commutes with a positive per-channel scale:
  f(x / s) = f(x) / s   for s > 0.
That holds for: nothing (A feeds B directly), ReLU, LeakyReLU, per-channel MaxPool, and a
zero-padded B (0 * s = 0). It does NOT hold for SiLU/Swish, HardSwish, Sigmoid, Clip,
or any bias added after A; nor when A's output also goes elsewhere (a Split to a residual
add or a Concat would carry the scale into another branch).

CLE therefore applies exactly only to pairs with such a path. On RTMDet-nano and on
RTMPose (CSPNeXt, SiLU after every conv, depthwise separable blocks with SiLU between the
depthwise and the pointwise conv) the only such pair is the input-affine 1x1 convolution
(pixel normalisation, no activation) into the stem conv; every other conv pair has a SiLU
between, where an equalizing scale would change the function. We do not apply CLE there
(an approximate CLE through SiLU would be a model change the calibration cannot undo).

s_i = sqrt(r_a_i * r_b_i) / r_b_i, with r_a_i the range (max |w|) of A's output channel i
and r_b_i the range of B's input channel i, makes both ranges sqrt(r_a_i * r_b_i).

Bias absorption (same paper) moves part of A's bias into B through a ReLU when the
ReLU's input is known to stay above c; it needs a ReLU between and an unpadded B, so it
applies to no pair of these models and is not implemented; `equalize` reports it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Set

import numpy as np

from edgepose.ncnn_io import Layer, NcnnModel, WeightBlob

CONVS = ("Convolution", "ConvolutionDepthWise")
HOMOGENEOUS = ("ReLU",)              # ncnn ReLU (0=slope: leaky too) is positively homogeneous
MAX_POOL = 0                         # ncnn Pooling 0=pooling_type: 0 max


@dataclass
class Pair:
    a: str
    b: str
    path: List[str]                  # layer types between A and B


def _consumers(model: NcnnModel) -> Dict[str, List[Layer]]:
    out: Dict[str, List[Layer]] = {}
    for layer in model.layers:
        for b in layer.bottoms:
            out.setdefault(b, []).append(layer)
    return out


def _fused_activation_ok(layer: Layer) -> bool:
    return layer.params.get(9, 0) in (0, 1, 2)          # none, relu, leakyrelu


def _plain(layer: Layer) -> bool:
    w = layer.blob("weight")
    return w is not None and w.storage == "fp32" and not layer.params.get(8, 0) and not layer.params.get(19, 0)


def find_pairs(model: NcnnModel, outputs: Optional[Set[str]] = None) -> List[Pair]:
    """Conv pairs A -> B joined by a path on which CLE is exact (see module doc)."""
    outputs = set(outputs or ())
    cons = _consumers(model)
    pairs = []
    for a in model.layers:
        if a.type not in CONVS or not _plain(a) or not _fused_activation_ok(a):
            continue
        blob, path = a.tops[0], []
        while True:
            if blob in outputs:
                break
            nxt = cons.get(blob, [])
            if len(nxt) != 1:
                break
            n = nxt[0]
            if n.type in CONVS:
                if _plain(n) and n.params.get(18, 0.0) == 0.0 and (
                        n.type == "Convolution" and n.params.get(7, 1) == 1
                        or n.type == "ConvolutionDepthWise" and n.params.get(7, 1) == a.params.get(0, 0)
                        == n.params.get(0, 0)):
                    pairs.append(Pair(a.name, n.name, path))
                break
            if n.type in HOMOGENEOUS or (n.type == "Pooling" and n.params.get(0, 0) == MAX_POOL):
                path.append(n.type)
                blob = n.tops[0]
                continue
            break
    return pairs


def _with_weights(layer: Layer, weight: np.ndarray, bias: Optional[np.ndarray]) -> Layer:
    blobs = []
    for b in layer.blobs:
        if b.name == "weight":
            blobs.append(WeightBlob.fp32("weight", weight, mode=b.mode))
        elif b.name == "bias" and bias is not None:
            blobs.append(WeightBlob.fp32("bias", bias, mode=b.mode))
        else:
            blobs.append(b)
    return Layer(layer.type, layer.name, list(layer.bottoms), list(layer.tops), layer.params.copy(), blobs)


def equalize_pair(a: Layer, b: Layer):
    """(new A, new B, per-channel scales s, ranges before and after) for one pair."""
    ca = int(a.params.get(0, 0))
    wa = a.blob("weight").to_float().reshape(ca, -1).astype(np.float64)
    wb = b.blob("weight").to_float().astype(np.float64)
    if b.type == "ConvolutionDepthWise":
        wb = wb.reshape(1, ca, -1)                         # channel i of B reads channel i
    else:
        wb = wb.reshape(int(b.params.get(0, 0)), ca, -1)
    ra = np.abs(wa).max(axis=1)
    rb = np.abs(wb).max(axis=(0, 2))
    ok = (ra > 0) & (rb > 0)
    s = np.ones(ca)
    s[ok] = np.sqrt(ra[ok] * rb[ok]) / rb[ok]
    new_wa = wa / s[:, None]
    ba = a.blob("bias")
    new_ba = None if ba is None else (ba.to_float().astype(np.float64) / s)
    new_wb = wb * s[None, :, None]
    na = _with_weights(a, new_wa.astype(np.float32).ravel(),
                       None if new_ba is None else new_ba.astype(np.float32))
    nb = _with_weights(b, new_wb.astype(np.float32).ravel(), None)
    before = {"a_range_spread": float(ra.max() / max(ra[ok].min(), 1e-30)) if ok.any() else 1.0,
              "b_range_spread": float(rb.max() / max(rb[ok].min(), 1e-30)) if ok.any() else 1.0}
    ra2, rb2 = np.abs(new_wa).max(axis=1), np.abs(new_wb).max(axis=(0, 2))
    after = {"a_range_spread": float(ra2.max() / max(ra2[ok].min(), 1e-30)) if ok.any() else 1.0,
             "b_range_spread": float(rb2.max() / max(rb2[ok].min(), 1e-30)) if ok.any() else 1.0}
    return na, nb, s, before, after


def equalize(model: NcnnModel, outputs: Optional[Set[str]] = None, iterations: int = 4):
    """(equalized copy of `model`, report): every exact pair, iterated (chains A->B->C)."""
    out = model.copy()
    pairs = find_pairs(out, outputs)
    index = {layer.name: i for i, layer in enumerate(out.layers)}
    report: Dict[str, Dict] = {}
    for _ in range(iterations):
        for p in pairs:
            ia, ib = index[p.a], index[p.b]
            na, nb, s, before, after = equalize_pair(out.layers[ia], out.layers[ib])
            out.layers[ia], out.layers[ib] = na, nb
            r = report.setdefault(f"{p.a}->{p.b}", {"path": p.path or ["direct"], "before": before})
            r["after"] = after
            r["max_scale"] = float(max(r.get("max_scale", 0.0), s.max()))
            r["min_scale"] = float(min(r.get("min_scale", np.inf), s.min()))
    summary = {"pairs": report, "bias_absorption": "not applicable: needs a ReLU between and an unpadded B; "
               "no such pair" if not any("ReLU" in p.path for p in pairs) else "not implemented"}
    return out, summary
