"""Frames from an image, a folder of images, a video file or a camera index.

Images are read as stored (`IMREAD_UNCHANGED`: grayscale, RGBA, 16-bit kept;
the pipeline converts them). An image that cannot be decoded is skipped with a
warning. A video that ends before its header's frame count (cut mid-stream)
stops there with a warning; frames read up to the cut are delivered normally.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Iterator, List, Optional

import cv2
import numpy as np

from edgepose.errors import BadImageError, EdgeposeError
from edgepose.files import read_manifest, written_by_edgepose

from .image_input import read_image

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".pgm",
                    ".ppm", ".pbm", ".pnm", ".pxm", ".jp2", ".sr", ".ras", ".exr", ".hdr", ".pic", ".avif"}


def warn(msg: str) -> None:
    print(f"edgepose: warning: {msg}", file=sys.stderr)


@dataclass
class Frame:
    index: int                 # position in the source (frame number, or file number in a folder)
    image: np.ndarray          # as decoded: uint8/uint16, 1/3/4 channels
    name: str                  # file name (images) or "<stem>_<index>" (video)
    timestamp: Optional[float] = None   # seconds (video)


def is_image_file(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


class Source:
    """Iterate `Frame`s. `kind` is image | folder | video | camera; `fps` is known for video/camera."""

    def __init__(self, spec: str):
        self.spec = str(spec)
        self.fps: Optional[float] = None
        self.expected_frames: Optional[int] = None
        self.frames_read = 0
        self.skipped: List[str] = []
        self.cut_short = False
        self._files: List[str] = []
        s = self.spec
        if s.isdigit() and not os.path.exists(s):
            self.kind = "camera"
            self.stem = f"camera{s}"
        elif os.path.isdir(s):
            self.kind = "folder"
            self.stem = os.path.basename(os.path.normpath(s)) or "images"
            # edgepose's own earlier outputs in that folder (its manifest) are results, not inputs
            ours = read_manifest(s)
            self._files = sorted(os.path.join(s, f) for f in os.listdir(s)
                                 if is_image_file(f) and os.path.isfile(os.path.join(s, f))
                                 and not (f in ours and written_by_edgepose(os.path.join(s, f))))
            if not self._files:
                raise EdgeposeError(f"{s}: folder holds no image files ({', '.join(sorted(IMAGE_EXTENSIONS)[:6])}, ...)")
            self.expected_frames = len(self._files)
        elif os.path.isfile(s):
            self.kind = "image" if is_image_file(s) else "video"
            self.stem = os.path.splitext(os.path.basename(s))[0]
            if self.kind == "image":
                self.expected_frames = 1
        else:
            raise EdgeposeError(f"{s}: no such file, folder or camera index")
        self._cap = None
        if self.kind in ("video", "camera"):
            self._open_capture()

    def _open_capture(self) -> None:
        s = self.spec
        try:
            cap = cv2.VideoCapture(int(s)) if self.kind == "camera" else cv2.VideoCapture(s)
        except cv2.error as e:
            raise EdgeposeError(f"{s}: cannot open ({e})") from None
        if not cap.isOpened():
            cap.release()
            what = "camera" if self.kind == "camera" else "video (not a video OpenCV can decode, or an image " \
                                                           "with an unknown extension)"
            raise EdgeposeError(f"{s}: cannot open as {what}")
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else None
        if self.kind == "video":
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            self.expected_frames = n if n > 0 else None
        self._cap = cap

    def __iter__(self) -> Iterator[Frame]:
        if self.kind in ("image", "folder"):
            files = [self.spec] if self.kind == "image" else self._files
            for i, path in enumerate(files):
                try:
                    img = read_image(path)
                except BadImageError:
                    warn(f"{path}: cannot decode image (empty, corrupt or unsupported); skipped")
                    self.skipped.append(path)
                    continue
                self.frames_read += 1
                yield Frame(i, img, os.path.basename(path))
            return
        cap = self._cap
        if cap is None:
            self._open_capture()
            cap = self._cap
        i = 0
        try:
            while True:
                try:
                    ok, img = cap.read()
                except cv2.error as e:
                    warn(f"{self.spec}: decoding stopped at frame {i} ({e})")
                    ok, img = False, None
                if not ok or img is None:
                    break
                t = cap.get(cv2.CAP_PROP_POS_MSEC)
                ts = t / 1000.0 if t and np.isfinite(t) and t > 0 else (i / self.fps if self.fps else None)
                self.frames_read += 1
                yield Frame(i, img, f"{self.stem}_{i:06d}", ts)
                i += 1
        finally:
            self.close()
        if self.kind == "video":
            if self.expected_frames and i < self.expected_frames:
                self.cut_short = True
                warn(f"{self.spec}: video ended after {i} of {self.expected_frames} frames (file cut or "
                     f"damaged); results up to frame {i} are kept")
            if i == 0:
                raise EdgeposeError(f"{self.spec}: no frame could be decoded")

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
