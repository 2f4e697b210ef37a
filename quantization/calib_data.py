"""Calibration inputs, made the way the runtime makes model inputs.

Detectors: whole images, letterboxed to the model input (edge_runtime.preprocess.letterbox).
Pose models: person crops (edge_runtime.preprocess.crop_person) around the boxes a person
detector finds in each image; without a detector, one crop of the whole image per image
(worse: people are smaller than in real use, and the caller is told so).
Inputs are raw 8-bit BGR pixels, the folded graph's input, as uint8 HWC arrays.
"""
from __future__ import annotations

import hashlib
import os
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from edgepose.errors import EdgeposeError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def list_images(sources: Sequence[str]) -> List[Tuple[str, str]]:
    """(display name, path) of every image under the given folders/files, sorted by name.

    The display name is the path relative to the folder it was found in, prefixed by that
    folder's base name, so the checksum does not depend on where the data sits on disk.
    """
    found = {}
    for src in sources:
        if os.path.isfile(src):
            if src.lower().endswith(IMAGE_EXTENSIONS):
                found[os.path.basename(src)] = src
            continue
        if not os.path.isdir(src):
            raise EdgeposeError(f"{src}: calibration folder not found")
        base = os.path.basename(os.path.normpath(src))
        for root, dirs, files in os.walk(src):
            dirs.sort()
            for fn in files:
                if fn.lower().endswith(IMAGE_EXTENSIONS):
                    full = os.path.join(root, fn)
                    found[base + "/" + os.path.relpath(full, src).replace(os.sep, "/")] = full
    if not found:
        raise EdgeposeError(f"no images (jpg/png/bmp/webp) under {', '.join(sources)}")
    return sorted(found.items())


def calibration_sha256(images: Sequence[Tuple[str, str]]) -> str:
    """sha256 over the sorted (name, contents) of the calibration images."""
    h = hashlib.sha256()
    for name, path in sorted(images):
        h.update(name.encode("utf-8") + b"\0")
        with open(path, "rb") as f:
            data = f.read()
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def read_bgr(path: str) -> np.ndarray:
    import cv2

    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise EdgeposeError(f"{path}: cannot decode image")
    return img


def detector_inputs(images: Sequence[Tuple[str, str]], input_size: Tuple[int, int], family: str,
                    pad_value: int = 114, progress: Optional[Callable] = None) -> List[np.ndarray]:
    from edgepose.runtime.preprocess import letterbox

    rule = "mmdet" if family == "rtmdet" else "yolox"
    wrap = progress or (lambda it, desc: it)
    return [letterbox(read_bgr(p), input_size, rule, pad_value)[0] for _, p in wrap(images, "letterbox")]


def pose_inputs(images: Sequence[Tuple[str, str]], input_size: Tuple[int, int],
                detector=None, max_per_image: int = 4, min_score: float = 0.3, min_side: float = 32.0,
                progress: Optional[Callable] = None) -> List[np.ndarray]:
    """Person crops (H, W, 3) uint8; `detector(image) -> (boxes xyxy, scores)`."""
    from edgepose.runtime.preprocess import boxes_to_center_scale, crop_person

    wrap = progress or (lambda it, desc: it)
    crops = []
    for _, path in wrap(images, "person crops"):
        img = read_bgr(path)
        h, w = img.shape[:2]
        if detector is not None:
            boxes, scores = detector(img)
            keep = [(s, b) for b, s in zip(boxes, scores)
                    if s >= min_score and min(b[2] - b[0], b[3] - b[1]) >= min_side]
            keep.sort(key=lambda sb: -sb[0])
            boxes = np.array([b for _, b in keep[:max_per_image]], np.float64).reshape(-1, 4)
        else:
            boxes = np.array([[0, 0, w, h]], np.float64)
        if len(boxes) == 0:
            continue
        centers, scales = boxes_to_center_scale(boxes, input_size)
        for c, s in zip(centers, scales):
            crops.append(crop_person(img, c, s, input_size))
    if not crops:
        raise EdgeposeError("the detector found no person in any calibration image; "
                            "use images with people in them")
    return crops


def to_chw(image: np.ndarray) -> np.ndarray:
    """uint8 HWC BGR -> float32 CHW, values 0..255 (what the folded graph takes)."""
    return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
