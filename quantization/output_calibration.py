"""Per-layer input scales chosen by the error they cause in the layer's OUTPUT, and bias
correction, both measured by simulating each layer (layer_sim) on its fp32 inputs.

Why: KL/percentile pick a clip from the input histogram alone. Depthwise convolutions after
BN folding read blobs where a few channels span a much larger range than the rest; the
input-histogram optimum then rounds the small channels away or clips the large ones, and
which of the two hurts more depends on the weights, which only the output shows.

For every layer and candidate clip threshold t (a geometric grid below the calibrated
absmax, plus the threshold of the base method) we accumulate, per output channel, the sum
and the sum of squares of d = int8_output(t) - fp32_output over the calibration inputs.
  - output MSE of t: sum(d^2) / n
  - with bias correction: the int8 layer's bias is lowered by the mean of d per channel,
    which removes that channel's systematic shift exactly (on the calibration data); the
    remaining MSE is sum(d^2)/n - sum_c(mean_c(d)^2 * n_c)/n, so the threshold is chosen
    for the corrected layer.
The int8 rounding of activations is biased per channel whenever a channel's values sit in
a few levels (a depthwise channel with a small range under a large per-tensor scale), and
that shift is carried through every later layer; bias correction is the classic remedy.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Optional, Sequence

import numpy as np

from edgepose.errors import EdgeposeError

from .calibration import make_net, run_net
from .layer_sim import layer_output, quantized_weights
from edgepose.ncnn_io import RAW, Layer, NcnnModel, WeightBlob, write_model

GRID_POINTS = 16            # candidate thresholds from absmax down to absmax / 2**(GRID_SPAN)
GRID_SPAN = 6.0


@dataclass
class OutputCalibration:
    scale: float                # int8 input scale (127 / threshold)
    bias_shift: np.ndarray      # mean int8 - fp32 output per channel at that scale
    mse: float                  # output MSE at that scale (after bias correction if used)
    base_mse: float             # output MSE at the base method's scale, uncorrected
    output_power: float         # mean fp32 output^2, to read mse relatively


def candidate_thresholds(absmax: float, base_threshold: float, points: int = GRID_POINTS,
                         span: float = GRID_SPAN) -> np.ndarray:
    grid = absmax * 2.0 ** (-np.linspace(0.0, span, points))
    return np.unique(np.concatenate([grid, [base_threshold]]).astype(np.float64))[::-1]


class _Accumulator:
    """Per candidate threshold and output channel: sum of d and of d^2, d = int8 - fp32 output."""

    def __init__(self, layer: Layer, thresholds: np.ndarray):
        self.layer = layer
        self.thresholds = thresholds
        self.qweight = quantized_weights(layer)
        cout = layer.params.get(0, 0)
        self.s = np.zeros((len(thresholds), cout))
        self.s2 = np.zeros((len(thresholds), cout))
        self.n = 0
        self.y2 = 0.0

    def add(self, x_int8_path: np.ndarray, reference: np.ndarray) -> None:
        """x_int8_path: the layer's input as the int8 model computes it (the fp32 input when
        calibrating layers independently); reference: the layer's fp32 output."""
        ref = reference.reshape(self.s.shape[1], -1).astype(np.float64)
        self.n += ref.shape[1]
        self.y2 += float(np.square(ref).sum())
        for i, t in enumerate(self.thresholds):
            got = layer_output(self.layer, x_int8_path, 127.0 / t, self.qweight).reshape(ref.shape)
            d = got - ref
            self.s[i] += d.sum(axis=1)
            self.s2[i] += np.square(d).sum(axis=1)

    def result(self, base_threshold: float, bias_correction: bool) -> OutputCalibration:
        total = self.n * self.s.shape[1]
        raw = self.s2.sum(axis=1) / total
        err = (self.s2 - self.s * self.s / self.n).sum(axis=1) / total if bias_correction else raw
        best = int(np.argmin(err))
        base_i = int(np.argmin(np.abs(self.thresholds - base_threshold)))
        shift = self.s[best] / self.n if bias_correction else np.zeros(self.s.shape[1])
        return OutputCalibration(scale=float(127.0 / self.thresholds[best]), bias_shift=shift.astype(np.float32),
                                 mse=float(err[best]), base_mse=float(raw[base_i]), output_power=self.y2 / total)


def calibrate_outputs(model: NcnnModel, layers: Sequence[Layer], param_path: str, bin_path: str,
                      input_blob: str, inputs: Sequence[np.ndarray], absmax: Dict[str, float],
                      base_scales: Dict[str, float], bias_correction: bool = True, search: bool = True,
                      sequential: bool = False,
                      progress: Optional[Callable[[Iterable, str], Iterable]] = None,
                      threads: Optional[int] = None) -> Dict[str, OutputCalibration]:
    """Output-error scale (and bias shift) per layer name.

    absmax / base_scales: per layer name, the calibrated input absmax and the base method's
    scale (one of the candidates; the only one with search=False, which then only measures
    the bias shift). sequential=True calibrates layers in graph order, each on
    the inputs the int8 model computes with every earlier layer already int8 and corrected,
    against the fp32 model's output: the bias shift then also cancels the mean error that
    arrives from upstream, and the threshold is chosen for the inputs int8 inference sees.
    sequential=False (default) calibrates each layer alone on fp32 inputs (one fp32 pass).
    On RTMDet-nano the sequential variant lost box AP over the later layers (the per-channel
    mean match then also absorbs upstream noise measured on few inputs), so it is not the
    default; it stays for experiments.
    """
    if not inputs:
        raise EdgeposeError("no calibration inputs for output calibration")
    wrap = progress or (lambda it, desc: it)
    inputs = list(inputs)
    layers = [layer for layer in layers if absmax.get(layer.name, 0.0) > 0]
    def thresholds(layer):
        base = 127.0 / base_scales[layer.name]
        return candidate_thresholds(absmax[layer.name], base) if search else np.array([base])

    accs = {layer.name: _Accumulator(layer, thresholds(layer)) for layer in layers}
    ref_net = make_net(param_path, bin_path, threads=threads)
    result: Dict[str, OutputCalibration] = {}
    if not sequential:
        blobs = list(dict.fromkeys(layer.bottoms[0] for layer in layers))
        for x in wrap(inputs, "output calibration"):
            feats = run_net(ref_net, input_blob, x, blobs, light=False)
            for layer in layers:
                inp = feats[layer.bottoms[0]]
                accs[layer.name].add(inp, layer_output(layer, inp))
        for layer in layers:
            result[layer.name] = accs[layer.name].result(127.0 / base_scales[layer.name], bias_correction)
        return result

    from .int8_writer import quantize_layers

    with tempfile.TemporaryDirectory(prefix="edgepose-ocal-") as tmp:
        param, binf = os.path.join(tmp, "partial.param"), os.path.join(tmp, "partial.bin")
        order = {layer.name: i for i, layer in enumerate(model.layers)}
        done: Dict[str, OutputCalibration] = {}
        for layer in wrap(sorted(layers, key=lambda l: order[l.name]), "output calibration (in graph order)"):
            partial = quantize_layers(apply_bias_shifts(model, {n: c.bias_shift for n, c in done.items()}),
                                      list(done), {n: c.scale for n, c in done.items()})
            write_model(partial, param, binf)
            net = make_net(param, binf, int8=True, threads=threads)
            acc = accs[layer.name]
            for x in inputs:
                inp_q = run_net(net, input_blob, x, [layer.bottoms[0]])[layer.bottoms[0]]
                inp_f = run_net(ref_net, input_blob, x, [layer.bottoms[0]])[layer.bottoms[0]]
                acc.add(inp_q, layer_output(layer, inp_f))
            del net
            done[layer.name] = result[layer.name] = acc.result(127.0 / base_scales[layer.name], bias_correction)
    return result


def corrected_bias(layer: Layer, shift: np.ndarray) -> WeightBlob:
    """The layer's bias minus `shift` (a zero bias if it had none)."""
    cout = layer.params.get(0, 0)
    if shift.shape != (cout,):
        raise EdgeposeError(f"layer {layer.name}: bias shift has shape {shift.shape}, expected ({cout},)")
    b = layer.blob("bias")
    base = b.to_float() if b is not None else np.zeros(cout, np.float32)
    return WeightBlob.fp32("bias", (base.astype(np.float64) - shift).astype(np.float32), mode=RAW)


def apply_bias_shifts(model: NcnnModel, shifts: Dict[str, np.ndarray]) -> NcnnModel:
    """Copy of `model` whose named (float) layers have bias -= shift; the shift is what the
    int8 version of each layer adds on average, so the int8 layer comes out unbiased."""
    out = model.copy()
    for i, layer in enumerate(out.layers):
        if layer.name not in shifts:
            continue
        bias = corrected_bias(layer, np.asarray(shifts[layer.name], np.float32))
        blobs = [blob for blob in layer.blobs if blob.name != "bias"]
        wi = next(k for k, blob in enumerate(blobs) if blob.name == "weight")
        blobs.insert(wi + 1, bias)
        p = layer.params.copy()
        p.set(1 if layer.type == "InnerProduct" else 5, 1)
        out.layers[i] = Layer(layer.type, layer.name, list(layer.bottoms), list(layer.tops), p, blobs)
    return out


def quantized_model(model: NcnnModel, int8_layers: Iterable[str], scales: Dict[str, float],
                    bias_shifts: Optional[Dict[str, np.ndarray]] = None) -> NcnnModel:
    """`model` with `int8_layers` in int8, the bias correction applied to those layers only
    (a layer kept float keeps its own bias)."""
    from .int8_writer import quantize_layers

    int8_layers = list(int8_layers)
    shifts = {n: bias_shifts[n] for n in int8_layers if bias_shifts and n in bias_shifts}
    return quantize_layers(apply_bias_shifts(model, shifts) if shifts else model, int8_layers, scales)
