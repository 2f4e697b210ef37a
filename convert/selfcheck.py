"""After writing a model, run the source and the ncnn model on real images and compare.

The inputs come from `--check-images DIR`: a COCO keypoint folder (a `person_keypoints*.json`
beside its images) gives pose models person crops from the ground-truth boxes and detectors whole
images, letterboxed; any other folder of images is letterboxed as it is. Without it a seeded
synthetic image is used, and the result line says so.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from edgepose.errors import EdgeposeError
from edgepose.ncnn_io import input_mat

POSE_CROPS = 8
DETECT_IMAGES = 4
# Bounds (relative to the largest output magnitude). fp32 matches the acceptance bound.
FP32_MAX_REL = 1e-4
# Detectors: YOLOX eats un-normalised 0..255 pixels, so plain fp32 summation-order noise
# (ncnn vs onnxruntime, also with every ncnn optimisation off) reaches ~1.5e-4 of the
# output range on its raw box offsets (0.016 px at stride 32). Decoded boxes are compared
# with an IoU bound in the tests.
DETECT_FP32_MAX_REL = 1e-3
FP32_MIN_ARGMAX = 0.99
FP16_MIN_WITHIN_ONE = 0.99
FP16_MAX_REL = 5e-2

IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp")


def coco_keypoint_folder(folder: str) -> Optional[Tuple[Path, Path]]:
    """(annotation json, image folder) when `folder` is a COCO keypoint set, else None."""
    root = Path(folder)
    jsons = sorted(root.glob("person_keypoints*.json"))
    if not jsons:
        return None
    for images in (root / "val2017", root / "images", root):
        if images.is_dir() and any(f.suffix.lower() in IMAGE_EXT for f in images.iterdir()):
            return jsons[0], images
    return None


@dataclass
class CheckResult:
    images: str              # where the inputs came from
    count: int
    max_abs: float
    max_magnitude: float
    argmax_agreement: Optional[float]     # pose only
    within_one_bin: Optional[float]       # pose only
    passed: bool
    bound: str
    non_finite: int = 0      # NaN/Inf values in the ncnn or source outputs: always a failure

    @property
    def rel(self) -> float:
        return self.max_abs / max(self.max_magnitude, 1e-12)

    def line(self) -> str:
        s = (f"self-check on {self.count} {self.images}: max abs diff {self.max_abs:.3g} "
             f"({self.rel:.2g} of max |output| {self.max_magnitude:.3g})")
        if self.argmax_agreement is not None:
            s += (f", SimCC argmax agreement {100 * self.argmax_agreement:.1f}% "
                  f"(within one bin {100 * self.within_one_bin:.1f}%)")
        if self.non_finite:
            s += f", {self.non_finite} NaN/Inf output values"
        return s + (" - OK" if self.passed else f" - FAILED ({self.bound})")


# -- inputs --------------------------------------------------------------------------

def warp_box(img: np.ndarray, box_xywh: Sequence[float], out_w: int, out_h: int,
             padding: float = 1.25) -> np.ndarray:
    """Top-down crop as the official pipeline does: centre/scale box, aspect fixed, affine warp."""
    import cv2
    x, y, w, h = box_xywh
    cx, cy = x + w / 2.0, y + h / 2.0
    aspect = out_w / out_h
    if w > aspect * h:
        h = w / aspect
    else:
        w = h * aspect
    w, h = w * padding, h * padding
    src = np.float32([[cx, cy], [cx, cy - h / 2.0], [cx - w / 2.0, cy - h / 2.0]])
    dst = np.float32([[out_w / 2.0, out_h / 2.0], [out_w / 2.0, 0], [0, 0]])
    mat = cv2.getAffineTransform(src, dst)
    return cv2.warpAffine(img, mat, (out_w, out_h), flags=cv2.INTER_LINEAR)


def letterbox(img: np.ndarray, out_w: int, out_h: int, pad_value: int = 114) -> np.ndarray:
    import cv2
    scale = min(out_w / img.shape[1], out_h / img.shape[0])
    nw, nh = max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale))
    canvas = np.full((out_h, out_w, 3), pad_value, np.uint8)
    canvas[:nh, :nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return canvas


def _read(path: str) -> np.ndarray:
    import cv2
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise EdgeposeError(f"{path}: cannot read image")
    return img


def coco_person_crops(annotations: Path, images: Path, out_w: int, out_h: int, count: int) -> List[np.ndarray]:
    with open(annotations) as f:
        coco = json.load(f)
    files = {im["id"]: im["file_name"] for im in coco["images"]}
    anns = [a for a in coco["annotations"]
            if not a.get("iscrowd") and a.get("num_keypoints", 0) > 0 and min(a["bbox"][2:]) >= 32]
    crops = []
    for a in anns[:count]:
        img = _read(str(images / files[a["image_id"]]))
        crops.append(warp_box(img, a["bbox"], out_w, out_h))
    return crops


def folder_images(folder: str, count: int) -> List[np.ndarray]:
    if not os.path.isdir(folder):
        raise EdgeposeError(f"{folder}: check-images folder not found")
    files = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXT))
    if not files:
        raise EdgeposeError(f"{folder}: no images ({', '.join(IMAGE_EXT)}) for the self-check")
    return [_read(os.path.join(folder, f)) for f in files[:count]]


def synthetic_image(w: int, h: int, seed: int = 0) -> np.ndarray:
    """Smooth random colour field: exercises the whole 0..255 range and the borders."""
    import cv2
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, h // 16), max(2, w // 16), 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def check_inputs(task: str, w: int, h: int, pad_value: int, images_dir: Optional[str]
                 ) -> tuple:
    """Raw BGR uint8 images of the model's input size, and a phrase saying what they are."""
    if images_dir:
        coco = coco_keypoint_folder(images_dir) if os.path.isdir(images_dir) else None
        if coco is not None and task == "pose":
            return coco_person_crops(*coco, w, h, POSE_CROPS), f"COCO person crops from {images_dir}"
        source = str(coco[1]) if coco is not None else images_dir
        imgs = folder_images(source, POSE_CROPS if task == "pose" else DETECT_IMAGES)
        return [letterbox(im, w, h, pad_value) for im in imgs], f"images from {source}"
    return [synthetic_image(w, h)], "synthetic image (pass --check-images DIR for real ones)"


# -- running -------------------------------------------------------------------------

def ncnn_forward(param: str, binf: str, input_blob: str, output_blobs: Sequence[str],
                 pixels_chw: np.ndarray, fp16: bool = False) -> List[np.ndarray]:
    """Run one raw-pixel [3,H,W] float input through ncnn; fp32 unless `fp16`."""
    import ncnn
    net = ncnn.Net()
    net.opt.use_fp16_storage = fp16
    net.opt.use_fp16_packed = fp16
    net.opt.use_fp16_arithmetic = fp16
    net.opt.num_threads = 1
    if net.load_param(param) != 0 or net.load_model(binf) != 0:
        raise EdgeposeError(f"{param}: ncnn cannot load the converted model")
    x = np.ascontiguousarray(pixels_chw, dtype=np.float32)
    outs = []
    ex = net.create_extractor()
    ex.input(input_blob, input_mat(x))
    for blob in output_blobs:
        ret, m = ex.extract(blob)
        if ret != 0:
            raise EdgeposeError(f"{param}: ncnn failed to compute blob {blob!r} (code {ret})")
        outs.append(np.array(m).copy())
    del x
    return outs


def compare(reference: Callable[[np.ndarray], List[np.ndarray]], param: str, binf: str,
            input_blob: str, output_blobs: Sequence[str], images: List[np.ndarray], phrase: str,
            pose: bool, fp16: bool) -> CheckResult:
    """`reference` takes raw BGR pixels [1,3,H,W] float32 and returns the source outputs."""
    max_abs, max_mag = 0.0, 0.0
    agree, within, total = 0, 0, 0
    non_finite = 0      # counted apart: Python's max(0.0, nan) is 0.0, so NaN would look like a match
    for img in images:
        pix = img.transpose(2, 0, 1).astype(np.float32)[None]
        ref = [np.asarray(r, np.float32) for r in reference(pix)]
        got = ncnn_forward(param, binf, input_blob, output_blobs, pix[0], fp16=fp16)
        for r, g in zip(ref, got):
            if r.size != g.size:
                raise EdgeposeError(f"{param}: ncnn output has {g.size} values, source has {r.size}")
            g = g.reshape(r.shape)
            bad = ~(np.isfinite(r) & np.isfinite(g))
            non_finite += int(np.count_nonzero(~np.isfinite(r)) + np.count_nonzero(~np.isfinite(g)))
            if bad.all():
                continue
            max_abs = max(max_abs, float(np.abs(r - g)[~bad].max()))
            max_mag = max(max_mag, float(np.abs(r)[~bad].max()))
            if pose:
                a, b = r.argmax(-1), g.argmax(-1)
                agree += int((a == b).sum())
                within += int((np.abs(a - b) <= 1).sum())
                total += a.size
    arg = agree / total if pose else None
    one = within / total if pose else None
    rel = max_abs / max(max_mag, 1e-12)
    if fp16:
        bound = f"fp16: SimCC argmax within one bin >= {FP16_MIN_WITHIN_ONE:.0%}" if pose \
            else f"fp16: max abs diff <= {FP16_MAX_REL} x max |output|"
        passed = (one >= FP16_MIN_WITHIN_ONE) if pose else rel <= FP16_MAX_REL
    else:
        limit = FP32_MAX_REL if pose else DETECT_FP32_MAX_REL
        bound = f"fp32: max abs diff <= {limit} x max |output|" + \
            (f", argmax agreement >= {FP32_MIN_ARGMAX:.0%}" if pose else "")
        passed = rel <= limit and (not pose or arg >= FP32_MIN_ARGMAX)
    if non_finite:
        passed, bound = False, "every output value must be finite"
    return CheckResult(phrase, len(images), max_abs, max_mag, arg, one, bool(passed), bound, non_finite)


def check_finite_weights(param: str, binf: str, source: str) -> None:
    """A converted model whose weights hold NaN/Inf is refused before anything is written."""
    from edgepose.errors import BadModelError
    from edgepose.ncnn_io import read_model
    from edgepose.runtime.model_check import check_weights
    try:
        check_weights(read_model(param, binf), f"{source}: converted")
    except BadModelError as e:
        raise BadModelError(f"{e}; nothing written") from None
