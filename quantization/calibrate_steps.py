"""The calibration steps `quantize` runs once the int8 layer set is known, on one float model:
input equalization, activation ranges, learned rounding, bias correction. Kept apart from the
mode logic (quantize_api) because --all-int8 runs them once per equalization candidate."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from edgepose.ncnn_io import Layer, NcnnModel, write_model

from . import channel_equalization
from .calibration import ACTIVATION_CALIBRATED, collect_stats, quantizable_layers
from .output_calibration import calibrate_outputs
from .thresholds import activation_scale


@dataclass
class Settings:
    method: str
    output_error: bool
    bias_correction: bool
    output_inputs: Sequence[np.ndarray]         # inputs for output-error scales and bias correction
    adaround: bool
    adaround_inputs: Sequence[np.ndarray]
    equalize_depthwise: bool
    dense_alpha: Optional[float] = None         # None: dense convs not equalized
    threads: Optional[int] = None


@dataclass
class Calibrated:
    model: NcnnModel                            # the float model the scales belong to (equalized)
    base: NcnnModel                             # `model` with learned rounding where fitted
    candidates: List[Layer]
    scales: Dict[str, float]
    bias_shifts: Dict[str, np.ndarray]
    rounded: Dict
    equalized: Dict[str, channel_equalization.Equalized]
    per_layer: Dict[str, Dict] = field(default_factory=dict)
    dense_alpha: Optional[float] = None


def _equalize(model, param, binf, input_blob, names, chw, settings, work_dir, wrap, log, label):
    # never on a layer reading the network input: a caller feeding ncnn.Mat(ndarray) there would
    # meet an in-place Scale on memory without a reference count (see ncnn_io.input_mat)
    inputs = set(model.input_blobs())
    chosen = [layer for layer in quantizable_layers(model) if layer.name in names and layer.bottoms[0] not in inputs and (
        channel_equalization.is_depthwise(layer) and settings.equalize_depthwise
        or settings.dense_alpha is not None and channel_equalization.is_dense(layer))]
    if not chosen:
        return model, param, binf, {}
    ranges = channel_equalization.channel_ranges(param, binf, input_blob, chosen, chw, wrap, settings.threads)
    model, equalized = channel_equalization.equalize_inputs(model, ranges, settings.dense_alpha or 0.0)
    param, binf = os.path.join(work_dir, "equalized.param"), os.path.join(work_dir, "equalized.bin")
    write_model(model, param, binf)
    dw = [e for e in equalized.values() if channel_equalization.is_depthwise(model.layer(e.layer))]
    spread = [e.spread_before for e in dw]
    log(f"{label}: per-channel input equalization: {len(dw)} depthwise layer(s)"
        + (f" (input channel range spread median {float(np.median(spread)):.1f}x -> 1x)" if spread else "")
        + (f", {len(equalized) - len(dw)} dense (alpha {settings.dense_alpha})" if settings.dense_alpha is not None
           else ""))
    return model, param, binf, equalized


def calibrate(model: NcnnModel, param: str, binf: str, input_blob: str, names: Sequence[str],
              chw: Sequence[np.ndarray], settings: Settings, work_dir: str,
              wrap: Callable, log: Callable[[str], None], label: str) -> Calibrated:
    from .adaround import apply_rounded_weights, learn_model_rounding

    work_dir = tempfile.mkdtemp(prefix="calibrate-", dir=work_dir)
    per_layer: Dict[str, Dict] = {}
    # a. per-channel input equalization of the layers that will be int8
    model, param, binf, equalized = _equalize(model, param, binf, input_blob, set(names), chw, settings, work_dir,
                                              wrap, log, label)
    for n, e in equalized.items():
        per_layer.setdefault(n, {})["input_equalization"] = e.as_dict()
    candidates = quantizable_layers(model)
    # b. activation ranges: method threshold, refined by the output error
    calibrated = [layer for layer in candidates if layer.name in names and layer.type in ACTIVATION_CALIBRATED]
    stats = collect_stats(param, binf, input_blob, [layer.bottoms[0] for layer in calibrated], chw, wrap,
                          settings.threads)
    scales: Dict[str, float] = {}
    for layer in wrap(calibrated, f"thresholds ({settings.method})"):
        s = stats[layer.bottoms[0]]
        scales[layer.name] = activation_scale(settings.method, s.hist, s.absmax, s.count)
    base_scales = dict(scales)
    absmax = {layer.name: stats[layer.bottoms[0]].absmax for layer in calibrated}
    if settings.output_error:
        cal = calibrate_outputs(model, calibrated, param, binf, input_blob, settings.output_inputs, absmax, scales,
                                bias_correction=settings.bias_correction, search=True, progress=wrap,
                                threads=settings.threads)
        scales.update({n: c.scale for n, c in cal.items()})
        for n, c in cal.items():
            per_layer.setdefault(n, {})["activation_range"] = {
                "method_threshold": round(127.0 / base_scales[n], 6), "chosen_threshold": round(127.0 / c.scale, 6),
                "output_mse_at_method": c.base_mse, "output_mse_chosen": c.mse, "output_power": c.output_power}
    # c. learned weight rounding, on the chosen input scales
    rounded: Dict = {}
    if settings.adaround:
        rounded = learn_model_rounding(model, calibrated, param, binf, input_blob, settings.adaround_inputs, scales,
                                       progress=wrap, threads=settings.threads)
        for n, r in rounded.items():
            per_layer.setdefault(n, {})["adaround"] = r.as_dict()
        for layer in calibrated:
            if layer.name not in rounded:
                per_layer.setdefault(layer.name, {})["adaround"] = "skipped (too large to fit): nearest rounding"
        gain = [r.learned_mse / r.nearest_mse for r in rounded.values() if r.nearest_mse > 0]
        if gain:
            log(f"{label}: learned rounding: layer output MSE x{float(np.median(gain)):.3f} of nearest (median)")
    base = apply_rounded_weights(model, rounded, names) if rounded else model
    # d. bias correction, measured on the rounded weights at the chosen scales
    bias_shifts: Dict[str, np.ndarray] = {}
    if settings.bias_correction:
        base_param, base_bin = os.path.join(work_dir, "base.param"), os.path.join(work_dir, "base.bin")
        write_model(base, base_param, base_bin)
        cal = calibrate_outputs(base, [base.layer(layer.name) for layer in calibrated], base_param, base_bin,
                                input_blob, settings.output_inputs, absmax, scales, bias_correction=True,
                                search=False, progress=wrap, threads=settings.threads)
        bias_shifts = {n: c.bias_shift for n, c in cal.items()}
        for n, c in cal.items():
            per_layer.setdefault(n, {})["bias_correction"] = {
                "max_abs_shift": float(np.abs(c.bias_shift).max()) if c.bias_shift.size else 0.0,
                "output_mse_after": c.mse}
    return Calibrated(model, base, candidates, scales, bias_shifts, rounded, equalized, per_layer,
                      settings.dense_alpha)
