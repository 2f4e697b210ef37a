import numpy as np

from edgepose.runtime.tracking import IdSwitchCounter, Tracker, greedy_match, iou_matrix


def _box(cx, cy, w=40, h=100):
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def test_iou_matrix_known_values():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]], np.float32)
    np.testing.assert_allclose(iou_matrix(a, b)[0], [1.0, 50 / 150, 0.0, 0.0], atol=1e-6)
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 4)


def test_greedy_match_takes_best_pairs_first():
    sim = np.array([[0.9, 0.8], [0.85, 0.1]])
    # greedy: (0,0) first, then row 1 can only take col 1, below threshold
    assert greedy_match(sim, 0.3) == [(0, 0)]
    assert greedy_match(sim, 0.05) == [(0, 0), (1, 1)]


def test_two_people_crossing_keep_their_ids():
    # A walks right, B walks left, at different heights so boxes overlap but do not coincide
    tr = Tracker(use_oks=False)
    ids_a, ids_b = [], []
    for f in range(40):
        a = _box(100 + 5 * f, 200)
        b = _box(300 - 5 * f, 230)
        order = [a, b] if f % 2 else [b, a]   # detector order changes every frame
        ids = tr.update(np.array(order, np.float32))
        ia, ib = (ids[0], ids[1]) if f % 2 else (ids[1], ids[0])
        ids_a.append(ia)
        ids_b.append(ib)
    assert len(set(ids_a)) == 1 and len(set(ids_b)) == 1 and ids_a[0] != ids_b[0]
    assert tr.total_tracks == 2


def test_track_survives_short_gap_and_ends_after_max_age():
    tr = Tracker(max_age=3, use_oks=False)
    first = tr.update(np.array([_box(100, 100)], np.float32))[0]
    for _ in range(3):
        tr.update(np.zeros((0, 4), np.float32))
    assert tr.update(np.array([_box(102, 100)], np.float32))[0] == first   # back after 3 missed frames
    for _ in range(4):
        tr.update(np.zeros((0, 4), np.float32))
    new = tr.update(np.array([_box(102, 100)], np.float32))[0]
    assert new != first and tr.total_tracks == 2                           # ids are never reused


def test_oks_keeps_id_when_box_changes_shape():
    # arm raised: box grows upward a lot (IoU low), keypoints of the body stay put
    k = 17
    rng = np.random.default_rng(0)
    kp = rng.uniform([80, 100], [120, 300], (k, 2)).astype(np.float32)
    sc = np.ones(k, np.float32)
    tr = Tracker(min_similarity=0.5)
    i0 = tr.update(np.array([[80, 100, 120, 300]], np.float32), kp[None], sc[None])[0]
    kp2 = kp.copy()
    kp2[9] = [100, -200]                      # one wrist way up
    box2 = np.array([[60, -220, 200, 300]], np.float32)
    assert iou_matrix(np.array([[80, 100, 120, 300]]), box2)[0, 0] < 0.5
    assert tr.update(box2, kp2[None], sc[None])[0] == i0


def test_id_switch_counter_rule():
    c = IdSwitchCounter()
    c.update([_box(100, 100), _box(300, 100)], [0, 1])
    assert c.update([_box(101, 100), _box(301, 100)], [0, 1]) == 0
    assert c.update([_box(102, 100), _box(302, 100)], [1, 0]) == 2        # swap: both changed
    assert c.update([_box(103, 100), _box(303, 100), _box(600, 100)], [1, 0, 7]) == 0  # newcomer, no overlap
    assert c.update([_box(104, 100)], [5]) == 1                            # new id born on a tracked person
    assert c.switches == 3 and c.num_tracks == 4


# -- PoseTracker on a synthetic world with known answers ---------------------------------------

from edgepose.runtime.pose_tracker import PoseTracker  # noqa: E402

K = 17
TEMPLATE = np.random.default_rng(5).uniform([-20, -50], [20, 50], (K, 2)).astype(np.float32)


class World:
    """People walking in a 640x480 frame; a fake detector and pose model that see them."""

    def __init__(self, tracks, duplicate=False, noise=0.0):
        self.tracks = tracks          # list of functions frame -> centre (x, y) or None (not visible)
        self.frame = 0
        self.duplicate = duplicate
        self.noise = noise
        self.det_calls = []
        self.rng = np.random.default_rng(0)
        world = self

        class Det:
            def __call__(self, image):
                world.det_calls.append(world.frame)
                boxes = []
                for c in world.centres():
                    boxes.append([c[0] - 25, c[1] - 55, c[0] + 25, c[1] + 55])
                    if world.duplicate:
                        boxes.append([c[0] - 30, c[1] - 62, c[0] + 28, c[1] + 60])
                return np.array(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), 0.9, np.float32)

        class Pose:
            meta = None

            def __call__(self, image, boxes):
                kps, scs = [], []
                for b in boxes:
                    mid = (b[:2] + b[2:]) / 2
                    near = [c for c in world.centres() if np.abs(np.asarray(c) - mid).max() < 40]
                    if near:
                        kp = TEMPLATE + np.asarray(near[0], np.float32)
                        kp = kp + world.rng.normal(0, world.noise, kp.shape).astype(np.float32)
                        kps.append(kp)
                        scs.append(np.full(K, 0.9, np.float32))
                    else:
                        kps.append(np.repeat(mid[None], K, 0))
                        scs.append(np.full(K, 0.02, np.float32))
                return np.array(kps, np.float32).reshape(-1, K, 2), np.array(scs, np.float32).reshape(-1, K)

        self.detector, self.pose_estimator = Det(), Pose()

    def centres(self):
        return [c for c in (f(self.frame) for f in self.tracks) if c is not None]

    def image(self):
        return np.zeros((480, 640, 3), np.uint8)


def _run_world(world, tracker, frames):
    out = []
    for f in range(frames):
        world.frame = f
        out.append(tracker(world.image()))
    return out


def test_pose_tracker_detects_every_n_frames_and_keeps_ids():
    world = World([lambda f: (100 + 4 * f, 200), lambda f: (500 - 4 * f, 260)])
    res = _run_world(world, PoseTracker(world, det_every=4, smooth=False), 20)
    assert world.det_calls == [0, 4, 8, 12, 16]
    assert [r.detected for r in res[:5]] == [True, False, False, False, True]
    # person A (moving right) keeps one id through detection and carried frames, B another
    ids_a = {int(r.track_ids[np.argmin(r.keypoints[:, 0, 0])]) if f < 10 else None for f, r in enumerate(res)}
    ids_a.discard(None)
    assert all(len(r) == 2 for r in res)
    assert len({tuple(sorted(r.track_ids.tolist())) for r in res}) == 1
    assert len(ids_a) == 1


def test_pose_tracker_carried_boxes_follow_the_person():
    world = World([lambda f: (100 + 6 * f, 200)])
    res = _run_world(world, PoseTracker(world, det_every=10, smooth=False), 10)
    assert world.det_calls == [0]
    offset = (TEMPLATE.min(0) + TEMPLATE.max(0)) / 2          # centre of the template's tight box
    for f, r in enumerate(res[1:], start=1):
        centre = (r.boxes[0, :2] + r.boxes[0, 2:]) / 2
        # the box comes from the previous frame's pose: centred on it, size kept
        np.testing.assert_allclose(centre, offset + [100 + 6 * (f - 1), 200], atol=1e-3)
        assert r.boxes[0, 2] - r.boxes[0, 0] <= 50 * 1.1 ** f + 1e-3
        np.testing.assert_allclose(r.keypoints[0], TEMPLATE + [100 + 6 * f, 200], atol=1e-3)


def test_pose_tracker_redetects_when_person_is_lost():
    # visible on frames 0-4, gone 5-7, back from 8: the detector runs as soon as the pose is lost
    world = World([lambda f: (300, 240) if f < 5 or f >= 8 else None])
    res = _run_world(world, PoseTracker(world, det_every=100, smooth=False), 12)
    assert world.det_calls[0] == 0 and 6 in world.det_calls and 8 in world.det_calls
    assert len(res[9]) == 1
    assert res[9].track_ids[0] == res[0].track_ids[0]          # short absence: same id


def test_pose_tracker_one_skeleton_per_person():
    world = World([lambda f: (200, 240), lambda f: (420, 240)], duplicate=True)
    res = _run_world(world, PoseTracker(world, det_every=1, smooth=False), 3)
    assert [len(r) for r in res] == [2, 2, 2]


def test_pose_tracker_smoothing_reduces_jitter():
    truth = TEMPLATE + np.array([320, 240], np.float32)
    errs = {}
    for smooth in (False, True):
        world = World([lambda f: (320, 240)], noise=2.0)
        res = _run_world(world, PoseTracker(world, det_every=1, smooth=smooth), 60)
        errs[smooth] = np.mean([np.abs(r.keypoints[0] - truth).mean() for r in res[20:]])
    assert errs[True] < errs[False] / 1.5


def test_pose_tracker_empty_frames():
    world = World([])
    res = _run_world(world, PoseTracker(world, det_every=3), 4)
    assert all(len(r) == 0 and r.keypoints.shape == (0, 0, 2) or r.keypoints.shape[0] == 0 for r in res)
    assert world.det_calls == [0, 1, 2, 3]                     # nobody to follow: detect every frame
