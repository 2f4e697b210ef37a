import numpy as np

from edgepose.runtime.draw import (COCO_FOR_OPENPOSE, draw_mmpose, draw_openpose, keypoint_set_for,
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
