"""Image -> model input, exactly as the official OpenMMLab test pipelines do it.

Pose (mmpose 1.x `GetBBoxCenterScale` + `TopdownAffine`, rotation 0):
  centre  c = ((x1 + x2) / 2, (y1 + y2) / 2)
  scale   s = (x2 - x1, y2 - y1) * 1.25                    (BBOX_PADDING)
  aspect  with a = W_in / H_in: if s_w > s_h * a then s_h = s_w / a else s_w = s_h * a
  affine  M = [[k, 0, W_in/2 - k*c_x], [0, k, H_in/2 - k*c_y]],  k = W_in / s_w
          built like mmpose's `get_warp_matrix` (three float32 points, cv2.getAffineTransform),
          so it agrees to the last bit with the official matrix.
  crop    cv2.warpAffine(image, M, (W_in, H_in), INTER_LINEAR, constant border 0) on the uint8
          BGR image: the raw pixels the folded graph expects (border 0 is what the official
          pipeline pads with before normalising, so borders stay exact).
  back    x_img = x_in / W_in * s_w + c_x - s_w / 2 (same for y): the inverse of M.

Detectors (letterbox: resize keeping the aspect ratio, pad right/bottom with 114):
  rtmdet  mmcv `imrescale`: f = min(max(W,H)/max(w,h), min(W,H)/min(w,h)),
          new size (int(w*f + 0.5), int(h*f + 0.5)); boxes go back with the per-axis factors
          (new_w / w, new_h / h) as mmdet's `scale_factor`.
  yolox   YOLOX `preproc`: r = min(H/h, W/w), new size (int(w*r), int(h*r)); boxes go back / r.
"""
from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np

from .constants import BBOX_PADDING, LETTERBOX_PAD_VALUE, WARP_BORDER_VALUE


def boxes_to_center_scale(boxes: np.ndarray, input_size: Tuple[int, int],
                          padding: float = BBOX_PADDING) -> Tuple[np.ndarray, np.ndarray]:
    """(N, 4) xyxy boxes -> centres (N, 2) and aspect-fixed scales (N, 2), float64.

    `input_size` is the model's (width, height). The arrays are tiny; float64 keeps the
    official float math (rtmlib/mmpose on float64 boxes) bit for bit.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    center = (boxes[:, 0:2] + boxes[:, 2:4]) * 0.5
    scale = (boxes[:, 2:4] - boxes[:, 0:2]) * padding
    return center, fix_aspect_ratio(scale, input_size)


def fix_aspect_ratio(scale: np.ndarray, input_size: Tuple[int, int]) -> np.ndarray:
    """Grow the short side of each (w, h) so that w / h equals the model input's aspect."""
    w_in, h_in = input_size
    aspect = w_in / h_in
    bw, bh = scale[:, 0:1], scale[:, 1:2]
    return np.where(bw > bh * aspect, np.hstack([bw, bw / aspect]), np.hstack([bh * aspect, bh]))


def warp_matrix(center: np.ndarray, scale: np.ndarray, input_size: Tuple[int, int]) -> np.ndarray:
    """2x3 float64 affine taking image pixels to model-input pixels (rotation 0).

    Same three points as mmpose's `get_warp_matrix`: the centre, the point half a box-width
    above it, and that vector turned 90 degrees; mapped to the input's centre etc.
    """
    w_in, h_in = input_size
    src = np.zeros((3, 2), dtype=np.float32)
    src[0] = center
    src[1] = center + np.array([0.0, scale[0] * -0.5])
    d = src[0] - src[1]
    src[2] = src[1] + np.array([-d[1], d[0]], dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    dst[0] = [w_in * 0.5, h_in * 0.5]
    dst[1] = dst[0] + np.array([0.0, w_in * -0.5])
    e = dst[0] - dst[1]
    dst[2] = dst[1] + np.array([-e[1], e[0]], dtype=np.float32)
    return cv2.getAffineTransform(src, dst)


def crop_person(image: np.ndarray, center: np.ndarray, scale: np.ndarray,
                input_size: Tuple[int, int]) -> np.ndarray:
    """One warpAffine from the uint8 BGR image straight to the (H_in, W_in, 3) uint8 model crop."""
    m = warp_matrix(center, scale, input_size)
    return cv2.warpAffine(image, m, (int(input_size[0]), int(input_size[1])), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(WARP_BORDER_VALUE,) * 3)


def input_to_image(points: np.ndarray, center: np.ndarray, scale: np.ndarray,
                   input_size: Tuple[int, int]) -> np.ndarray:
    """Model-input pixel coordinates (N, K, 2) -> image pixels (N, K, 2) float32 (inverse of M)."""
    size = np.asarray(input_size, dtype=np.float64)
    c = np.asarray(center, dtype=np.float64)[:, None, :]
    s = np.asarray(scale, dtype=np.float64)[:, None, :]
    return (points / size * s + c - s * 0.5).astype(np.float32)


def letterbox_size(width: int, height: int, input_size: Tuple[int, int], rule: str) -> Tuple[int, int]:
    """Size (new_w, new_h) of the resized image inside the (W, H) model input; never below 1 pixel."""
    w_t, h_t = input_size
    if rule == "mmdet":
        f = min(max(w_t, h_t) / max(width, height), min(w_t, h_t) / min(width, height))
        new_w, new_h = int(width * f + 0.5), int(height * f + 0.5)
    elif rule == "yolox":
        r = min(h_t / height, w_t / width)
        new_w, new_h = int(width * r), int(height * r)
    else:
        raise ValueError(f"unknown letterbox rule {rule!r}")
    return min(max(new_w, 1), w_t), min(max(new_h, 1), h_t)


def letterbox(image: np.ndarray, input_size: Tuple[int, int], rule: str,
              pad_value: int = LETTERBOX_PAD_VALUE) -> Tuple[np.ndarray, Tuple[float, float]]:
    """Resize keeping the aspect ratio into a (H, W, 3) uint8 canvas padded right/bottom.

    Returns the canvas and (scale_x, scale_y): model-input x = image x * scale_x.
    """
    h, w = image.shape[:2]
    w_t, h_t = input_size
    new_w, new_h = letterbox_size(w, h, input_size, rule)
    canvas = np.full((h_t, w_t, 3), pad_value, dtype=np.uint8)
    if (new_w, new_h) == (w, h):
        canvas[:h, :w] = image
    else:
        canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    if rule == "yolox":
        r = min(h_t / h, w_t / w)
        return canvas, (r, r)
    return canvas, (new_w / w, new_h / h)
