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
import functools
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from edgepose.keypoint_sets import get_keypoint_set, set_name_for_count

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

Color = Tuple[int, ...]                                   # BGR, 0..255
LimbGroup = Tuple[Color, np.ndarray, np.ndarray]          # colour, (L,) start and (L,) end keypoint indices
DotGroup = Tuple[Color, bool, np.ndarray]                 # colour, small (face) dot, (D,) keypoint indices
Recipe = Tuple[List[LimbGroup], List[DotGroup]]

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


def _bgr(rgb: Sequence[int]) -> Color:
    return (int(rgb[2]), int(rgb[1]), int(rgb[0]))


def _pt(p: Union[np.ndarray, Sequence[float]]) -> Tuple[int, int]:
    return (int(round(float(p[0]))), int(round(float(p[1]))))


def _in_canvas(pts: np.ndarray, w: int, h: int, margin: float = 0.5) -> np.ndarray:
    """(..., 2) -> bool mask: finite and inside the canvas with a margin (far-away points
    would overflow OpenCV's int coordinates)."""
    x, y = pts[..., 0], pts[..., 1]
    with np.errstate(invalid="ignore"):
        return np.isfinite(pts).all(axis=-1) & (x >= -margin * w) & (x <= (1 + margin) * w) \
            & (y >= -margin * h) & (y <= (1 + margin) * h)


def _pixels(pts: np.ndarray) -> np.ndarray:
    """Float points -> int32 pixels, rounded half to even as Python's round() (the old per-point rule)."""
    safe = np.clip(np.nan_to_num(pts, nan=0.0, posinf=0.0, neginf=0.0), -2.0 ** 30, 2.0 ** 30)
    return np.round(safe).astype(np.int32)


def _segments(canvas: np.ndarray, a: np.ndarray, b: np.ndarray, color: Color, thickness: int,
              line_type: int) -> None:
    """All segments a[i]-b[i] in one call. OpenCV draws each 2-point open polyline exactly as
    cv2.line (both round caps), so the pixels are those of one cv2.line per segment."""
    if len(a):
        cv2.polylines(canvas, list(np.stack([a, b], axis=1)), False, color, thickness, line_type)


def _dots(canvas: np.ndarray, pts: np.ndarray, radius: int, color: Color, line_type: int) -> None:
    """Filled circles at all `pts` in one call: a 1-point closed polyline of thickness 2r is
    drawn as its end cap, the same disk (same AA edge) as cv2.circle(pt, r, color, -1)."""
    if len(pts):
        cv2.polylines(canvas, list(pts.reshape(-1, 1, 1, 2)), True, color, 2 * radius, line_type)


def _make_recipe(kset: Dict[str, Any], k: int) -> Recipe:
    """A keypoint set -> what one frame draws: limbs grouped by colour [(bgr, i, j)], then
    keypoints grouped by colour and size [(bgr, small, indices)], in first-appearance order."""
    skeleton = kset.get("skeleton") or []
    kcol = kset.get("keypoint_colors") or [(255, 128, 0)] * k
    scol = kset.get("skeleton_colors") or [(0, 255, 0)] * len(skeleton)
    face = (kset.get("parts") or {}).get("face")
    limbs: Dict[Color, List[Tuple[int, int]]] = {}
    for (i, j), col in zip(skeleton, scol):
        if i < k and j < k:
            limbs.setdefault(_bgr(col), []).append((i, j))
    dots: Dict[Tuple[Color, bool], List[int]] = {}
    for i in range(k):
        small = face is not None and face[0] <= i < face[1]
        dots.setdefault((_bgr(kcol[i % len(kcol)]), small), []).append(i)
    return ([(col, np.asarray([i for i, _ in e]), np.asarray([j for _, j in e])) for col, e in limbs.items()],
            [(col, small, np.asarray(idx)) for (col, small), idx in dots.items()])


@functools.lru_cache(maxsize=16)
def _recipe(k: int) -> Recipe:
    return _make_recipe(keypoint_set_for(k), k)


def draw_mmpose(image: np.ndarray, keypoints: ArrayLike, scores: ArrayLike,
                boxes: Optional[Union[np.ndarray, Sequence[Sequence[float]]]] = None,
                track_ids: Optional[Union[np.ndarray, Sequence[int]]] = None,
                keypoint_set: Optional[Dict[str, Any]] = None, threshold: float = 0.3,
                draw_boxes: bool = True) -> np.ndarray:
    """Draw poses on a copy of `image` (BGR uint8 (H, W, 3)) and return it.

    keypoints (N, K, 2) image pixels and scores (N, K); only keypoints with score > `threshold`
    (and limbs with both ends so) are drawn. boxes (N, 4) x1, y1, x2, y2 and track_ids (N,)
    label each person when `draw_boxes`. keypoint_set: colours and skeleton (None: the known
    set with K keypoints, see keypoint_sets).

    All persons' limbs of one colour in one OpenCV call, then all keypoints of one colour
    and size, then the boxes: a handful of calls per frame instead of one per limb and point.
    """
    canvas = np.ascontiguousarray(image).copy()
    keypoints = np.asarray(keypoints, np.float32)
    scores = np.asarray(scores, np.float32)
    if keypoints.ndim != 3 or len(keypoints) == 0:
        return canvas
    h, w = canvas.shape[:2]
    n, k = keypoints.shape[:2]
    limb_groups, dot_groups = _recipe(k) if keypoint_set is None else _make_recipe(keypoint_set, k)
    unit = max(1, int(round(max(h, w) / 640)))
    with np.errstate(invalid="ignore"):
        ok = (scores > threshold) & _in_canvas(keypoints, w, h)       # (N, K)
    px = _pixels(keypoints)
    for col, i_idx, j_idx in limb_groups:
        both = ok[:, i_idx] & ok[:, j_idx]
        _segments(canvas, px[:, i_idx][both], px[:, j_idx][both], col, 2 * unit, cv2.LINE_AA)
    for col, small, idx in dot_groups:
        _dots(canvas, px[:, idx][ok[:, idx]], unit if small else 2 * unit, col, cv2.LINE_AA)
    if draw_boxes and boxes is not None:
        for p in range(min(n, len(boxes))):
            b = np.asarray(boxes[p], np.float32)
            if np.isfinite(b).all():
                b = np.clip(b, [-w, -h, -w, -h], [2 * w, 2 * h, 2 * w, 2 * h])
                cv2.rectangle(canvas, _pt(b[:2]), _pt(b[2:]), (0, 200, 255), unit)
                if track_ids is not None:
                    cv2.putText(canvas, f"id {int(track_ids[p])}", (_pt(b[:2])[0], _pt(b[:2])[1] - 4),
                                cv2.FONT_HERSHEY_SIMPLEX, 0.5 * unit, (0, 200, 255), unit, cv2.LINE_AA)
    return canvas


def openpose_body18(keypoints: ArrayLike, scores: ArrayLike) -> Tuple[np.ndarray, np.ndarray]:
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


_HAND_LIMB_COLORS = [tuple(int(v * 255) for v in colorsys.hsv_to_rgb(e / len(HAND_LIMBS), 1.0, 1.0))[::-1]
                     for e in range(len(HAND_LIMBS))]


def draw_openpose(shape: Sequence[int], keypoints: ArrayLike, scores: ArrayLike,
                  threshold: float = 0.3) -> np.ndarray:
    """OpenPose-style rendering on a black canvas of `shape` (h, w[, c]); returns BGR uint8 (h, w, 3).

    keypoints (N, K, 2) image pixels and scores (N, K) in COCO order (K >= 17; hands and face
    are drawn when K >= 133, COCO-WholeBody); points with score <= `threshold` are left out.

    Limbs are filled ellipses (one call each: OpenCV fills one convex polygon per call);
    keypoints, hand bones and face dots are drawn per colour for all persons at once."""
    h, w = int(shape[0]), int(shape[1])
    canvas = np.zeros((h, w, 3), np.uint8)
    keypoints = np.asarray(keypoints, np.float32)
    scores = np.asarray(scores, np.float32)
    if keypoints.ndim != 3 or len(keypoints) == 0 or keypoints.shape[1] < 17:
        return canvas
    body, bsc = openpose_body18(keypoints, scores)
    with np.errstate(invalid="ignore"):
        ok = (bsc > threshold) & _in_canvas(body, w, h)                     # (N, 18)
    stick = 4
    limb_a = np.asarray([a for a, _ in OPENPOSE_LIMBS])
    limb_b = np.asarray([b for _, b in OPENPOSE_LIMBS])
    draw = ok[:, limb_a] & ok[:, limb_b]
    pa, pb = body[:, limb_a], body[:, limb_b]
    centres = _pixels((pa + pb) / 2)
    lengths = np.hypot(*(pa - pb).transpose(2, 0, 1))
    angles = np.degrees(np.arctan2(pa[..., 1] - pb[..., 1], pa[..., 0] - pb[..., 0]))
    body_px = _pixels(body)
    limb_colors = [tuple(int(c * 0.6) for c in OPENPOSE_COLORS[li]) for li in range(len(OPENPOSE_LIMBS))]
    for n in range(len(body)):  # person by person: a person's limbs cover the ones of the persons before
        for li in np.flatnonzero(draw[n]).tolist():
            poly = cv2.ellipse2Poly((int(centres[n, li, 0]), int(centres[n, li, 1])),
                                    (int(lengths[n, li] / 2), stick), int(angles[n, li]), 0, 360, 1)
            # np.asarray: the stub types ellipse2Poly's result as a list of points; it is an (M, 2) int32
            # array already, so this is no copy.
            cv2.fillConvexPoly(canvas, np.asarray(poly), limb_colors[li])
        for i in np.flatnonzero(ok[n]).tolist():
            cv2.circle(canvas, (int(body_px[n, i, 0]), int(body_px[n, i, 1])), 4, OPENPOSE_COLORS[i], -1)
    if keypoints.shape[1] >= 133:
        hands = np.concatenate([keypoints[:, a:b] for a, b in WHOLEBODY_HANDS])      # (2N, 21, 2)
        hand_sc = np.concatenate([scores[:, a:b] for a, b in WHOLEBODY_HANDS])
        with np.errstate(invalid="ignore"):
            hand_ok = (hand_sc > threshold) & _in_canvas(hands, w, h)
        hand_px = _pixels(hands)
        for e, (a, b) in enumerate(HAND_LIMBS):
            both = hand_ok[:, a] & hand_ok[:, b]
            _segments(canvas, hand_px[both, a], hand_px[both, b], _HAND_LIMB_COLORS[e], 2, cv2.LINE_8)
        _dots(canvas, hand_px[hand_ok], 4, (255, 0, 0), cv2.LINE_8)
        face = keypoints[:, WHOLEBODY_FACE[0]:WHOLEBODY_FACE[1]]
        with np.errstate(invalid="ignore"):
            face_ok = (scores[:, WHOLEBODY_FACE[0]:WHOLEBODY_FACE[1]] > threshold) & _in_canvas(face, w, h)
        _dots(canvas, _pixels(face)[face_ok], 3, (255, 255, 255), cv2.LINE_8)
    return canvas


def draw_fps(image: np.ndarray, fps: float) -> np.ndarray:
    cv2.putText(image, f"{fps:.1f} FPS", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(image, f"{fps:.1f} FPS", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    return image
