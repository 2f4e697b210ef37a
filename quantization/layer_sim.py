"""numpy model of one quantisable ncnn layer, float or int8, so a layer's *output* error under
a given input scale can be measured on calibration data without building an ncnn model.

The int8 arithmetic is ncnn's (as int8_writer writes it and stock ncnn runs it):
  out = sum(float2int8(x * s_in) * float2int8(w * s_w)) / (s_in * s_w) + bias
with per-output-channel (per-group for depthwise) weight scales. Activations fused into the
layer (param 9) are not applied: the returned value is the pre-activation output, which is
where the bias acts and where a mean shift can be corrected exactly.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from edgepose.errors import EdgeposeError

from edgepose.ncnn_io import Layer
from .int8_writer import weight_levels
from .thresholds import float2int8, weight_scales

SIMULATED = ("Convolution", "ConvolutionDepthWise", "InnerProduct")


def _geometry(layer: Layer) -> Tuple[int, int, int, int, int, int, Tuple[int, int, int, int]]:
    p = layer.params
    kw = p.get(1, 0)
    kh = p.get(11, kw)
    dw = p.get(2, 1)
    dh = p.get(12, dw)
    sw = p.get(3, 1)
    sh = p.get(13, sw)
    pl = p.get(4, 0)
    pt = p.get(14, pl)
    pr = p.get(15, pl)
    pb = p.get(16, pt)
    if min(pl, pt, pr, pb) < 0:
        raise EdgeposeError(f"layer {layer.name}: automatic (SAME) padding is not simulated")
    return kh, kw, dh, dw, sh, sw, (pt, pb, pl, pr)


def _conv(x: np.ndarray, w: np.ndarray, layer: Layer, groups: int) -> np.ndarray:
    """Grouped 2-D convolution of x (C,H,W) with ncnn-ordered weights, in float32: int8 products
    summed over a kernel stay below 2**24, so the integer part is exact."""
    kh, kw, dh, dw, sh, sw, (pt, pb, pl, pr) = _geometry(layer)
    c = x.shape[0]
    xp = np.pad(x.astype(np.float32), ((0, 0), (pt, pb), (pl, pr)))
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    win = np.lib.stride_tricks.sliding_window_view(xp, (eh, ew), axis=(1, 2))
    win = win[:, ::sh, ::sw, ::dh, ::dw]                      # C, Ho, Wo, kh, kw
    ho, wo = win.shape[1], win.shape[2]
    cout = w.size // ((c // groups) * kh * kw)
    w = w.astype(np.float32).reshape(groups, cout // groups, c // groups, kh, kw)
    if groups == c and cout == c:                             # depthwise: no im2col needed
        k = w[:, 0, 0]
        out = np.zeros((c, ho, wo), np.float32)
        for i in range(kh):
            for j in range(kw):
                out += win[:, :, :, i, j] * k[:, i, j, None, None]
        return out
    outs = []
    for g in range(groups):
        cols = win[g * (c // groups):(g + 1) * (c // groups)]
        cols = cols.transpose(0, 3, 4, 1, 2).reshape(-1, ho * wo)
        outs.append((w[g].reshape(cout // groups, -1) @ cols).reshape(-1, ho, wo))
    return np.concatenate(outs, axis=0)


def _groups(layer: Layer) -> int:
    return layer.params.get(7, 1) if layer.type == "ConvolutionDepthWise" else 1


def _weight_groups(layer: Layer) -> int:
    """How many weight scales the int8 layer holds (per output channel / per group)."""
    return layer.params.get(7, 1) if layer.type == "ConvolutionDepthWise" else layer.params.get(0, 0)


def quantized_weights(layer: Layer) -> Tuple[np.ndarray, np.ndarray]:
    """(int8 weight values as float32, per-output-channel dequantisation scales)."""
    w = layer.blob("weight").to_float()
    n = _weight_groups(layer)
    s = weight_scales(w, n, weight_levels(layer))
    q = float2int8(w.reshape(n, -1) * s[:, None]).astype(np.float32).ravel()
    cout = layer.params.get(0, 0)
    return q, np.repeat(s, cout // n).astype(np.float32)


def _apply(layer: Layer, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Linear part of the layer (no bias), (C_out, ...) float32."""
    if layer.type == "InnerProduct":
        n = layer.params.get(0, 0)
        return w.reshape(n, -1) @ x.ravel()
    if x.ndim != 3:
        raise EdgeposeError(f"layer {layer.name}: expects a (C,H,W) input, got shape {x.shape}")
    return _conv(x, w, layer, _groups(layer))


def layer_output(layer: Layer, x: np.ndarray, input_scale: Optional[float] = None,
                 qweight: Optional[Tuple[np.ndarray, np.ndarray]] = None, bias: bool = True) -> np.ndarray:
    """Pre-activation output of `layer` on x; ncnn's int8 arithmetic if input_scale is given
    (qweight: quantized_weights(layer), passed in to save recomputing it)."""
    if layer.type not in SIMULATED:
        raise EdgeposeError(f"layer {layer.name}: type {layer.type} is not simulated")
    x = np.asarray(x, np.float32)
    if input_scale is not None:
        s = np.float32(input_scale)
        w_int, w_scale = qweight if qweight is not None else quantized_weights(layer)
        out = _apply(layer, float2int8(x * s).astype(np.float32), w_int)
        shape = out.shape
        out = out.reshape(shape[0], -1) / (s * w_scale)[:, None]
    else:
        out = _apply(layer, x, layer.blob("weight").to_float().astype(np.float32))
        shape = out.shape
        out = out.reshape(shape[0], -1)
    b = layer.blob("bias")
    if bias and b is not None:
        out = out + b.to_float().astype(np.float32)[:, None]
    return out.reshape(shape)
