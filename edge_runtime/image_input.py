"""Turn whatever image a user hands us into contiguous 8-bit BGR, the one format the models take."""
from __future__ import annotations

import numpy as np
import cv2

from edgepose.errors import BadImageError, EdgeposeError


def read_image(path: str) -> np.ndarray:
    """Decode an image file as stored (any depth, 1-4 channels); BadImageError when it cannot be read."""
    try:
        data = np.fromfile(path, dtype=np.uint8)      # also works for non-ASCII paths
    except (OSError, ValueError) as e:
        raise BadImageError(f"{path}: cannot read image ({getattr(e, 'strerror', None) or e})") from None
    img = None
    if data.size:
        try:
            img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        except cv2.error:
            img = None
    if img is None or img.size == 0:
        raise BadImageError(f"{path}: cannot decode image (empty, corrupt or unsupported)")
    return img


def as_bgr8(image) -> np.ndarray:
    """Return `image` as a C-contiguous uint8 array of shape (H, W, 3), BGR order.

    Accepted: (H, W) or (H, W, 1) gray, (H, W, 3) BGR, (H, W, 4) BGRA (alpha dropped);
    dtypes uint8 (as is), uint16 (high byte, so 8-bit data stored as 16-bit comes back
    exactly), bool, other integers (clipped to 0..255), floats (range 0..1 when the
    maximum is <= 1, else 0..255; rounded, clipped, NaN -> 0).
    A 1x1 image is valid. Anything else raises EdgeposeError naming the shape/dtype.
    """
    if image is None:
        raise EdgeposeError("no image (got None; was the file readable?)")
    if not isinstance(image, np.ndarray):
        raise EdgeposeError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise EdgeposeError(f"image shape {image.shape} is not (H, W), (H, W, 3) or (H, W, 4)")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise EdgeposeError(f"empty image (shape {image.shape})")
    image = _to_uint8(image)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    dt = image.dtype
    if dt == np.uint8:
        return image
    if dt == np.bool_:
        return image.astype(np.uint8) * 255
    if dt == np.uint16:
        return (image >> 8).astype(np.uint8)
    if np.issubdtype(dt, np.integer):
        return np.clip(image, 0, 255).astype(np.uint8)
    if np.issubdtype(dt, np.floating):
        img = np.nan_to_num(image.astype(np.float32, copy=False), nan=0.0, posinf=255.0, neginf=0.0)
        if img.size and float(img.max()) <= 1.0:
            img = img * 255.0
        return np.clip(np.rint(img), 0, 255).astype(np.uint8)
    raise EdgeposeError(f"image dtype {dt} is not supported (use uint8, uint16 or float)")
