"""Which real images the bench runs: one per person count asked for (1, 3, 6+ by default)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Sequence

import cv2

from edgepose.errors import EdgeposeError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
@dataclass
class Scenario:
    label: str          # e.g. "1p:human-pose.jpeg"
    path: str
    encoded: bytes      # the file's bytes: decoding is one of the timed stages
    detected: int       # persons the fp32 detector finds in the whole image
    cap: Optional[int]  # detections kept (None = all)


def expand_images(paths: Sequence[str]) -> List[str]:
    out = []
    for p in paths:
        if os.path.isdir(p):
            out += sorted(os.path.join(p, f) for f in os.listdir(p) if f.lower().endswith(IMAGE_EXTS))
        elif os.path.isfile(p):
            out.append(p)
        else:
            raise EdgeposeError(f"{p}: image not found")
    return out


def pick(images: Sequence[str], detector, targets: Sequence[int]) -> List[Scenario]:
    """For each target count, the image whose detected person count fits best.

    An exact count wins; else the smallest count above the target, capped to the target
    (the top-scoring persons), so a '3 persons' row really runs 3 poses. The largest
    target means 'at least': that image runs with all its persons.
    """
    counted = []
    for path in images:
        with open(path, "rb") as f:
            data = f.read()
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            continue
        boxes, _ = detector(image)
        counted.append((len(boxes), path, data))
    if not counted:
        raise EdgeposeError("none of the --images could be read as an image")
    scenarios = []
    top = max(targets)
    for t in targets:
        if t == top:
            fits = [c for c in counted if c[0] >= t]
            choice = max(fits, key=lambda c: c[0]) if fits else max(counted, key=lambda c: c[0])
            cap = None
        else:
            exact = [c for c in counted if c[0] == t]
            above = sorted((c for c in counted if c[0] > t), key=lambda c: c[0])
            choice = exact[0] if exact else (above[0] if above else max(counted, key=lambda c: c[0]))
            cap = None if choice[0] <= t else t
        n = choice[0] if cap is None else cap
        scenarios.append(Scenario(f"{n}p:{os.path.basename(choice[1])}", choice[1], choice[2], choice[0], cap))
    return scenarios
