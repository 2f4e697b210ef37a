"""Does a loaded graph match its metadata? Checked once at load, so a wrong model fails there
with the file named instead of returning squeezed keypoints or a grid of boxes.

- Files: the sha256 of the .param and .bin the metadata records (`checksums`, written by
  convert and quantize) must match: a damaged byte anywhere in them is caught here.
- Weights: every float blob finite; every int8 scale (weight, bottom, top, Quantize/Dequantize/
  Requantize scales) finite, positive and below MAX_INT8_SCALE (ncnn multiplies a float by the
  scale and rounds to int8: a scale of 0 turns every input to 0, a huge one saturates it).
- Probe: one inference on a synthetic input of the metadata's size; every output must be finite
  and have the shape the metadata implies:
    pose      simcc_x [K, round(W * split ratio)], simcc_y [K, round(H * split ratio)]
    rtmdet    cls_s [C, ceil(H/s), ceil(W/s)], box_s [4, ceil(H/s), ceil(W/s)] per stride s
    yolox     output [sum over s of ceil(H/s) * ceil(W/s), 5 + C]
The probe is one small inference (pose: one crop; detector: one letterboxed input).
"""
from __future__ import annotations

import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from edgepose.errors import BadModelError
from edgepose.ncnn_io import NcnnModel as ParsedModel, read_model

# 127 / scale is the largest magnitude an int8 value stands for; below 1e-9 (scale above 1e9)
# no trained layer has weights or activations, so such a scale is damage, not calibration.
MAX_INT8_SCALE = 1e9
SCALE_BLOBS = {"weight_int8_scales", "bottom_int8_scales", "top_int8_scales", "A_int8_scales",
               "B_int8_scale"}
SCALE_LAYERS = {"Quantize": ("scale",), "Dequantize": ("scale",), "Requantize": ("scale_in", "scale_out")}
DEFAULT_STRIDES = (8, 16, 32)


def _is_scale(layer_type: str, blob_name: str) -> bool:
    return blob_name in SCALE_BLOBS or blob_name in SCALE_LAYERS.get(layer_type, ())


def check_weights(parsed: ParsedModel, origin: str) -> None:
    """BadModelError naming the file and layer for non-finite weights or unusable int8 scales."""
    for layer in parsed.layers:
        for blob in layer.blobs:
            if blob.storage == "int8":
                continue
            values = blob.to_float()
            where = f"{origin}: layer {layer.name} ({layer.type}) {blob.name}"
            bad = int(np.count_nonzero(~np.isfinite(values)))
            if _is_scale(layer.type, blob.name) and values.size:
                lo = float(np.nanmin(values)) if bad < values.size else float("nan")
                hi = float(np.nanmax(values)) if bad < values.size else float("nan")
                if bad or lo <= 0.0 or hi > MAX_INT8_SCALE:
                    shown = "NaN/Inf" if bad else f"{lo if lo <= 0.0 else hi:g}"
                    raise BadModelError(f"{where}: int8 scale {shown} is not within (0, {MAX_INT8_SCALE:g}]; "
                                        f"the int8 scale data is damaged (re-quantize with `edgepose quantize`)")
            elif bad:
                raise BadModelError(f"{where}: {bad} of {values.size} values are NaN or infinite; "
                                    f"the model is damaged (re-convert or re-quantize it)")


def check_checksums(meta, json_path: str) -> None:
    """The .param/.bin are the ones the metadata was written with (when it records them)."""
    from edgepose.files import sha256_of
    sums = meta.checksums or {}
    if not sums:
        return
    if not isinstance(sums, dict):
        raise BadModelError(f"{json_path}: 'checksums' is not an object; the metadata is damaged")
    for path in (meta.param_path(json_path), meta.bin_path(json_path)):
        want = sums.get(os.path.basename(path))
        if not isinstance(want, str):
            raise BadModelError(f"{json_path}: records no sha256 for {os.path.basename(path)} "
                                f"(has {', '.join(map(str, sums))}); the metadata is damaged")
        if sha256_of(path) != want:
            raise BadModelError(f"{path}: content differs from what {os.path.basename(json_path)} records "
                                f"(sha256); the file is damaged or belongs to another model (re-convert it)")


def check_weight_files(param: str, binf: str) -> None:
    check_weights(read_model(param, binf), binf)


def expected_shapes(meta) -> Dict[str, Tuple[Optional[int], ...]]:
    """{role: shape} the metadata implies (None: any size on that axis)."""
    w, h = int(meta.input_width), int(meta.input_height)
    if meta.task == "pose":
        ratio = float(meta.simcc_split_ratio or 2.0)
        k = meta.num_keypoints or None
        return {"simcc_x": (k, int(round(w * ratio))), "simcc_y": (k, int(round(h * ratio)))}
    det = meta.detector or {}
    strides = [int(s) for s in det.get("strides") or DEFAULT_STRIDES]
    classes = det.get("num_classes")
    classes = int(classes) if classes is not None else None
    grids = [(math.ceil(h / s), math.ceil(w / s)) for s in strides]
    if "output" in meta.output_blobs:          # YOLOX: one row per grid cell of every level
        return {"output": (sum(gh * gw for gh, gw in grids), None if classes is None else 5 + classes)}
    out: Dict[str, Tuple[Optional[int], ...]] = {}
    for s, (gh, gw) in zip(strides, grids):
        out[f"cls_{s}"] = (classes, gh, gw)
        out[f"box_{s}"] = (4, gh, gw)
    return out


def _squeeze_leading(shape: Sequence[int], rank: int) -> Tuple[int, ...]:
    shape = tuple(int(d) for d in shape)
    while len(shape) > rank and shape[0] == 1:
        shape = shape[1:]
    return shape


def _fits(got: Tuple[int, ...], want: Tuple[Optional[int], ...]) -> bool:
    return len(got) == len(want) and all(w is None or g == w for g, w in zip(got, want))


def _fmt(shape) -> str:
    return "x".join("?" if d is None else str(d) for d in shape)


def probe_pixels(width: int, height: int) -> np.ndarray:
    """A smooth synthetic BGR image: a zero input can hide damage that multiplies by zero."""
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([(x * 255 // max(1, width - 1)), (y * 255 // max(1, height - 1)),
                    np.full_like(x, 114)], axis=-1)
    return np.ascontiguousarray(img.astype(np.uint8))


def check_outputs(outputs: Dict[str, np.ndarray], meta, origin: str) -> None:
    """Every output finite and of the shape the metadata implies."""
    wanted = expected_shapes(meta)
    problems: List[str] = []
    for role, arr in outputs.items():
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        if bad:
            raise BadModelError(f"{origin}: output {role} ({meta.output_blobs.get(role)}) has {bad} NaN or "
                                f"infinite values on a test input; the weights are damaged")
        want = wanted.get(role)
        if want is None:
            continue
        got = _squeeze_leading(arr.shape, len(want))
        if not _fits(got, want):
            problems.append(f"{role} is {_fmt(got)}, expected {_fmt(want)}")
    if problems:
        raise BadModelError(
            f"{origin}: the graph does not match its metadata (input {meta.input_width}x{meta.input_height}"
            + (f", split ratio {meta.simcc_split_ratio}" if meta.task == "pose" else "")
            + f"): {'; '.join(problems)}; the .json belongs to another model (re-convert it)")


def check_files(meta, json_path: str) -> None:
    """Before ncnn reads them: the files are the recorded ones, and int8 scales are usable."""
    check_checksums(meta, json_path)
    if meta.precision in ("int8", "mixed"):
        check_weight_files(meta.param_path(json_path), meta.bin_path(json_path))


def validate(model) -> None:
    """After loading: one probe inference (see the module docstring)."""
    meta = model.meta
    w, h = model.input_size
    outputs = model.run(model.mat_from_bgr(probe_pixels(w, h)))
    check_outputs(outputs, meta, model.json_path)
