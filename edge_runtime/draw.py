"""Drawing poses: the MMPose look on the photo, or OpenPose-style on black.

- ``draw_mmpose``: skeleton and keypoints coloured per part with the official
  dataset colours (body / feet / face / hands for COCO-WholeBody; any set from
  `keypoint_sets`), only keypoints with score > threshold, optional box and
  track id.
- ``draw_openpose``: the picture DWPose / ControlNet users feed to a pose
  ControlNet: black canvas, the 18-point OpenPose body (neck = mid-shoulders,
  OpenPose order and colours), hands as coloured bone lines with keypoint dots,
  face as white dots. Needs COCO body order in the first 17 keypoints
  (COCO-17, COCO-WholeBody, Halpe-26); hands and face only for whole-body.
All colours here are BGR (OpenCV).
"""
from __future__ import annotations

import colorsys
from typing import Any, Dict, Optional

import cv2
import numpy as np

from edgepose.keypoint_sets import get_keypoint_set, set_name_for_count

# OpenPose-18 body: index i takes COCO keypoint COCO_FOR_OPENPOSE[i]; -1 is the neck.
COCO_FOR_OPENPOSE = [0, -1, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3]
OPENPOSE_LIMBS = [(1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
                  (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17)]
# The OpenPose 18-colour palette (RGB), in keypoint / limb order.
_OPENPOSE_RGB = [(255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
                 (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
                 (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85)]
OPENPOSE_COLORS = [(b, g, r) for r, g, b in _OPENPOSE_RGB]
HAND_LIMBS = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10), (10, 11),
              (11, 12), (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20)]
WHOLEBODY_FACE = (23, 91)
WHOLEBODY_HANDS = ((91, 112), (112, 133))


def keypoint_set_for(num_keypoints: int, meta_keypoints: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The set to draw with: the model's own metadata if it has a skeleton, else the known set of that size."""
    if meta_keypoints and meta_keypoints.get("skeleton") is not None \
            and len(meta_keypoints.get("names", [])) == num_keypoints:
        kset = dict(meta_keypoints)
        if not kset.get("keypoint_colors") and kset.get("name"):
            try:
                base = get_keypoint_set(kset["name"])
                if base["num_keypoints"] == num_keypoints:
                    kset.setdefault("keypoint_colors", base.get("keypoint_colors"))
                    kset.setdefault("skeleton_colors", base.get("skeleton_colors"))
                    kset.setdefault("parts", base.get("parts"))
            except Exception:
                pass
        return kset
    known = set_name_for_count(num_keypoints)
    if known is not None:
        return get_keypoint_set(known)
    return {"name": f"generic{num_keypoints}", "names": [str(i) for i in range(num_keypoints)], "skeleton": []}


def _bgr(rgb) -> tuple:
    return (int(rgb[2]), int(rgb[1]), int(rgb[0]))


def _pt(p):
    return (int(round(float(p[0]))), int(round(float(p[1]))))


def _finite_in(p, w, h, margin=0.5) -> bool:
    """Inside the canvas with a margin: far-away points would overflow OpenCV's int coordinates."""
    return bool(np.isfinite(p).all()) and -margin * w <= p[0] <= (1 + margin) * w \
        and -margin * h <= p[1] <= (1 + margin) * h


def draw_mmpose(image: np.ndarray, keypoints, scores, boxes=None, track_ids=None,
                keypoint_set: Optional[Dict[str, Any]] = None, threshold: float = 0.3,
                draw_boxes: bool = True) -> np.ndarray:
    """Draw poses on a copy of `image` (BGR uint8) and return it."""
    canvas = np.ascontiguousarray(image).copy()
    keypoints = np.asarray(keypoints, np.float32)
    scores = np.asarray(scores, np.float32)
    if keypoints.ndim != 3 or len(keypoints) == 0:
        return canvas
    h, w = canvas.shape[:2]
    k = keypoints.shape[1]
    kset = keypoint_set or keypoint_set_for(k)
    skeleton = kset.get("skeleton") or []
    kcol = kset.get("keypoint_colors") or [(255, 128, 0)] * k
    scol = kset.get("skeleton_colors") or [(0, 255, 0)] * len(skeleton)
    face = kset.get("parts", {}).get("face")
    unit = max(1, int(round(max(h, w) / 640)))
    for n in range(len(keypoints)):
        kp, sc = keypoints[n], scores[n]
        ok = (sc > threshold) & np.isfinite(kp).all(axis=1)
        for (i, j), col in zip(skeleton, scol):
            if i < k and j < k and ok[i] and ok[j] and _finite_in(kp[i], w, h) and _finite_in(kp[j], w, h):
                cv2.line(canvas, _pt(kp[i]), _pt(kp[j]), _bgr(col), 2 * unit, cv2.LINE_AA)
        for i in np.flatnonzero(ok):
            if not _finite_in(kp[i], w, h):
                continue
            small = face is not None and face[0] <= i < face[1]
            cv2.circle(canvas, _pt(kp[i]), unit if small else 2 * unit, _bgr(kcol[i % len(kcol)]), -1,
                       cv2.LINE_AA)
        if draw_boxes and boxes is not None and n < len(boxes):
            b = np.asarray(boxes[n], np.float32)
            if np.isfinite(b).all():
                b = np.clip(b, [-w, -h, -w, -h], [2 * w, 2 * h, 2 * w, 2 * h])
                cv2.rectangle(canvas, _pt(b[:2]), _pt(b[2:]), (0, 200, 255), unit)
                if track_ids is not None:
                    cv2.putText(canvas, f"id {int(track_ids[n])}", (_pt(b[:2])[0], _pt(b[:2])[1] - 4),
                                cv2.FONT_HERSHEY_SIMPLEX, 0.5 * unit, (0, 200, 255), unit, cv2.LINE_AA)
    return canvas


def openpose_body18(keypoints, scores):
    """COCO-order keypoints (N,>=17,2) -> OpenPose-18 body (N,18,2), scores (N,18).

    The neck is the middle of the shoulders, scored by the weaker shoulder (so it
    is drawn only when both shoulders are)."""
    kp = np.asarray(keypoints, np.float32)
    sc = np.asarray(scores, np.float32)
    idx = np.asarray([max(i, 0) for i in COCO_FOR_OPENPOSE])
    body = kp[:, idx].copy()
    bsc = sc[:, idx].copy()
    body[:, 1] = (kp[:, 5] + kp[:, 6]) / 2
    bsc[:, 1] = np.minimum(sc[:, 5], sc[:, 6])
    return body, bsc


def draw_openpose(shape, keypoints, scores, threshold: float = 0.3) -> np.ndarray:
    """OpenPose-style rendering on a black canvas of `shape` (h, w[, c]); returns BGR uint8."""
    h, w = int(shape[0]), int(shape[1])
    canvas = np.zeros((h, w, 3), np.uint8)
    keypoints = np.asarray(keypoints, np.float32)
    scores = np.asarray(scores, np.float32)
    if keypoints.ndim != 3 or len(keypoints) == 0 or keypoints.shape[1] < 17:
        return canvas
    body, bsc = openpose_body18(keypoints, scores)
    stick = 4
    for n in range(len(body)):
        for li, (a, b) in enumerate(OPENPOSE_LIMBS):
            if bsc[n, a] <= threshold or bsc[n, b] <= threshold:
                continue
            pa, pb = body[n, a], body[n, b]
            if not (_finite_in(pa, w, h) and _finite_in(pb, w, h)):
                continue
            centre = _pt((pa + pb) / 2)
            length = float(np.hypot(*(pa - pb)))
            angle = float(np.degrees(np.arctan2(pa[1] - pb[1], pa[0] - pb[0])))
            poly = cv2.ellipse2Poly(centre, (int(length / 2), stick), int(angle), 0, 360, 1)
            col = tuple(int(c * 0.6) for c in OPENPOSE_COLORS[li])
            cv2.fillConvexPoly(canvas, poly, col)
        for i in range(18):
            if bsc[n, i] > threshold and _finite_in(body[n, i], w, h):
                cv2.circle(canvas, _pt(body[n, i]), 4, OPENPOSE_COLORS[i], -1)
    if keypoints.shape[1] >= 133:
        for n in range(len(keypoints)):
            for start, stop in WHOLEBODY_HANDS:
                hk, hs = keypoints[n, start:stop], scores[n, start:stop]
                for e, (a, b) in enumerate(HAND_LIMBS):
                    if hs[a] > threshold and hs[b] > threshold and _finite_in(hk[a], w, h) \
                            and _finite_in(hk[b], w, h):
                        r, g, bl = colorsys.hsv_to_rgb(e / len(HAND_LIMBS), 1.0, 1.0)
                        cv2.line(canvas, _pt(hk[a]), _pt(hk[b]), (int(bl * 255), int(g * 255), int(r * 255)), 2)
                for i in range(21):
                    if hs[i] > threshold and _finite_in(hk[i], w, h):
                        cv2.circle(canvas, _pt(hk[i]), 4, (255, 0, 0), -1)
            fk, fs = keypoints[n, WHOLEBODY_FACE[0]:WHOLEBODY_FACE[1]], scores[n, WHOLEBODY_FACE[0]:WHOLEBODY_FACE[1]]
            for i in range(len(fk)):
                if fs[i] > threshold and _finite_in(fk[i], w, h):
                    cv2.circle(canvas, _pt(fk[i]), 3, (255, 255, 255), -1)
    return canvas


def draw_fps(image: np.ndarray, fps: float) -> np.ndarray:
    cv2.putText(image, f"{fps:.1f} FPS", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(image, f"{fps:.1f} FPS", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    return image
