"""The schedule: plan selection from (faked) machines, and keypoints/track ids unchanged by it."""
import cv2
import numpy as np
import pytest

from edgepose.errors import BadArgumentError
from edgepose.runtime.schedule import core_clusters, make_plan, with_overrides

CROWD = "data/coco_wholebody_val_gt/images/000000001000.jpg"   # 15 persons detected
STREET = "data/video_openpose_street_crowd/video.avi"
QUIET = {}  # an environment without OMP_WAIT_POLICY


def test_two_equal_cores_crowd_one_thread_per_person_lone_person_all_cores():
    plan = make_plan(cpus=[0, 1], freqs=[2600000, 2600000], environ=QUIET)
    assert (plan.cores, plan.cpus, plan.det_threads) == ("all", 2, 2)
    assert plan.pose_split(15) == (1, 2) and plan.pose_split(2) == (1, 2)
    assert plan.pose_split(1) == (2, 1) and plan.pose_split(0) == (2, 1)
    assert plan.overlap and plan.wait_policy == "libgomp default spin" and plan.blocktime_ms == 0


def test_big_little_phone_runs_on_big_cores_by_default():
    # 4 little (1.8 GHz), 3 big (2.4 GHz), 1 prime (3.0 GHz): a Snapdragon 8-core layout
    freqs = [1800000] * 4 + [2400000] * 3 + [3000000]
    assert core_clusters(list(range(8)), freqs) == ([4, 5, 6, 7], [0, 1, 2, 3])
    plan = make_plan(cpus=range(8), freqs=freqs, environ=QUIET)
    assert plan.cores == "big" and plan.cpu_ids == (4, 5, 6, 7) and plan.cpus == 4
    assert plan.det_threads == 4 and plan.pose_split(1) == (4, 1)
    assert plan.pose_split(3) == (1, 3) and plan.pose_split(2) == (2, 2) and plan.pose_split(9) == (1, 4)
    little = make_plan("little", cpus=range(8), freqs=freqs, environ=QUIET)
    assert little.cpu_ids == (0, 1, 2, 3) and little.pose_split(8) == (1, 4)
    everything = make_plan("all", cpus=range(8), freqs=freqs, environ=QUIET)
    assert everything.cpus == 8 and everything.pose_split(20) == (1, 8)


def test_single_cluster_has_no_little_cores_and_unknown_frequencies_mean_all():
    assert core_clusters([0, 1, 2, 3], [None] * 4) == ([0, 1, 2, 3], [])
    plan = make_plan("little", cpus=[0, 1, 2, 3], freqs=[None] * 4, environ=QUIET)
    assert plan.cores == "all" and plan.cpus == 4
    assert make_plan(cpus=[0], freqs=[None], environ=QUIET).overlap is False  # one core: nothing to overlap


def test_threads_and_concurrency_override_the_plan():
    base = make_plan(cpus=[0, 1], freqs=[None, None], environ=QUIET)
    assert with_overrides(base) is base
    seq = with_overrides(base, threads=2)
    assert seq.pose_split(15) == (2, 1) and seq.det_threads == 2
    pooled = with_overrides(base, threads=1, concurrency=2)
    assert pooled.pose_split(15) == (1, 2) and pooled.det_threads == 1
    only_conc = with_overrides(base, concurrency=3)
    assert only_conc.pose_split(15) == (1, 3)
    assert "given" in pooled.describe() and "2 in flight x 1" in base.describe()


def test_user_wait_policy_is_kept_and_bad_arguments_refused():
    assert make_plan(cpus=[0, 1], environ={"OMP_WAIT_POLICY": "ACTIVE"}).wait_policy == "OMP_WAIT_POLICY=active"
    assert make_plan(cpus=[0, 1], environ={"GOMP_SPINCOUNT": "10000"}).wait_policy == "spin 10000 rounds, then sleep"
    for kwargs in ({"cores": "medium"}, {"threads": 0}, {"concurrency": -1}, {"threads": 1.5},
                   {"concurrency": True}):
        with pytest.raises(BadArgumentError):
            make_plan(cpus=[0, 1], environ=QUIET, **kwargs)


def test_ncnn_starts_with_a_short_spin(rtmdet_dir, tmp_path):
    """In a fresh process: `import edgepose` sets the short spin before ncnn (and its libgomp) loads;
    a user's own choice is kept; ncnn imported first is reported, not hidden."""
    import os
    import subprocess
    import sys

    probe = ("import os, sys\n"
             "from edgepose.runtime.detector import Detector\n"
             "assert 'ncnn' not in sys.modules\n"
             "d = Detector(sys.argv[1])\n"
             "print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", probe, str(rtmdet_dir)], env=env, capture_output=True, text=True,
                         cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["10000", "None"]
    out = subprocess.run([sys.executable, "-c", probe, str(rtmdet_dir)], env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
                         capture_output=True, text=True, cwd=str(tmp_path))
    assert out.stdout.split()[-2:] == ["None", "ACTIVE"]
    late = ("import ncnn\nfrom edgepose.runtime.schedule import prepare_wait_policy\nprint(prepare_wait_policy())")
    out = subprocess.run([sys.executable, "-c", late], env=env, capture_output=True, text=True, cwd=str(tmp_path))
    assert "imported before edgepose" in out.stdout, out.stdout + out.stderr


def test_default_wholebody_keypoints_bit_for_bit_sequential(shared, rtmdet_dir, wholebody_t_dir):
    from edgepose.runtime.pose import PoseEstimator
    from edgepose.runtime.solutions import Wholebody

    image = cv2.imread(str(shared / CROWD))
    wb = Wholebody(det=str(rtmdet_dir), pose=str(wholebody_t_dir), precision="fp32")
    assert wb.plan.pose_split(15)[1] >= 1
    poses = wb.infer(image)
    assert len(poses) == 15
    sequential = PoseEstimator(wholebody_t_dir, precision="fp32", threads=1, concurrency=1)
    kp, sc = sequential(image, poses.boxes)
    assert np.array_equal(kp, poses.keypoints) and np.array_equal(sc, poses.scores)
    # a lone person runs on the all-core net: still the same bits as one thread
    kp1, sc1 = wb.pose_estimator(image, poses.boxes[:1])
    assert np.array_equal(kp1, kp[:1]) and np.array_equal(sc1, sc[:1])
    # forced splits agree too (2 in flight on 1-thread nets, 2 threads one by one)
    for threads, conc in ((1, 2), (2, 1)):
        other = PoseEstimator(wholebody_t_dir, precision="fp32", threads=threads, concurrency=conc)
        assert np.array_equal(other(image, poses.boxes)[0], kp)
        other.close()
    wb.pose_estimator.close()
    sequential.close()


def _street_frames(shared, n):
    cap = cv2.VideoCapture(str(shared / STREET))
    frames = []
    while len(frames) < n:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def test_pipelined_stream_same_poses_and_track_ids_as_frame_by_frame(shared, rtmdet_dir, body_t_dir):
    """Video: the next frame's detector overlaps this frame's poses; results must not change."""
    from edgepose.runtime.pose_tracker import PoseTracker
    from edgepose.runtime.solutions import Body

    frames = _street_frames(shared, 24)
    assert len(frames) == 24
    body = Body(det=str(rtmdet_dir), pose=str(body_t_dir), precision="fp32")
    assert body.plan.overlap or body.plan.cpus == 1
    runs = {}
    for det_every in (1, 5):
        one = PoseTracker(body, det_every=det_every)
        stepwise = [one(f) for f in frames]
        two = PoseTracker(body, det_every=det_every)
        streamed = list(two.stream(frames))
        assert len(streamed) == len(stepwise)
        for a, b in zip(stepwise, streamed):
            assert np.array_equal(a.track_ids, b.track_ids) and a.detected == b.detected
            assert np.array_equal(a.keypoints, b.keypoints) and np.array_equal(a.scores, b.scores)
        runs[det_every] = stepwise
    assert sum(len(p) for p in runs[5]) > 24        # people were found and tracked
    assert any(not p.detected for p in runs[5])      # carried boxes were exercised
    # the stream leaves the detector as loaded (ncnn layers keep their load-time thread count)
    assert body.detector.model.net.opt.num_threads == body.plan.det_threads
    body.pose_estimator.close()


def test_street_video_track_ids_unchanged_by_the_schedule(shared, rtmdet_dir, wholebody_t_dir):
    """The default schedule (persons in flight, pipelined detector) vs one thread, one person
    at a time, frame by frame: the same track ids on the street crowd."""
    from edgepose.runtime.pose_tracker import PoseTracker
    from edgepose.runtime.solutions import Wholebody

    frames = _street_frames(shared, 12)
    default = Wholebody(det=str(rtmdet_dir), pose=str(wholebody_t_dir), precision="fp32")
    sequential = Wholebody(det=str(rtmdet_dir), pose=str(wholebody_t_dir), precision="fp32", threads=1,
                           concurrency=1)
    streamed = list(PoseTracker(default, det_every=5).stream(frames))
    ref_tracker = PoseTracker(sequential, det_every=5)
    stepwise = [ref_tracker(f) for f in frames]
    assert sum(len(p) for p in stepwise) >= 12
    for a, b in zip(stepwise, streamed):
        assert np.array_equal(a.track_ids, b.track_ids)
        assert np.array_equal(a.keypoints, b.keypoints)
    default.pose_estimator.close()
    sequential.pose_estimator.close()
