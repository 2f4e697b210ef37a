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
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from edgepose.errors import BadArgumentError, EdgeposeError, InferenceError
from edgepose.files import Outputs, ensure_writable_folder
from edgepose.model_meta import ModelMeta, find_model
from edgepose.runtime.model_check import check_weights

from . import calib_data
from .calibration import ACTIVATION_CALIBRATED, quantizable_layers
from .mixed_precision import choose_float_layers, rank_layers
from edgepose.ncnn_io import NcnnModel, read_model, write_model
from .output_calibration import quantized_model
from .sensitivity import Evaluator, float_gain, layer_sensitivity
from .thresholds import METHODS

DEFAULT_MAX_INPUTS = 200       # calibration inputs (crops / letterboxed images)
DEFAULT_EVAL_INPUTS = 32       # inputs used to score sensitivity and mixed precision
DEFAULT_OUTPUT_INPUTS = 12     # inputs used to choose output-error scales and bias corrections (the numpy
                               # layer simulation costs ~1 s per layer and input; 12 keep a run within minutes)
DEFAULT_ADAROUND_INPUTS = 32   # inputs whose sampled columns fit the learned weight rounding
DENSE_ALPHAS = (0.25, 0.5, 0.75)  # --all-int8: SmoothQuant strengths tried for the dense convs' inputs
DENSE_MIN_GAIN = 0.005         # ... kept only when it beats no dense equalization by this much: each
                               # equalized layer costs a float Scale pass (~5% of the int8 pose model)


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


DEFAULT_BUDGET = {"detect": 0.90, "pose": 0.96}   # default accuracy budget vs fp32 (Score.primary); pose
# one point above the 95% goal: agreement on calibration crops ran ~1 point above held-out crops (0.95 -> 0.943)


def _blob_shapes(param: str, binf: str, input_blob: str, layers, x: np.ndarray, threads) -> Dict[str, tuple]:
    """Shape (CHW, as ncnn holds it) of each layer's input blob, from one fp32 forward."""
    from .calibration import make_net, run_net

    net = make_net(param, binf, threads=threads)
    feats = run_net(net, input_blob, x, list(dict.fromkeys(layer.bottoms[0] for layer in layers)), light=False)
    return {layer.name: tuple(feats[layer.bottoms[0]].shape) for layer in layers}


def quantize_model(model_json: str, calib_images: Union[str, Sequence[str]], method: str = "kl",
                   out_dir: str = ".", target: Optional[float] = None, det_model: Optional[str] = None,
                   max_images: Optional[int] = None, max_inputs: int = DEFAULT_MAX_INPUTS,
                   eval_inputs: int = DEFAULT_EVAL_INPUTS, quantize_input_layer: bool = False,
                   output_error: Optional[bool] = None, bias_correction: Optional[bool] = None,
                   output_inputs: int = DEFAULT_OUTPUT_INPUTS, rank_by: str = "solo",
                   float_depthwise: bool = False, all_int8: bool = False,
                   cle: bool = True, equalize_depthwise: bool = True,
                   equalize_dense: bool = True, adaround: Optional[bool] = None,
                   adaround_inputs: int = DEFAULT_ADAROUND_INPUTS,
                   budget: Optional[float] = None, by_speed: Optional[bool] = None,
                   speed_timer=None,
                   overwrite: bool = False, progress: bool = False,
                   log: Callable[[str], None] = print, threads: Optional[int] = None) -> str:
    """Quantise a converted model; returns the new metadata JSON path.

    Modes (precision per layer):
      default        by measured speed AND accuracy: every convolution is timed alone, float
                     vs int8, on this machine (speed.py: interleaved slices, medians); only
                     layers faster in int8 stay int8, then, if the model misses the accuracy
                     `budget` vs fp32 (default DEFAULT_BUDGET: detector pseudo-label box AP,
                     pose SimCC within one bin, on calibration inputs), the most sensitive of
                     them go float until it holds. Output `<stem>-mixed` (or `-int8` if all stay).
      all_int8       every quantisable layer int8 (except the raw-pixel input layer unless
                     quantize_input_layer): for CPUs whose int8 kernels are fast everywhere.
      target         mixed precision by accuracy only, to that agreement (as before).
      float_depthwise  every depthwise conv float, the rest int8.
    Accuracy steps, each reported per layer in the metadata `quantization.layers`:
      cle            cross-layer equalization where exact (cle.py; on CSPNeXt models only the
                     input-affine -> stem pair: SiLU everywhere else).
      equalize_depthwise  a float per-channel Scale before each int8 depthwise conv, its
                     inverse folded into the conv's weights (channel_equalization.py): ncnn
                     gives a depthwise input one int8 scale for all its channels.
      equalize_dense  --all-int8 only: the same before the dense convs at SmoothQuant strengths
                     DENSE_ALPHAS, each calibrated and scored vs fp32 on the calibration inputs;
                     the best is kept if it gains DENSE_MIN_GAIN over none.
      activation ranges: the --method threshold, refined by the layer's output error
                     (output_error; None: on for detectors, off for pose models).
      adaround       learned weight rounding on calibration inputs (None: off, see below).
      bias_correction  cancel each int8 layer's mean output shift (None: as output_error),
                     measured after the learned rounding.
    by_speed: None -> on in the default mode; speed_timer: injectable clock (tests).
    """
    if method not in METHODS:
        raise EdgeposeError(f"--method {method!r}: use one of {', '.join(METHODS)}")
    if rank_by not in ("solo", "float-gain"):
        raise EdgeposeError(f"rank_by {rank_by!r}: use 'solo' or 'float-gain'")
    if target is not None and not 0.0 < float(target) <= 1.0:
        raise EdgeposeError(f"--target {target}: must be in (0, 1], e.g. 0.95")
    if budget is not None and not 0.0 < float(budget) <= 1.0:
        raise EdgeposeError(f"--budget {budget}: must be in (0, 1], e.g. 0.95")
    if sum(bool(v) for v in (all_int8, target is not None, float_depthwise)) > 1:
        raise EdgeposeError("--all-int8, --target and --float-depthwise are exclusive: pick one")
    default_mode = not (all_int8 or target is not None or float_depthwise)
    by_speed = default_mode if by_speed is None else bool(by_speed)
    json_path = find_model(os.fspath(model_json))
    meta = ModelMeta.load(json_path)
    if meta.precision not in ("fp32", "fp16"):
        raise EdgeposeError(f"{json_path}: is already {meta.precision}; quantize the fp32 model")
    if adaround is None:
        # off by default: measured on RTMDet-nano (114 val images), it lowered every layer's own
        # output error yet cost box AP (all-int8 0.417 -> 0.376/0.393, default 0.459 -> 0.448):
        # per-layer reconstruction does not see how errors add up through the network
        adaround = False
    if output_error is None:
        output_error = meta.task != "pose"
    if bias_correction is None:
        bias_correction = meta.task != "pose"
    src_param, src_bin = meta.param_path(json_path), meta.bin_path(json_path)
    # The runtime's load checks (recorded checksums, graph vs metadata, finite outputs) first
    from edgepose.runtime.ncnn_model import NcnnModel as LoadedModel
    LoadedModel(json_path, precision="fp32", threads=1)
    inputs_given = [json_path, src_param, src_bin]
    # Before the long calibration: a bad -o, an existing folder without --overwrite or one holding a
    # user's files fails in a second, not after it. The default mode names its output (-int8 or
    # -mixed) only once the layers are chosen: both are checked now, the unused one let go at the end.
    ensure_writable_folder(os.fspath(out_dir))
    if default_mode:
        possible = [f"{meta.name}-mixed", f"{meta.name}-int8"]
    else:
        possible = [f"{meta.name}-{'mixed' if target is not None or float_depthwise else 'int8'}"]
    opened: Dict[str, Outputs] = {}
    try:
        for name in possible:
            opened[name] = _open_folder(os.path.join(os.fspath(out_dir), name), name, inputs_given, overwrite)
        return _quantize_into(opened, meta, json_path, src_param, src_bin, calib_images, method,
                              target, det_model, max_images, max_inputs, eval_inputs, quantize_input_layer,
                              output_error, bias_correction, output_inputs, rank_by, float_depthwise, all_int8,
                              cle, equalize_depthwise, equalize_dense, adaround, adaround_inputs, budget, by_speed, speed_timer,
                              default_mode, progress, log, threads)
    finally:
        for outputs in opened.values():
            outputs.rollback()       # no-op for the folder that was committed


def _quantize_into(opened, meta, json_path, src_param, src_bin, calib_images, method, target,
                   det_model, max_images, max_inputs, eval_inputs, quantize_input_layer, output_error,
                   bias_correction, output_inputs, rank_by, float_depthwise, all_int8, cle, equalize_depthwise,
                   equalize_dense, adaround, adaround_inputs, budget, by_speed, speed_timer, default_mode, progress, log,
                   threads) -> str:
    from . import calibrate_steps, channel_equalization
    from .adaround import apply_rounded_weights
    from .cle import equalize
    from .speed import split_by_speed, time_layers, whole_model_ratio

    model = read_model(src_param, src_bin)
    check_weights(model, src_bin)       # NaN weights calibrate into NaN scales: refuse them first
    wrap = _progress(progress)
    with tempfile.TemporaryDirectory(prefix="edgepose-quantize-") as work_dir:
        sources = [calib_images] if isinstance(calib_images, (str, os.PathLike)) else list(calib_images)
        images = calib_data.list_images([os.fspath(s) for s in sources])
        if max_images:
            images = _spread(images, int(max_images))
        checksum = calib_data.calibration_sha256(images)
        inputs = _calibration_inputs(meta, images, det_model, wrap, log, threads)
        inputs = _spread(inputs, max_inputs)
        chw = [calib_data.to_chw(x) for x in inputs]
        log(f"{meta.name}: {len(images)} calibration images -> {len(chw)} inputs")

        info: Dict = {"method": method}
        per_layer: Dict[str, Dict] = {}
        # 1. cross-layer equalization (exact pairs only); the equalized fp32 model is the base
        param, binf = src_param, src_bin
        if cle:
            model, cle_report = equalize(model, set(meta.output_blobs.values()))
            info["cle"] = cle_report
            if cle_report["pairs"]:
                param, binf = os.path.join(work_dir, "cle.param"), os.path.join(work_dir, "cle.bin")
                write_model(model, param, binf)
            for pair, r in cle_report["pairs"].items():
                a, b = pair.split("->")
                for n in (a, b):
                    per_layer.setdefault(n, {})["cle"] = {"pair": pair, **r}
            log(f"{meta.name}: cross-layer equalization on {len(cle_report['pairs'])} exact pair(s): "
                + (", ".join(cle_report["pairs"]) or "none"))

        candidates = quantizable_layers(model)
        names = [layer.name for layer in candidates]
        float_layers: Dict[str, str] = {}
        if not quantize_input_layer:
            for name in input_layers(model, names):
                float_layers[name] = ("reads the raw 0..255 pixel input (input affine); int8 would cost a bit of range "
                                      "for no speed")
        if float_depthwise:
            for layer in candidates:
                if layer.type == "ConvolutionDepthWise" and layer.name not in float_layers:
                    float_layers[layer.name] = ("depthwise convolution kept float (--float-depthwise): one per-tensor "
                                                "int8 scale cannot hold its input's per-channel ranges")
        names = [n for n in names if n not in float_layers]

        # 2. speed: time each remaining layer alone, float vs int8, on this machine
        speeds = {}
        if by_speed:
            timed = [layer for layer in candidates if layer.name in names and layer.type in ACTIVATION_CALIBRATED]
            shapes = _blob_shapes(param, binf, meta.input_blob, timed, chw[0], threads)
            kwargs = {"timer": speed_timer} if speed_timer is not None else {}
            scaled = [layer.name for layer in timed if equalize_depthwise and channel_equalization.is_depthwise(layer)]
            speeds = time_layers(model, timed, shapes, {}, threads=int(threads or 1), progress=wrap,
                                 scaled_in_int8=scaled, **kwargs)
            fast, slow = split_by_speed(speeds)
            for n in slow:
                float_layers[n] = (f"speed: int8 {speeds[n].int8_ms:.4f} ms vs float {speeds[n].float_ms:.4f} ms "
                                   f"alone at {int(threads or 1)} thread(s) here (x{speeds[n].ratio:.2f}): not faster")
            for n, s in speeds.items():
                per_layer.setdefault(n, {})["speed"] = s.as_dict()
            names = [n for n in names if n not in float_layers]
            log(f"{meta.name}: {len(fast)} of {len(speeds)} timed layers faster in int8 here")

        info["output_error_scales"] = bool(output_error)
        info["bias_correction"] = bool(bias_correction)
        info["adaround"] = bool(adaround)
        evaluator = Evaluator(meta, src_param, src_bin, _spread(chw, eval_inputs), threads)
        try:
            # 3-6. input equalization, activation ranges, learned rounding, bias correction (calibrate_steps).
            # --all-int8 also tries equalizing the dense convs' inputs at a few SmoothQuant strengths
            # and keeps the one scoring best vs fp32 on the calibration inputs (the test set is never seen).
            settings = calibrate_steps.Settings(method, bool(output_error), bool(bias_correction),
                                                _spread(chw, output_inputs), bool(adaround),
                                                _spread(chw, adaround_inputs), bool(equalize_depthwise),
                                                threads=threads)
            alphas = [None] + (list(DENSE_ALPHAS) if all_int8 and equalize_dense else [])
            trials = []
            for alpha in alphas:
                settings.dense_alpha = alpha
                c = calibrate_steps.calibrate(model, param, binf, meta.input_blob, names, chw, settings, work_dir,
                                              wrap, log, meta.name)
                if len(alphas) > 1:
                    trial = evaluator.score(quantized_model(c.base, names, c.scales, c.bias_shifts))
                    log(f"{meta.name}: dense input equalization {'off' if alpha is None else f'alpha {alpha}'}: "
                        f"{trial.primary:.4f} vs fp32 on {min(len(chw), eval_inputs)} calibration inputs")
                    trials.append((trial.primary, c))
                else:
                    trials.append((0.0, c))
            best = max(range(len(trials)), key=lambda i: trials[i][0])
            if trials[best][0] < trials[0][0] + DENSE_MIN_GAIN:
                best = 0
            cal = trials[best][1]
            if len(alphas) > 1:
                info["dense_input_equalization"] = {
                    "tried": {("off" if t[1].dense_alpha is None else str(t[1].dense_alpha)): round(t[0], 6)
                              for t in trials},
                    "chosen": "off" if cal.dense_alpha is None else cal.dense_alpha}
        except BaseException:
            evaluator.close()
            raise
        model, candidates, rounded = cal.model, cal.candidates, cal.rounded
        base, scales, bias_shifts, equalized = cal.base, cal.scales, cal.bias_shifts, cal.equalized
        for n, d in cal.per_layer.items():
            per_layer.setdefault(n, {}).update(d)
        info["input_equalized_layers"] = len(equalized)
        try:
            if target is None and not default_mode:
                quantized = quantized_model(base, names, scales, bias_shifts)
                score = evaluator.score(quantized)
                precision = suffix = "mixed" if float_depthwise else "int8"
                names_final = names
            else:
                goal = float(target) if target is not None else float(budget or DEFAULT_BUDGET.get(meta.task, 0.95))
                score0 = evaluator.score(quantized_model(base, names, scales, bias_shifts))
                if default_mode and score0.primary >= goal:
                    result_float, score = [], score0
                    info["search"] = [[0, round(score0.primary, 6)]]
                else:
                    if rank_by == "float-gain":
                        sens = float_gain(evaluator, base, names, scales, wrap, bias_shifts)
                        ranking = sorted(sens, key=lambda n: (-sens[n].primary, -sens[n].cosine))
                        why = "kept alone in float, the otherwise-int8 model scores"
                    else:
                        sens = layer_sensitivity(evaluator, base, names, scales, wrap, bias_shifts)
                        ranking = rank_layers(sens)
                        why = "alone in int8 it scores"
                    log(f"{meta.name}: most sensitive layers: " + ", ".join(
                        f"{n} ({sens[n].primary:.4f})" for n in ranking[:5]))
                    result = choose_float_layers(evaluator, base, names, scales, sens, goal, log,
                                                 bias_shifts=bias_shifts, ranking=ranking)
                    rank = {n: i + 1 for i, n in enumerate(ranking)}
                    for n in result.float_layers:
                        float_layers[n] = (f"accuracy: sensitivity rank {rank[n]}/{len(names)} ({rank_by}): {why} "
                                           f"{sens[n].primary:.4f} (cosine {sens[n].cosine:.5f}) vs fp32")
                    result_float, score = result.float_layers, result.score
                    info["target_reached"] = result.reached
                    info["ranking"] = rank_by
                    info["search"] = [[k, round(v, 6)] for k, v in result.history]
                    info["sensitivity"] = {n: sens[n].as_dict() for n in ranking}
                int8_names = [n for n in names if n not in result_float]
                quantized = quantized_model(apply_rounded_weights(model, rounded, int8_names) if rounded else model,
                                            int8_names, scales, bias_shifts)
                if result_float:
                    score = evaluator.score(quantized)
                info["target" if target is not None else "budget"] = goal
                # "mixed" when any layer went float for speed or accuracy (the raw-pixel input layer
                # stays float in every int8 model and does not count)
                chosen_float = len(int8_names) < len(names) or any(r.startswith("speed") for r in float_layers.values())
                precision = suffix = "mixed" if target is not None or chosen_float else "int8"
                names_final = int8_names
        finally:
            evaluator.close()

        # a depthwise layer that ended float needs no equalizing Scale: take it out again
        undone = [n for n in equalized if n not in names_final]
        if undone:
            quantized = channel_equalization.undo(quantized, equalized, undone)
            for n in undone:
                per_layer[n]["input_equalization"] = "removed: the layer stays float"
            info["input_equalized_layers"] = len(equalized) - len(undone)

        # per-layer precision and reason
        for layer in candidates:
            d = per_layer.setdefault(layer.name, {})
            if layer.name in names_final:
                d["precision"] = "int8"
                d["reason"] = ("speed: faster in int8 here and within the accuracy budget" if by_speed
                               else "all-int8" if all_int8 else "int8 by default")
            else:
                d["precision"] = "float"
                d["reason"] = float_layers.get(layer.name, "float")
        whole = None
        if by_speed:
            q_param, q_bin = os.path.join(work_dir, "final.param"), os.path.join(work_dir, "final.bin")
            write_model(quantized, q_param, q_bin)
            t_fp32, t_q = whole_model_ratio(src_param, src_bin, False, q_param, q_bin, True, meta.input_blob,
                                            list(meta.output_blobs.values()), _spread(chw, 4),
                                            threads=int(threads or 1))
            whole = {"fp32_ms": round(t_fp32 * 1000, 3), "quantized_ms": round(t_q * 1000, 3),
                     "quantized_over_fp32": round(t_q / t_fp32, 4), "threads": int(threads or 1)}
            log(f"{meta.name}: whole model here: {whole['quantized_ms']:.2f} ms vs fp32 {whole['fp32_ms']:.2f} ms "
                f"(x{whole['quantized_over_fp32']:.3f}, {whole['threads']} thread(s), shared-machine timing)")

        info.update({
            "mode": "default (speed + accuracy)" if default_mode else "all-int8" if all_int8 else
                    "target" if target is not None else "float-depthwise",
            "float_layers": {n: r for n, r in float_layers.items() if n not in names_final},
            "int8_layers": len(names_final),
            "float_depthwise": bool(float_depthwise),
            "layers": per_layer,
            "speed_check": whole,
            "calibration_sha256": checksum,
            "calibration_images": len(images),
            "calibration_inputs": len(chw),
            "agreement_inputs": min(len(chw), eval_inputs),
            "vs_fp32": score.as_dict(),
            "source_model": meta.name,
            "activation_scales": {n: float(scales[n]) for n in names_final if n in scales},
        })
        name = f"{meta.name}-{suffix}"
        new_meta = ModelMeta(**{**meta.to_dict(), "name": name, "param": f"{name}.ncnn.param",
                                "bin": f"{name}.ncnn.bin", "precision": precision, "quantization": info})
        if not score.finite():
            raise InferenceError(f"{json_path}: the quantized model's agreement with fp32 is not finite "
                                 f"({', '.join(f'{k} {v}' for k, v in score.as_dict().items())}); nothing written")
        check_weights(quantized, f"{name}.ncnn.bin")
        if name not in opened:
            raise AssertionError((sorted(opened), name))    # chosen before the work from the same flags
        out = _write_folder(quantized, new_meta, opened[name], name)
        log(f"{name}: {info['int8_layers']} layers int8, {len(info['float_layers'])} float; vs fp32 on "
            f"{info['agreement_inputs']} inputs: " + ", ".join(f"{k} {v:.4f}" for k, v in score.as_dict().items()))
        return out
