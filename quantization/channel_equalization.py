"""Per-channel input equalization for int8 depthwise convolutions.

Stock ncnn quantizes a depthwise convolution's input with ONE scale for the whole tensor
(ConvolutionDepthWise reads a single bottom_int8_scale), while each of its channels is a
separate filter with its own range: after BN folding and SiLU a few channels of an RTMDet /
CSPNeXt blob span 10-100x the range of the rest, so under the shared scale the small
channels sit in a handful of int8 levels. Cross-layer equalization (cle.py) cannot even them
out, because SiLU sits between every producer and its depthwise conv.

Instead, a float per-channel Scale layer goes right before the depthwise conv and the
inverse goes into that conv's weights:
    dw(x)_c = sum_k w_ck x_c  =  sum_k (w_ck / s_c) (s_c x_c)
exact in float, for any s_c > 0. With s_c = R / r_c (r_c the channel's calibrated range, R
the largest) every channel of the int8 input spans the full 8-bit range. The weights stay
exact under int8 too: depthwise weights are quantized per channel (one scale per group), so
dividing channel c's filter by s_c only moves its weight scale.
The price is one elementwise pass in float per equalized layer; `quantize` measures the
whole model's speed afterwards, and layers that end up float get their Scale removed again.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence

import numpy as np

from edgepose.ncnn_io import RAW, Layer, NcnnModel, ParamDict, WeightBlob

MAX_SCALE = 1e4         # a channel with range below R / MAX_SCALE is treated as dead (scale 1e4 at most)
MIN_WEIGHT = 1e-5       # a scaled filter keeps max |w| >= this: its int8 weight scale (127 / max |w|)
                        # stays far inside the range the runtime's load check accepts
SUFFIX = "_eq"          # the Scale layer / blob of depthwise layer L is named L_eq


@dataclass
class Equalized:
    layer: str              # the depthwise layer
    scale_layer: str        # the Scale layer inserted before it
    scales: np.ndarray      # s_c
    spread_before: float    # max r_c / min r_c over live channels
    spread_after: float

    def as_dict(self) -> Dict:
        return {"scale_layer": self.scale_layer, "channels": int(self.scales.size),
                "range_spread_before": round(self.spread_before, 3), "range_spread_after": round(self.spread_after, 3),
                "max_scale": round(float(self.scales.max()), 3)}


def is_depthwise(layer: Layer) -> bool:
    """A depthwise conv that reads channel c for output c (group = channels = outputs)."""
    p = layer.params
    if layer.type != "ConvolutionDepthWise" or len(layer.bottoms) != 1 or p.get(19, 0) or p.get(8, 0):
        return False
    groups, outputs = p.get(7, 1), p.get(0, 0)
    w = layer.blob("weight")
    return groups == outputs and w is not None and w.storage in ("fp32", "fp16") and w.count % groups == 0


def is_dense(layer: Layer) -> bool:
    """An ungrouped float Convolution (every output reads every input channel)."""
    p = layer.params
    w = layer.blob("weight")
    return (layer.type == "Convolution" and len(layer.bottoms) == 1 and not p.get(19, 0) and not p.get(8, 0)
            and w is not None and w.storage in ("fp32", "fp16"))


def equalizable(layer: Layer) -> bool:
    return is_depthwise(layer) or is_dense(layer)


def _weights_by_input(layer: Layer, channels: int) -> np.ndarray:
    """Weights as (outputs per channel group, input channels, kernel): depthwise (1, C, k), dense (O, C, k)."""
    w = layer.blob("weight").to_float().astype(np.float64)
    if is_depthwise(layer):
        return w.reshape(1, channels, -1)
    return w.reshape(int(layer.params.get(0, 0)), channels, -1)


def channel_scales(ranges: np.ndarray, weight_ranges: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """s_c = (wr_c^(1-alpha) / r_c^alpha), normalised so the largest scaled input range is R = max r_c.
    alpha 1 (depthwise): every channel's input range becomes R, the weights take the inverse
    (per-channel weight scales absorb it); alpha < 1 (a dense conv, whose weight scale is per
    OUTPUT channel) splits the spread between input and weight ranges (SmoothQuant's rule).
    At most MAX_SCALE x, never a filter under MIN_WEIGHT; channels with no range or weight get 1."""
    r = np.asarray(ranges, np.float64)
    wr = np.asarray(weight_ranges, np.float64)
    s = np.ones_like(r)
    live = (r > 0) & (wr > 0)
    if not live.any():
        return s
    raw = wr[live] ** (1.0 - alpha) / r[live] ** alpha
    raw *= r.max() / float((r[live] * raw).max())
    s[live] = np.clip(raw, 1.0 / MAX_SCALE, MAX_SCALE)
    s[live] = np.minimum(s[live], wr[live] / MIN_WEIGHT)
    return s


def _spread(r: np.ndarray) -> float:
    live = r[r > 0]
    return float(live.max() / live.min()) if live.size else 1.0


def equalize_inputs(model: NcnnModel, ranges: Dict[str, np.ndarray],
                    dense_alpha: float = 0.5) -> "tuple[NcnnModel, Dict[str, Equalized]]":
    """Copy of `model` with a Scale before each named layer (ranges: its input's per-channel
    range) and that layer's weights divided by the scales along their input channels."""
    out = model.copy()
    report: Dict[str, Equalized] = {}
    layers: List[Layer] = []
    used = {t for layer in out.layers for t in layer.tops} | {layer.name for layer in out.layers}
    for layer in out.layers:
        r = ranges.get(layer.name)
        if r is None or not equalizable(layer):
            layers.append(layer)
            continue
        r = np.asarray(r, np.float64).ravel()
        c = r.size
        w = layer.blob("weight")
        if c == 0 or w.count % c or (is_depthwise(layer) and c != int(layer.params.get(7, 1))):
            raise ValueError(f"layer {layer.name}: {c} channel ranges do not match its {w.count} weights")
        w = _weights_by_input(layer, c)
        s = channel_scales(r, np.abs(w).max(axis=(0, 2)), 1.0 if is_depthwise(layer) else dense_alpha)
        name = layer.name + SUFFIX
        while name in used:
            name += "_"
        used.add(name)
        scale = Layer("Scale", name, [layer.bottoms[0]], [name], ParamDict(), [WeightBlob.fp32("scale", s, mode=RAW)])
        scale.params.set(0, c)
        scale.params.set(1, 0)
        w = w / s[None, :, None]
        blobs = [WeightBlob.fp32("weight", w.astype(np.float32).ravel(), mode=b.mode) if b.name == "weight" else b
                 for b in layer.blobs]
        layers += [scale, Layer(layer.type, layer.name, [name], list(layer.tops), layer.params.copy(), blobs)]
        report[layer.name] = Equalized(layer.name, name, s, _spread(r), _spread(r * s))
    return NcnnModel(layers, out.blob_count + len(report)), report


def undo(model: NcnnModel, equalized: Dict[str, Equalized], layer_names: Iterable[str]) -> NcnnModel:
    """Remove the Scale before each named (float) depthwise layer and restore its weights."""
    names = set(layer_names) & set(equalized)
    if not names:
        return model
    drop = {equalized[n].scale_layer: n for n in names}
    source = {layer.name: layer.bottoms[0] for layer in model.layers if layer.name in drop}
    layers: List[Layer] = []
    for layer in model.layers:
        if layer.name in drop:
            continue
        if layer.name in names:
            e = equalized[layer.name]
            w = layer.blob("weight")
            if w.storage not in ("fp32", "fp16"):
                raise ValueError(f"layer {layer.name}: is int8; its input equalization cannot be undone")
            restored = (_weights_by_input(layer, e.scales.size) * e.scales[None, :, None]).astype(np.float32)
            blobs = [WeightBlob.fp32("weight", restored.ravel(), mode=b.mode) if b.name == "weight" else b
                     for b in layer.blobs]
            layer = Layer(layer.type, layer.name, [source[e.scale_layer]], list(layer.tops), layer.params.copy(), blobs)
        layers.append(layer)
    return NcnnModel(layers, model.blob_count - len(names))


def channel_ranges(param: str, binf: str, input_blob: str, layers: Sequence[Layer], inputs: Sequence[np.ndarray],
                   progress=None, threads=None) -> Dict[str, np.ndarray]:
    """Per-channel max |x| of each layer's input blob over the calibration inputs (fp32 forward)."""
    from .calibration import make_net, run_net

    wrap = progress or (lambda it, desc: it)
    blobs = {layer.name: layer.bottoms[0] for layer in layers}
    if not blobs:
        return {}
    net = make_net(param, binf, threads=threads)
    ranges: Dict[str, np.ndarray] = {}
    for x in wrap(inputs, "depthwise input ranges"):
        feats = run_net(net, input_blob, x, list(dict.fromkeys(blobs.values())), light=False)
        for name, blob in blobs.items():
            v = feats[blob]
            r = np.abs(v.reshape(v.shape[0], -1)).max(axis=1).astype(np.float64)
            ranges[name] = np.maximum(ranges[name], r) if name in ranges else r
    return ranges
