import numpy as np

from edgepose.runtime.pose_nms import oks_matrix, pose_nms
from edgepose.keypoint_sets import get_keypoint_set

SIGMAS = get_keypoint_set("coco17")["sigmas"]


def _person(rng, x0, y0):
    return rng.uniform([x0, y0], [x0 + 60, y0 + 160], (17, 2)).astype(np.float32)


def test_oks_identical_is_one_and_far_is_zero():
    rng = np.random.default_rng(0)
    a = _person(rng, 0, 0)
    sc = np.ones((1, 17), np.float32)
    box = np.array([[0, 0, 60, 160]], np.float32)
    assert abs(oks_matrix(a[None], sc, a[None], sc, box, SIGMAS)[0, 0] - 1) < 1e-6
    assert oks_matrix(a[None], sc, (a + 500)[None], sc, box, SIGMAS)[0, 0] < 1e-6
    # COCO formula on one keypoint: d = 2 px, area 9600, sigma 0.026 -> exp(-4 / (2*9600*(0.052)^2))
    b = a.copy()
    b[:, 0] += 2
    expect = np.mean(np.exp(-4 / (2 * 9600 * (2 * np.array(SIGMAS)) ** 2)))
    assert abs(oks_matrix(a[None], sc, b[None], sc, box, SIGMAS)[0, 0] - expect) < 1e-5


def test_oks_ignores_low_score_keypoints():
    rng = np.random.default_rng(1)
    a = _person(rng, 0, 0)
    b = a.copy()
    b[:5] += 300                                # five keypoints disagree wildly...
    sa = np.ones((1, 17), np.float32)
    sb = np.ones((1, 17), np.float32)
    sb[0, :5] = 0.01                            # ...but are not confident
    assert oks_matrix(a[None], sa, b[None], sb, np.array([[0, 0, 60, 160]]), SIGMAS)[0, 0] > 0.999
    sb[:] = 0.0
    assert oks_matrix(a[None], sa, b[None], sb, None, SIGMAS)[0, 0] == 0.0


def test_duplicate_skeleton_on_one_person_is_removed():
    rng = np.random.default_rng(2)
    p1 = _person(rng, 0, 0)
    p2 = _person(rng, 300, 0)
    dup = p1 + rng.normal(0, 1.5, p1.shape).astype(np.float32)   # same person from a second box
    kps = np.stack([dup, p1, p2])
    scores = np.stack([np.full(17, 0.6), np.full(17, 0.9), np.full(17, 0.8)]).astype(np.float32)
    boxes = np.array([[-10, -10, 70, 175], [0, 0, 60, 160], [300, 0, 360, 160]], np.float32)
    keep = pose_nms(kps, scores, boxes, SIGMAS, oks_threshold=0.5)
    assert sorted(keep.tolist()) == [1, 2]      # the more confident of the pair survives
    assert keep[0] == 1


def test_close_but_different_people_are_both_kept():
    rng = np.random.default_rng(3)
    p1 = _person(rng, 0, 0)
    p2 = _person(rng, 30, 10)                   # overlapping, different poses
    kps = np.stack([p1, p2])
    scores = np.full((2, 17), 0.9, np.float32)
    keep = pose_nms(kps, scores, None, SIGMAS, oks_threshold=0.5)
    assert sorted(keep.tolist()) == [0, 1]


def test_empty_input():
    assert pose_nms(np.zeros((0, 17, 2)), np.zeros((0, 17))).size == 0
