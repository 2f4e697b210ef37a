"""Turn chosen layers of a float ncnn model into int8 layers stock ncnn runs with
`opt.use_int8_inference = True`; every other layer (params and weights) is copied as is.

Per layer type (what ncnn's load_model reads after the float blobs):
  Convolution            8=2; int8 weights (tagged), bias fp32, num_output weight scales, 1 input scale
  ConvolutionDepthWise   8=1; int8 weights, bias, `group` weight scales, 1 input scale
  InnerProduct           8=2; int8 weights, bias, num_output weight scales, 1 input scale
  Gemm (constant B)      18=2; int8 B, C unchanged, one B scale (A is quantised per row at run time)
"""
from __future__ import annotations

from typing import Dict, Iterable

import numpy as np

from edgepose.errors import EdgeposeError

from edgepose.ncnn_io import RAW, Layer, NcnnModel, WeightBlob
from .thresholds import float2int8, weight_scales


def _raw(name: str, values) -> WeightBlob:
    return WeightBlob.fp32(name, np.asarray(values, np.float32).ravel(), mode=RAW)


def weight_levels(layer: Layer) -> float:
    """Weight range in int8 levels. ncnn2table quantises 3x3 stride-1 convolutions to 6 bits
    (31 levels) for the old int8 winograd F43; the ncnn this package runs (its int8 winograd
    keeps the transformed kernel in int16 with no overflow at 8 bits) gives exactly the
    integer result with full 8-bit weights (tests/test_quantize_calibration.py checks that on
    a 3x3 stride-1 layer wide enough to take the winograd path), so every layer uses 127."""
    return 127.0


def quantize_layer(layer: Layer, input_scale: float) -> Layer:
    """A new Layer: the int8 version of `layer` (which keeps its name, blobs and other params)."""
    p = layer.params.copy()
    t = layer.type
    if t in ("Convolution", "ConvolutionDepthWise", "InnerProduct"):
        w = layer.blob("weight").to_float()
        if t == "ConvolutionDepthWise":
            groups, term = p.get(7, 1), 1
        else:
            groups, term = p.get(0, 0), 2
        levels = weight_levels(layer)
        if groups <= 0 or w.size % groups:
            raise EdgeposeError(f"layer {layer.name}: {w.size} weights do not split into {groups} groups")
        scales = weight_scales(w, groups, levels)
        q = float2int8(w.reshape(groups, -1) * scales[:, None])
        blobs = [WeightBlob.int8("weight", q)]
        bias = layer.blob("bias")
        if bias is not None:
            blobs.append(bias)
        blobs += [_raw("weight_int8_scales", scales), _raw("bottom_int8_scales", [input_scale])]
        p.set(8, term)
    elif t == "Gemm":
        b = layer.blob("B").to_float()
        scale = weight_scales(b, 1)[0]
        blobs = [WeightBlob.int8("B", float2int8(b * scale))]
        c = layer.blob("C")
        if c is not None:
            blobs.append(c)
        blobs.append(_raw("B_int8_scale", [scale]))
        p.set(18, 2)
    else:
        raise EdgeposeError(f"layer {layer.name}: type {t} cannot be quantised to int8")
    return Layer(t, layer.name, list(layer.bottoms), list(layer.tops), p, blobs)


def quantize_layers(model: NcnnModel, layer_names: Iterable[str], input_scales: Dict[str, float]) -> NcnnModel:
    """Copy of `model` with the named layers in int8 (input scale per layer name; Gemm needs none)."""
    chosen = set(layer_names)
    out = model.copy()
    found = set()
    for i, layer in enumerate(out.layers):
        if layer.name in chosen:
            found.add(layer.name)
            if layer.type != "Gemm" and layer.name not in input_scales:
                raise EdgeposeError(f"layer {layer.name}: no calibrated input scale")
            out.layers[i] = quantize_layer(layer, input_scales.get(layer.name, 1.0))
    missing = chosen - found
    if missing:
        raise EdgeposeError(f"layers not in the model: {', '.join(sorted(missing))}")
    return out
