"""`convert(source, out_dir, ...)`: a .pth checkpoint or deploy .onnx -> ncnn + metadata.

Everything is built in a temporary folder; the three output files land in `out_dir`
under temporary names, pass the self-check, and only then are renamed into place
(metadata last), so a failed run never leaves a model that looks whole.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from edgepose.errors import EdgeposeError
from edgepose.files import Outputs, sha256_of
from edgepose.model_meta import ModelMeta

from . import fold_input, fp16_mask, onnx_source, pnnx_export, selfcheck, weight_precision
from edgepose.ncnn_io import NcnnModel, read_model

FEED_ORDER = "bgr"
OUTPUT_SUFFIXES = (".ncnn.param", ".ncnn.bin", ".json")



def tool_versions() -> Dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for pkg in ("pnnx", "ncnn", "onnx", "onnxruntime", "torch"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _prepare_out_dir(out_dir: str, name: str, source: str) -> Outputs:
    """The output folder, proven writable, with the three targets checked (edgepose's own earlier
    files may be replaced; a user's file or the source itself never)."""
    outputs = Outputs(out_dir, "output folder", inputs=[source])
    try:
        outputs.claim(*(name + s for s in OUTPUT_SUFFIXES))
    except BaseException:
        outputs.rollback()
        raise
    return outputs


def _keypoints_meta(set_name: Optional[str], count: int) -> Optional[Dict]:
    from edgepose.keypoint_sets import get_keypoint_set, set_name_for_count
    name = set_name or set_name_for_count(count)
    if name is None:
        return None
    kp = get_keypoint_set(name)
    if len(kp["names"]) != count:
        raise EdgeposeError(f"keypoint set {name!r} has {len(kp['names'])} keypoints, the model outputs {count}")
    return {"name": kp.get("name", name), "names": kp["names"], "skeleton": kp["skeleton"],
            "flip_pairs": kp["flip_pairs"], "sigmas": kp.get("sigmas"), "parts": kp.get("parts", {})}


def _ort_reference(model, src: onnx_source.OnnxSource) -> Callable[[np.ndarray], List[np.ndarray]]:
    """onnxruntime on the unfolded graph, fed with the official preprocessing in numpy."""
    import onnxruntime as ort
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in model.graph.output]

    def run(pixels: np.ndarray) -> List[np.ndarray]:
        x = fold_input.normalise_pixels(pixels, src.mean, src.std, src.model_channel_order, FEED_ORDER)
        return sess.run(names, {src.input_name: x})
    return run


def _torch_reference(model, src: onnx_source.OnnxSource) -> Callable[[np.ndarray], List[np.ndarray]]:
    import torch

    def run(pixels: np.ndarray) -> List[np.ndarray]:
        x = fold_input.normalise_pixels(pixels, src.mean, src.std, src.model_channel_order, FEED_ORDER)
        with torch.no_grad():
            out = model(torch.from_numpy(x))
        out = out if isinstance(out, (tuple, list)) else [out]
        return [o.numpy() for o in out]
    return run


def _from_checkpoint(path: str, config: Optional[str], work: str):
    """Load a .pth (weights-only) into our definition, export it at opset 11 and inspect the
    result like a deploy ONNX; the self-check then compares against torch."""
    from .checkpoint import load_checkpoint
    loaded = load_checkpoint(path, config)
    spec, model = loaded.spec, loaded.model.eval()
    w, h = (int(v) for v in spec.input_size)
    outputs = ["simcc_x", "simcc_y"] if spec.task == "pose" else list(onnx_source.RTMDET_ROLES)
    onnx_path = os.path.join(work, "source.onnx")
    pnnx_export.torch_to_onnx(model, [1, 3, h, w], onnx_path, outputs)
    src = onnx_source.inspect(onnx_path, detector_size=(w, h))
    src.mean, src.std = [float(v) for v in spec.mean], [float(v) for v in spec.std]
    src.model_channel_order = spec.channel_order
    if spec.task == "detect":
        _apply_detector_spec(src, spec)
    src.notes.insert(0, ("inferred " if loaded.inferred else "") + "architecture " + loaded.note)
    return src, _torch_reference(model, src), spec.official_config or spec.name, spec.keypoint_set


def _raw_pixel_stem(pf: NcnnModel, src: onnx_source.OnnxSource) -> List[str]:
    """Layers that must stay fp32 because they see un-normalised 0..255 pixels (YOLOX)."""
    weight, bias = fold_input.affine_params(src.mean, src.std, src.model_channel_order, FEED_ORDER)
    if not fold_input.is_identity(weight, bias):
        return []          # normalised inside the graph: the stem sees O(1) values
    return weight_precision.input_stem_layers(pf)


def _keep_weights_fp32(pf: NcnnModel, folded, src, binf: str, names: List[str], work: str, source: str) -> None:
    """Replace `names`' fp16 weights by fp32 ones from a second, fp32 pnnx run."""
    sub = os.path.join(work, "fp32-weights")
    os.makedirs(sub)
    shape = [1, 3, src.input_height, src.input_width]
    param32, bin32 = pnnx_export.run_pnnx(folded, shape, sub, False, source)
    same = [(l.type, l.name) for l in read_model(param32).layers] == [(l.type, l.name) for l in pf.layers]
    if not same:
        raise EdgeposeError(f"{source}: pnnx gave different graphs for fp16 and fp32 weights; "
                            f"convert without --fp16")
    with open(binf, "rb") as f16, open(bin32, "rb") as f32:
        mixed = weight_precision.mix_fp32_layers(pf, f16.read(), f32.read(), names, source)
    with open(binf, "wb") as f:
        f.write(mixed)


def _apply_config_to_onnx(src: onnx_source.OnnxSource, config: str, source: str):
    """A named config supplies what an ONNX file cannot say: mean/std, channel order, keypoint set."""
    from .models.configs import get_spec
    spec = get_spec(config)
    if spec.task != src.task:
        raise EdgeposeError(f"{source}: is a {src.task} model, config {spec.name} is a {spec.task} model")
    if src.task == "detect":
        if spec.family != src.family:
            raise EdgeposeError(f"{source}: is a {src.family} detector, config {spec.name} is {spec.family}")
        if int(src.detector["num_classes"]) != int(spec.num_classes):
            raise EdgeposeError(f"{source}: detector has {src.detector['num_classes']} classes, config "
                                f"{spec.name} has {spec.num_classes}")
    w, h = (int(v) for v in spec.input_size)
    if src.task == "pose":
        if (w, h) != (src.input_width, src.input_height) or spec.num_keypoints != src.num_keypoints:
            raise EdgeposeError(
                f"{source}: input {src.input_width}x{src.input_height} with {src.num_keypoints} keypoints "
                f"does not fit config {spec.name} ({w}x{h}, {spec.num_keypoints} keypoints)")
    src.mean, src.std = [float(v) for v in spec.mean], [float(v) for v in spec.std]
    src.model_channel_order = spec.channel_order
    if src.task == "detect":
        _apply_detector_spec(src, spec)
    return spec.official_config or spec.name, spec.keypoint_set


def _apply_detector_spec(src: onnx_source.OnnxSource, spec) -> None:
    """The official post-processing settings of a named RTMDet config."""
    src.detector.update({"strides": [int(s) for s in spec.strides], "num_classes": int(spec.num_classes),
                         "pad_value": int(spec.pad_value), "score_threshold": float(spec.score_threshold),
                         "nms_iou": float(spec.nms_iou)})


def _config_sizes(config: Optional[str]) -> Dict[str, Tuple[int, int]]:
    """inspect() size arguments from a named config: (w, h) for a pose ONNX with dynamic
    height/width, or the official test size a (fully convolutional) RTMDet runs at."""
    if not config:
        return {}
    from .models.configs import get_spec
    spec = get_spec(config)
    size = tuple(int(v) for v in spec.input_size)
    return {"pose_size": size} if spec.task == "pose" else {"detector_size": size}


def resolve_source(source: str, config: Optional[str]) -> Tuple[str, Optional[str], Optional[str]]:
    """(local path, config, default output name) for a file, a zoo name or a URL.

    A zoo name is fetched into the cache (verified; offline: a clear error saying where
    to put the file) and brings its config, unless --config names another."""
    if os.path.isfile(source):
        return source, config, None
    from . import zoo
    manifest = zoo.load_manifest()
    if source not in manifest and not re.match(r"^https?://", source):
        if os.sep in source or os.path.splitext(source)[1].lower() in (".onnx", ".pth", ".pt"):
            raise EdgeposeError(f"{source}: file not found")
        near = [n for n in manifest if source.lower() in n.lower()][:5]
        hint = f" (zoo names like it: {', '.join(near)})" if near else " (edgepose fetch --list shows the zoo)"
        raise EdgeposeError(f"{source}: no such file and not a model zoo name{hint}")
    path = zoo.fetch(source)
    entry = manifest.get(source)
    if entry is None:
        return path, config, None
    return path, config or entry.get("config"), source


def convert(source: str, out_dir: str, config: Optional[str] = None, fp16: bool = False,
            name: Optional[str] = None, check: bool = True, check_images: Optional[str] = None,
            log: Callable[[str], None] = print) -> str:
    """Convert `source` (.pth or .onnx file, zoo name or URL) into `out_dir`; return the
    metadata JSON path."""
    source, config, zoo_name = resolve_source(source, config)
    ext = os.path.splitext(source)[1].lower()
    if ext not in (".onnx", ".pth", ".pt"):
        raise EdgeposeError(f"{source}: expected a .pth checkpoint or a .onnx file")
    stem = zoo_name or os.path.splitext(os.path.basename(source))[0]
    if stem == "end2end":  # mmdeploy's fixed file name says nothing; use the folder's
        stem = os.path.basename(os.path.dirname(os.path.abspath(source))) or stem
    name = name or (stem + ("_fp16" if fp16 else ""))
    if os.sep in name or name.startswith("."):
        raise EdgeposeError(f"--name {name!r}: must be a plain file name")
    outputs = _prepare_out_dir(out_dir, name, source)
    try:
        return _convert_into(source, ext, outputs, name, config, fp16, check, check_images, log)
    except BaseException:
        outputs.rollback()      # staged files and a folder we made for a failed conversion go
        raise


def _convert_into(source, ext, outputs: Outputs, name, config, fp16, check, check_images, log) -> str:
    with tempfile.TemporaryDirectory(prefix="edgepose-convert-") as work:
        if ext == ".onnx":
            src = onnx_source.inspect(source, **_config_sizes(config))
            cfg_name, kp_set = _apply_config_to_onnx(src, config, source) if config else (None, None)
            reference = _ort_reference(src.reference_model, src)
        else:
            src, reference, cfg_name, kp_set = _from_checkpoint(source, config, work)

        folded = fold_input.fold_into_onnx(src.model, src.input_name, src.mean, src.std,
                                           src.model_channel_order, FEED_ORDER)
        param, binf = pnnx_export.run_pnnx(folded, [1, 3, src.input_height, src.input_width], work,
                                           fp16, source)
        pf = read_model(param)
        fp32_layers = fp16_mask.apply_fp32_mask(pf)
        stem = _raw_pixel_stem(pf, src)
        fp16_mask.mask_layers(pf, stem)
        with open(param, "w") as f:
            f.write(pf.param_text())
        if fp16 and stem:
            _keep_weights_fp32(pf, folded, src, binf, stem, work, source)
        fp32_layers += stem
        blobs = pnnx_export.output_blobs(param, len(src.output_roles))

        meta = ModelMeta(
            name=name, task=src.task, param=name + ".ncnn.param", bin=name + ".ncnn.bin",
            input_blob="in0", input_width=src.input_width, input_height=src.input_height,
            channel_order=FEED_ORDER, pixel_range=[0.0, 255.0], normalization_folded=True,
            mean=list(src.mean), std=list(src.std), model_channel_order=src.model_channel_order,
            output_blobs=dict(zip(src.output_roles, blobs)),
            precision="fp16" if fp16 else "fp32", fp32_layers=fp32_layers,
            simcc_split_ratio=src.simcc_split_ratio,
            keypoints=_keypoints_meta(kp_set, src.num_keypoints) if src.task == "pose" else None,
            detector=src.detector,
            source={"file": os.path.basename(source), "sha256": sha256_of(source), "config": cfg_name,
                    "family": src.family, "tools": tool_versions(), "notes": src.notes},
        )

        tmp = {s: outputs.stage(name + s) for s in OUTPUT_SUFFIXES}
        shutil.copyfile(param, tmp[".ncnn.param"])
        shutil.copyfile(binf, tmp[".ncnn.bin"])
        # Refused before anything is written: weights that are not finite make every output garbage
        selfcheck.check_finite_weights(tmp[".ncnn.param"], tmp[".ncnn.bin"], source)
        if check:
            pad = (src.detector or {}).get("pad_value", 114)
            images, phrase = selfcheck.check_inputs(src.task, src.input_width, src.input_height, pad,
                                                    check_images)
            result = selfcheck.compare(reference, tmp[".ncnn.param"], tmp[".ncnn.bin"], meta.input_blob,
                                       blobs, images, phrase, pose=src.task == "pose", fp16=fp16)
            log(f"{name}: {result.line()}")
            if not result.passed:
                hint = "; the model is too sensitive for fp16 weights: convert without --fp16" if fp16 else ""
                raise EdgeposeError(f"{source}: converted model does not reproduce the source "
                                    f"({result.line()}); nothing written{hint}")
        meta.checksums = {meta.param: sha256_of(tmp[".ncnn.param"]), meta.bin: sha256_of(tmp[".ncnn.bin"])}
        outputs.write(name + ".json", meta.to_json())
        # metadata last: a model only looks whole once its weights are in place
        written = outputs.commit(order=[name + ".ncnn.param", name + ".ncnn.bin"])
    targets = dict(zip(OUTPUT_SUFFIXES, written))
    for note in src.notes:
        log(f"{name}: note: {note}")
    log(f"{name}: wrote {targets['.ncnn.param']}, {os.path.basename(targets['.ncnn.bin'])}, "
        f"{os.path.basename(targets['.json'])} ({meta.precision}, {src.task}/{src.family})")
    return targets[".json"]


__all__ = ["convert"]
