import colorsys
from typing import Any, Dict, Optional

import cv2
import numpy as np

from edgepose.runtime.draw import (COCO_FOR_OPENPOSE, HAND_LIMBS, OPENPOSE_COLORS, OPENPOSE_LIMBS, WHOLEBODY_FACE,
                                   WHOLEBODY_HANDS, draw_mmpose, draw_openpose, keypoint_set_for,
                                   openpose_body18)
from edgepose.runtime.results_json import coco_results, openpose_frame


def _wholebody_person(cx=100.0, cy=120.0):
    rng = np.random.default_rng(0)
    kp = rng.uniform([cx - 40, cy - 90], [cx + 40, cy + 90], (133, 2)).astype(np.float32)
    return kp


def test_keypoint_set_lookup():
    assert len(keypoint_set_for(133)["names"]) == 133
    assert keypoint_set_for(133)["parts"]["face"] == [23, 91]
    assert len(keypoint_set_for(17)["skeleton"]) == 19
    assert keypoint_set_for(5)["skeleton"] == []            # unknown sizes still draw points


def test_mmpose_draws_only_confident_keypoints():
    img = np.zeros((240, 200, 3), np.uint8)
    kp = _wholebody_person()[None]
    low = np.zeros((1, 133), np.float32)
    out = draw_mmpose(img, kp, low, boxes=None)
    assert out.sum() == 0 and img.sum() == 0                # nothing drawn, input untouched
    high = np.ones((1, 133), np.float32)
    out = draw_mmpose(img, kp, high, boxes=np.array([[60, 30, 140, 210]]), track_ids=[3])
    assert out.sum() > 0 and img.sum() == 0
    # part colours: a face keypoint is drawn in the face colour of the official set (RGB -> BGR)
    col = keypoint_set_for(133)["keypoint_colors"][40]
    x, y = np.round(kp[0, 40]).astype(int)
    only_face = np.zeros((1, 133), np.float32)
    only_face[0, 40] = 1
    out = draw_mmpose(img, kp, only_face, draw_boxes=False)
    assert tuple(out[y, x]) == (col[2], col[1], col[0])


def test_far_away_and_nan_keypoints_do_not_crash():
    img = np.zeros((50, 50, 3), np.uint8)
    kp = np.full((1, 17, 2), 1e12, np.float32)
    kp[0, 0] = np.nan
    draw_mmpose(img, kp, np.ones((1, 17)), boxes=np.array([[-1e9, -1e9, 1e9, 1e9]]))
    draw_openpose(img.shape, kp, np.ones((1, 17)))


def test_openpose_body18_order_and_neck():
    kp = np.zeros((1, 17, 2), np.float32)
    kp[0, :, 0] = np.arange(17)
    kp[0, 5] = [10, 50]
    kp[0, 6] = [30, 70]
    sc = np.ones((1, 17), np.float32)
    sc[0, 6] = 0.2
    body, bsc = openpose_body18(kp, sc)
    np.testing.assert_allclose(body[0, 1], [20, 60])        # neck = mid-shoulders
    assert bsc[0, 1] == 0.2                                  # scored by the weaker shoulder
    assert body[0, 2, 0] == 30 and body[0, 5, 0] == 10       # RShoulder = COCO 6, LShoulder = COCO 5
    assert body[0, 14, 0] == 2 and body[0, 17, 0] == 3       # REye = COCO 2, LEar = COCO 3
    assert len(COCO_FOR_OPENPOSE) == 18


def test_openpose_render_is_on_black_with_hands_and_face():
    kp = _wholebody_person()[None]
    sc = np.ones((1, 133), np.float32)
    body_only = sc.copy()
    body_only[0, 23:] = 0
    a = draw_openpose((240, 200), kp, body_only)
    b = draw_openpose((240, 200), kp, sc)
    assert a.shape == (240, 200, 3) and a.any()
    assert (b != a).any()                                    # hands and face add pixels
    x, y = np.round(kp[0, 50]).astype(int)                   # a face point is white
    assert tuple(b[y, x]) == (255, 255, 255)


def test_json_formats():
    kp = _wholebody_person()[None]
    sc = np.full((1, 133), 0.9, np.float32)
    sc[0, 0] = 0.1
    res = coco_results(7, np.array([[1, 2, 11, 22]]), np.array([0.5]), kp, sc, track_ids=[4])
    assert res[0]["image_id"] == 7 and res[0]["category_id"] == 1 and res[0]["track_id"] == 4
    assert len(res[0]["keypoints"]) == 133 * 3 and res[0]["bbox"] == [1, 2, 10, 20]
    assert abs(res[0]["score"] - float(sc.mean()) * 0.5) < 0.01
    op = openpose_frame(kp, sc, 200, 240, track_ids=[4])
    p = op["people"][0]
    assert len(p["pose_keypoints_2d"]) == 54 and len(p["face_keypoints_2d"]) == 68 * 3
    assert len(p["hand_left_keypoints_2d"]) == 63 and len(p["hand_right_keypoints_2d"]) == 63
    assert p["pose_keypoints_2d"][:3] == [0.0, 0.0, 0.0]     # low-score nose written as undetected
    assert p["person_id"] == [4] and op["canvas_width"] == 200
    body17 = openpose_frame(kp[:, :17], sc[:, :17], 200, 240)
    assert body17["people"][0]["face_keypoints_2d"] == []


# -- the drawing as it was before it was vectorised (one OpenCV call per limb and point): the
#    reference the new drawing must reproduce. Kept here only, as the test's oracle.
def _pt(p):
    return (int(round(float(p[0]))), int(round(float(p[1]))))


def _bgr(rgb):
    return (int(rgb[2]), int(rgb[1]), int(rgb[0]))


def _finite_in(p, w, h, margin=0.5):
    return bool(np.isfinite(p).all()) and -margin * w <= p[0] <= (1 + margin) * w \
        and -margin * h <= p[1] <= (1 + margin) * h


def _old_draw_mmpose(image: np.ndarray, keypoints, scores, boxes=None, track_ids=None,
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




def _old_draw_openpose(shape, keypoints, scores, threshold: float = 0.3) -> np.ndarray:
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




def _crowd(n=15, seed=1, w=640, h=480):
    """n whole-body persons spread over the frame, some points low-score, a few off-canvas."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform([40, 60], [w - 40, h - 60], (n, 2))
    kp = (centres[:, None] + rng.normal(0, [25, 50], (n, 133, 2))).astype(np.float32)
    sc = rng.uniform(0, 1, (n, 133)).astype(np.float32)
    kp[0, 5] = [-1e6, 3]          # far away: skipped by both
    kp[1, 7] = np.nan
    boxes = np.concatenate([kp.min(axis=1), kp.max(axis=1)], axis=1)
    boxes[0] = [10, 10, 100, 200]
    return kp, sc, boxes


WHOLEBODY_GT = "data/coco_wholebody_val_gt/annotations/coco_wholebody_example_gt.json"


def _real_crowd(shared, image_id=1000):
    """The annotated whole-body poses of COCO val 1000 (12 persons): real limb layouts."""
    import json
    data = json.loads((shared / WHOLEBODY_GT).read_text())
    kp, sc, boxes = [], [], []
    for a in data["annotations"]:
        if a["image_id"] != image_id:
            continue
        flat = np.asarray(a["keypoints"] + a["foot_kpts"] + a["face_kpts"] + a["lefthand_kpts"]
                          + a["righthand_kpts"], np.float32).reshape(133, 3)
        kp.append(flat[:, :2])
        sc.append(np.where(flat[:, 2] > 0, 0.9, 0.0))
        x, y, w, h = a["bbox"]
        boxes.append([x, y, x + w, y + h])
    return np.stack(kp), np.stack(sc).astype(np.float32), np.asarray(boxes, np.float32)


def _isolated(n=6, w=900, h=300):
    """Persons far enough apart that no two drawings touch: pictures must be identical."""
    rng = np.random.default_rng(2)
    kp = np.empty((n, 133, 2), np.float32)
    for p in range(n):
        kp[p] = rng.uniform([p * 150 + 15, 20], [p * 150 + 130, h - 20], (133, 2))
    return kp, rng.uniform(0, 1, (n, 133)).astype(np.float32)


def test_mmpose_vectorised_draws_every_limb_and_point_with_the_old_pixels():
    """Each limb (with its two end points) and each keypoint alone: the same pixels as the old
    one-call-per-element drawing, for every colour and size of the whole-body set."""
    kp = _wholebody_person(300, 200)[None] * np.float32([1.7, 1.0])
    img = np.random.default_rng(3).integers(0, 255, (400, 600, 3), np.uint8)
    kset = keypoint_set_for(133)
    for i, j in kset["skeleton"]:
        sc = np.zeros((1, 133), np.float32)
        sc[0, [i, j]] = 0.9
        new, old = draw_mmpose(img, kp, sc), _old_draw_mmpose(img, kp, sc)
        assert (new != img).any() and np.array_equal(new, old), (i, j)
    for i in range(133):
        sc = np.zeros((1, 133), np.float32)
        sc[0, i] = 0.9
        assert np.array_equal(draw_mmpose(img, kp, sc), _old_draw_mmpose(img, kp, sc)), i


def test_mmpose_crowd_differs_from_the_old_drawing_only_where_drawings_overlap(shared):
    kp, sc, boxes = _real_crowd(shared)
    img = cv2.imread(str(shared / "data/coco_wholebody_val_gt/images/000000001000.jpg"))
    ids = list(range(len(kp)))
    new = draw_mmpose(img, kp, sc, boxes=boxes, track_ids=ids)
    old = _old_draw_mmpose(img, kp, sc, boxes=boxes, track_ids=ids)
    drawn = (old != img).any(axis=2)
    differ = (new != old).any(axis=2)
    assert len(kp) == 12 and drawn.sum() > 10000
    # The same limbs and points are drawn; only the stacking order where two of them overlap
    # changed (limbs and points are grouped by colour): every differing pixel is covered by
    # at least two elements, counted by drawing each element alone.
    assert differ.sum() < 0.15 * drawn.sum(), (differ.sum(), drawn.sum())
    assert (_coverage(kp, sc, img.shape, boxes)[differ] >= 2).all()


def _coverage(kp, sc, shape, boxes, threshold=0.3):
    """How many limbs/points (old rules: same thickness, radius, AA) cover each pixel."""
    h, w = shape[:2]
    unit = max(1, int(round(max(h, w) / 640)))
    kset = keypoint_set_for(kp.shape[1])
    count = np.zeros((h, w), np.int32)
    for n in range(len(kp)):
        ok = sc[n] > threshold
        for i, j in kset["skeleton"]:
            if ok[i] and ok[j]:
                mask = np.zeros((h, w), np.uint8)
                cv2.line(mask, _pt(kp[n, i]), _pt(kp[n, j]), 255, 2 * unit, cv2.LINE_AA)
                count += mask > 0
        for i in np.flatnonzero(ok):
            mask = np.zeros((h, w), np.uint8)
            small = kset["parts"]["face"][0] <= i < kset["parts"]["face"][1]
            cv2.circle(mask, _pt(kp[n, i]), unit if small else 2 * unit, 255, -1, cv2.LINE_AA)
            count += mask > 0
        mask = np.zeros((h, w), np.uint8)
        cv2.rectangle(mask, _pt(boxes[n, :2]), _pt(boxes[n, 2:]), 255, unit)
        cv2.putText(mask, f"id {n}", (_pt(boxes[n, :2])[0], _pt(boxes[n, :2])[1] - 4),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5 * unit, 255, unit, cv2.LINE_AA)
        count += mask > 0
    return count


def test_openpose_vectorised_equals_the_old_drawing(shared):
    kp = _wholebody_person(300, 200)[None] * np.float32([1.7, 1.0])
    for part in ((0, 23), (91, 112), (112, 133), (23, 91)):   # body, each hand, face: each alone
        sc = np.zeros((1, 133), np.float32)
        sc[0, part[0]:part[1]] = 0.9
        new = draw_openpose((400, 600), kp, sc)
        assert new.any() and np.array_equal(new, _old_draw_openpose((400, 600), kp, sc)), part
    kp, sc, _ = _real_crowd(shared)
    new, old = draw_openpose((480, 640), kp, sc), _old_draw_openpose((480, 640), kp, sc)
    drawn = old.any(axis=2)
    assert drawn.sum() > 10000 and ((new != old).any(axis=2)).sum() < 0.05 * drawn.sum()


def test_drawing_fifteen_wholebody_persons_is_a_few_calls():
    """The per-frame work is a handful of OpenCV calls, not one per element (the speed target,
    <= 3 ms, is measured by benchmarks/issue13_table.py)."""
    kp, sc, boxes = _crowd()
    calls = {"n": 0}
    real = cv2.polylines

    def counting(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    import edgepose.runtime.draw as draw
    draw.cv2.polylines = counting
    try:
        draw_mmpose(np.zeros((480, 640, 3), np.uint8), kp, sc, boxes=None)
    finally:
        draw.cv2.polylines = real
    kset = keypoint_set_for(133)
    limb_colours = len({tuple(c) for c in kset["skeleton_colors"]})
    point_kinds = len({tuple(c) for c in kset["keypoint_colors"]}) + 1   # the face's small points
    assert calls["n"] <= limb_colours + point_kinds
