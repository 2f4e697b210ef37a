"""`quantize_model(...)`: a converted fp32 model -> an int8 or mixed-precision model folder.

Output: `<out_dir>/<stem>-int8/` (no target) or `<out_dir>/<stem>-mixed/` (with a target),
holding `<name>.ncnn.param`, `<name>.ncnn.bin` and `<name>.json` (ModelMeta, precision
"int8"/"mixed", `quantization` = method, float layers with reasons, calibration checksum,
image/input counts, the measured agreement with fp32). Built in a temporary folder beside
the target and renamed into place, so a failed run leaves nothing that looks whole.
"""
from __future__ import annotations

import hashlib
import os
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from edgepose.errors import BadArgumentError, EdgeposeError, InferenceError
from edgepose.files import Outputs
from edgepose.runtime.model_check import check_weights
from edgepose.model_meta import ModelMeta, find_model

from . import calib_data
from .calibration import ACTIVATION_CALIBRATED, collect_stats, quantizable_layers
from .mixed_precision import choose_float_layers, rank_layers
from edgepose.ncnn_io import NcnnModel, read_model
from .output_calibration import calibrate_outputs, quantized_model
from .sensitivity import Evaluator, float_gain, layer_sensitivity
from .thresholds import METHODS, activation_scale

DEFAULT_MAX_INPUTS = 200       # calibration inputs (crops / letterboxed images)
DEFAULT_EVAL_INPUTS = 32       # inputs used to score sensitivity and mixed precision
DEFAULT_OUTPUT_INPUTS = 32     # inputs used to choose output-error scales and bias corrections


def _progress(enabled: bool):
    if not enabled:
        return lambda it, desc: it
    from tqdm import tqdm

    def wrap(it, desc):
        return tqdm(it, desc=desc, leave=False, dynamic_ncols=True)
    return wrap


def _spread(items: Sequence, n: int) -> List:
    """n items evenly spread over the sequence (all of them if n >= len)."""
    if n >= len(items):
        return list(items)
    idx = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in idx]


def input_layers(model: NcnnModel, names: Sequence[str]) -> List[str]:
    """Layers among `names` that read a network input directly (raw 0..255 pixels)."""
    inputs = set(model.input_blobs())
    return [layer.name for layer in model.layers
            if layer.name in names and any(b in inputs for b in layer.bottoms)]


def _calibration_inputs(meta: ModelMeta, images, det_model: Optional[str], wrap, log, threads=None) -> List[np.ndarray]:
    size = (int(meta.input_width), int(meta.input_height))
    if meta.task == "detect":
        det = meta.detector or {}
        family = det.get("family") or ("rtmdet" if "cls_8" in meta.output_blobs else "yolox")
        return calib_data.detector_inputs(images, size, family, int(det.get("pad_value", 114)), wrap)
    detector = None
    if det_model:
        from edgepose.runtime.detector import Detector
        detector = Detector(det_model, precision="fp32", threads=threads or 1)
    else:
        log("warning: no --det detector given: calibrating on whole-image crops, not person crops")
    return calib_data.pose_inputs(images, size, detector, progress=wrap)


def _open_folder(final: str, name: str, inputs: Sequence[str], overwrite: bool) -> Outputs:
    """The new model's folder, checked before calibration starts: writable, not an existing
    folder without --overwrite, never one holding a file edgepose did not write, never an input."""
    if os.path.lexists(final) and not overwrite:
        raise BadArgumentError(f"{final}: already exists (pass --overwrite to replace it)")
    outputs = Outputs(final, "output folder", inputs=inputs, own_folder=True)
    try:
        outputs.claim(f"{name}.ncnn.param", f"{name}.ncnn.bin", f"{name}.json")
    except BaseException:
        outputs.rollback()
        raise
    return outputs


def _write_folder(model: NcnnModel, meta: ModelMeta, outputs: Outputs, name: str) -> str:
    """Weights, then metadata; staged and renamed into place together (edgepose.files)."""
    weights, graph = model.bin_bytes(), model.param_text().encode("utf-8")
    outputs.write(meta.bin, weights)
    outputs.write(meta.param, graph)
    meta.checksums = {meta.param: hashlib.sha256(graph).hexdigest(), meta.bin: hashlib.sha256(weights).hexdigest()}
    outputs.write(f"{name}.json", meta.to_json())
    outputs.commit(order=[meta.bin, meta.param])
    return outputs.path(f"{name}.json")


def quantize_model(model_json: str, calib_images: Union[str, Sequence[str]], method: str = "kl",
                   out_dir: str = ".", target: Optional[float] = None, det_model: Optional[str] = None,
                   max_images: Optional[int] = None, max_inputs: int = DEFAULT_MAX_INPUTS,
                   eval_inputs: int = DEFAULT_EVAL_INPUTS, quantize_input_layer: bool = False,
                   output_error: Optional[bool] = None, bias_correction: Optional[bool] = None,
                   output_inputs: int = DEFAULT_OUTPUT_INPUTS, rank_by: str = "solo",
                   float_depthwise: bool = False,
                   overwrite: bool = False, progress: bool = False,
                   log: Callable[[str], None] = print, threads: Optional[int] = None) -> str:
    """Quantise a converted model; returns the new metadata JSON path.

    target: None -> pure int8 (`<stem>-int8`); a number -> mixed precision (`<stem>-mixed`)
    reaching that agreement with fp32 (pose: SimCC argmax within one bin, 0..1; RTMDet:
    box AP against fp32's confident detections, sensitivity.pseudo_label_ap).
    output_error: refine each layer's input scale by the error of its output (the method's
    threshold is one candidate; output_calibration). None: on for detectors, off for pose
    models (measured: RTMDet-nano box AP 0.028 -> 0.40 with both; on the reference body model
    both raised the logit cosine but lowered SimCC argmax agreement on held-out crops,
    0.865 -> 0.831 with bias correction: near-flat random-weight SimCC logits make the argmax
    hinge on tiny differences that output MSE and mean shifts do not target); bias_correction: cancel each int8
    layer's mean output shift through its bias (both measured on `output_inputs` inputs;
    None: as output_error).
    float_depthwise: keep every depthwise convolution float (cheap layers whose inputs carry
    the per-channel range spread a per-tensor int8 scale cannot hold; on RTMDet-nano the
    error of int8 is spread over all of them rather than a few).
    rank_by (mixed precision): "float-gain" ranks layers by how much keeping each alone in
    float lifts the all-int8 model; "solo" by the damage of each alone in int8.
    """
    if method not in METHODS:
        raise EdgeposeError(f"--method {method!r}: use one of {', '.join(METHODS)}")
    if rank_by not in ("solo", "float-gain"):
        raise EdgeposeError(f"rank_by {rank_by!r}: use 'solo' or 'float-gain'")
    if target is not None and not 0.0 < float(target) <= 1.0:
        raise EdgeposeError(f"--target {target}: must be in (0, 1], e.g. 0.95")
    json_path = find_model(os.fspath(model_json))
    meta = ModelMeta.load(json_path)
    if meta.precision not in ("fp32", "fp16"):
        raise EdgeposeError(f"{json_path}: is already {meta.precision}; quantize the fp32 model")
    param, binf = meta.param_path(json_path), meta.bin_path(json_path)
    # The runtime's load checks (recorded checksums, graph vs metadata, finite outputs) first
    from edgepose.runtime.ncnn_model import NcnnModel as LoadedModel
    LoadedModel(json_path, precision="fp32", threads=1)
    mixed = target is not None or float_depthwise
    name = f"{meta.name}-{'mixed' if mixed else 'int8'}"
    # Before the long calibration: a bad -o fails in a second, not after it
    outputs = _open_folder(os.path.join(os.fspath(out_dir), name), name, [json_path, param, binf], overwrite)
    try:
        return _quantize_into(outputs, name, meta, json_path, param, binf, calib_images, method, target,
                              det_model, max_images, max_inputs, eval_inputs, quantize_input_layer,
                              output_error, bias_correction, output_inputs, rank_by, float_depthwise,
                              progress, log, threads)
    except BaseException:
        outputs.rollback()
        raise


def _quantize_into(outputs, out_name, meta, json_path, param, binf, calib_images, method, target, det_model,
                   max_images, max_inputs, eval_inputs, quantize_input_layer, output_error, bias_correction,
                   output_inputs, rank_by, float_depthwise, progress, log, threads) -> str:
    model = read_model(param, binf)
    check_weights(model, binf)       # NaN weights calibrate into NaN scales: refuse them first
    wrap = _progress(progress)

    sources = [calib_images] if isinstance(calib_images, (str, os.PathLike)) else list(calib_images)
    images = calib_data.list_images([os.fspath(s) for s in sources])
    if max_images:
        images = _spread(images, int(max_images))
    checksum = calib_data.calibration_sha256(images)
    inputs = _calibration_inputs(meta, images, det_model, wrap, log, threads)
    inputs = _spread(inputs, max_inputs)
    chw = [calib_data.to_chw(x) for x in inputs]
    log(f"{meta.name}: {len(images)} calibration images -> {len(chw)} inputs")

    candidates = quantizable_layers(model)
    names = [layer.name for layer in candidates]
    float_layers: Dict[str, str] = {}
    if not quantize_input_layer:
        for name in input_layers(model, names):
            float_layers[name] = "reads the raw 0..255 pixel input (input affine); int8 would cost a bit of range for no speed"
    if float_depthwise:
        for layer in candidates:
            if layer.type == "ConvolutionDepthWise" and layer.name not in float_layers:
                float_layers[layer.name] = ("depthwise convolution kept float (--float-depthwise): one per-tensor "
                                            "int8 scale cannot hold its input's per-channel ranges")
    names = [n for n in names if n not in float_layers]
    calibrated = [layer for layer in candidates if layer.name in names and layer.type in ACTIVATION_CALIBRATED]
    stats = collect_stats(param, binf, meta.input_blob, [layer.bottoms[0] for layer in calibrated], chw,
                          wrap, threads)
    scales = {}
    for layer in wrap(calibrated, f"thresholds ({method})"):
        s = stats[layer.bottoms[0]]
        scales[layer.name] = activation_scale(method, s.hist, s.absmax, s.count)
    if output_error is None:
        output_error = meta.task != "pose"
    if bias_correction is None:
        bias_correction = meta.task != "pose"
    bias_shifts: Dict[str, np.ndarray] = {}
    if output_error or bias_correction:
        cal = calibrate_outputs(model, calibrated, param, binf, meta.input_blob, _spread(chw, output_inputs),
                                {layer.name: stats[layer.bottoms[0]].absmax for layer in calibrated}, scales,
                                bias_correction=bias_correction, search=output_error, progress=wrap,
                                threads=threads)
        scales.update({n: c.scale for n, c in cal.items()})
        if bias_correction:
            bias_shifts = {n: c.bias_shift for n, c in cal.items()}

    evaluator = Evaluator(meta, param, binf, _spread(chw, eval_inputs), threads)
    try:
        info: Dict = {"method": method}
        info["output_error_scales"] = bool(output_error)
        info["bias_correction"] = bool(bias_correction)
        if target is None:
            quantized = quantized_model(model, names, scales, bias_shifts)
            score = evaluator.score(quantized)
            precision = suffix = "mixed" if float_depthwise else "int8"
        else:
            if rank_by == "float-gain":
                sens = float_gain(evaluator, model, names, scales, wrap, bias_shifts)
                ranking = sorted(sens, key=lambda n: (-sens[n].primary, -sens[n].cosine))
                why = "kept alone in float, the otherwise-int8 model scores"
            elif rank_by == "solo":
                sens = layer_sensitivity(evaluator, model, names, scales, wrap, bias_shifts)
                ranking = rank_layers(sens)
                why = "alone in int8 it scores"
            else:                                   # checked on entry
                raise AssertionError(rank_by)
            log(f"{meta.name}: most sensitive layers: " + ", ".join(
                f"{n} ({sens[n].primary:.4f})" for n in ranking[:5]))
            result = choose_float_layers(evaluator, model, names, scales, sens, float(target), log,
                                         bias_shifts=bias_shifts, ranking=ranking)
            rank = {n: i + 1 for i, n in enumerate(ranking)}
            for n in result.float_layers:
                float_layers[n] = (f"sensitivity rank {rank[n]}/{len(names)} ({rank_by}): {why} "
                                   f"{sens[n].primary:.4f} (cosine {sens[n].cosine:.5f}) vs fp32")
            quantized = quantized_model(model, [n for n in names if n not in result.float_layers], scales,
                                        bias_shifts)
            score = result.score
            precision, suffix = "mixed", "mixed"
            info["target"] = float(target)
            info["target_reached"] = result.reached
            info["ranking"] = rank_by
            info["search"] = [[k, round(v, 6)] for k, v in result.history]
            info["sensitivity"] = {n: sens[n].as_dict() for n in ranking}
    finally:
        evaluator.close()

    info.update({
        "float_layers": float_layers,
        "int8_layers": len(names) - sum(1 for n in float_layers if n in names),
        "float_depthwise": bool(float_depthwise),
        "calibration_sha256": checksum,
        "calibration_images": len(images),
        "calibration_inputs": len(chw),
        "agreement_inputs": min(len(chw), eval_inputs),
        "vs_fp32": score.as_dict(),
        "source_model": meta.name,
        "activation_scales": {n: float(v) for n, v in scales.items()},
    })
    name = out_name
    if name != f"{meta.name}-{suffix}":
        raise AssertionError((name, suffix))    # chosen before the work from the same flags
    if not score.finite():
        raise InferenceError(f"{json_path}: the quantized model's agreement with fp32 is not finite "
                             f"({', '.join(f'{k} {v}' for k, v in score.as_dict().items())}); nothing written")
    new_meta = ModelMeta(**{**meta.to_dict(), "name": name, "param": f"{name}.ncnn.param",
                            "bin": f"{name}.ncnn.bin", "precision": precision, "quantization": info})
    check_weights(quantized, f"{name}.ncnn.bin")
    out = _write_folder(quantized, new_meta, outputs, name)
    log(f"{name}: {info['int8_layers']} layers int8, {len(float_layers)} float; vs fp32 on "
        f"{info['agreement_inputs']} inputs: " + ", ".join(f"{k} {v:.4f}" for k, v in score.as_dict().items()))
    return out
