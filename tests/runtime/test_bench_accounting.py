"""The bench compares like with like: the same stages for both engines, plots that add up to
the frame, best settings of each, the loaded run, and no hidden data paths."""
import time

import pytest

from edgepose.cli import main as cli
from edgepose.runtime.bench.ort_baseline import baseline_row
from edgepose.runtime.bench.pipeline import INFER_STAGES, NCNN_STAGES, STAGES, pipeline_row
from edgepose.runtime.bench.report import frame_parts
from edgepose.runtime.bench.run import best_pairs
from edgepose.runtime.bench.timing import Slice

# One edgepose frame in seconds: decode 2 ms, detect 10 (of which ncnn 8), crop 1, pose 40
# (all ncnn), decode keypoints 2, tracking 3, drawing 4, 62 ms in all.
OURS = {"decode": 0.002, "detect": 0.010, "detect_ncnn": 0.008, "crop": 0.001, "pose": 0.040,
        "pose_ncnn": 0.040, "decode_keypoints": 0.002, "track_smooth": 0.003, "draw": 0.004, "total": 0.062}
THEIRS = {"decode": 0.002, "detect": 0.012, "pose": 0.050, "total": 0.064}


def _slices(frame, n=3):
    return [Slice(frames=[dict(frame) for _ in range(4)], persons=[1] * 4) for _ in range(n)]


def test_ratio_stages_are_detection_and_pose_for_both_engines():
    ours, theirs = pipeline_row(_slices(OURS)), baseline_row(_slices(THEIRS))
    assert INFER_STAGES == ["detect", "crop", "pose", "decode_keypoints"]
    # decode, tracking and drawing are timed but not in the compared time
    assert ours["stages_ms"]["infer"]["mean"] == pytest.approx(53.0)
    assert theirs["stages_ms"]["infer"]["mean"] == pytest.approx(62.0)   # detect + pose, no decode
    assert ours["infer_fps"] == pytest.approx(1000 / 53.0) and theirs["infer_fps"] == pytest.approx(1000 / 62.0)
    assert ours["fps"] == pytest.approx(1000 / 62.0)                    # end-to-end FPS still reported


def test_stage_bars_add_up_to_the_frame_without_nested_stages():
    row = pipeline_row(_slices(OURS))
    parts = frame_parts(row, STAGES + NCNN_STAGES + ["infer"])
    assert not set(parts) & {"pose_ncnn", "detect_ncnn", "infer", "total"}
    assert sum(parts.values()) == pytest.approx(row["stages_ms"]["total"]["mean"])
    assert parts["other"] == pytest.approx(0.0, abs=1e-9)
    slow = dict(OURS, total=0.070)           # 8 ms the stages do not name
    parts = frame_parts(pipeline_row(_slices(slow)), STAGES + NCNN_STAGES)
    assert parts["other"] == pytest.approx(8.0) and sum(parts.values()) == pytest.approx(70.0)


def test_best_pair_takes_each_engines_fastest_setting():
    rows = [{"precision": "fp32", "scenario": "15p:a", "setting": s, "infer_fps": f, "infer_p50_ms": 1000 / f}
            for s, f in (("default", 10.0), ("x2", 8.0), ("x1 c2", 11.0))]
    base = [{"threads": t, "scenario": "15p:a", "infer_fps": f, "stages_ms": {"infer": {"p50": 1000 / f}}}
            for t, f in ((1, 5.0), (2, 6.0))]
    (best,) = best_pairs(rows, base)
    assert best["setting"] == "x1 c2" and best["baseline_threads"] == 2
    assert best["ratio"] == pytest.approx(11.0 / 6.0)


def test_bench_rows_per_setting_and_loaded_p99_for_the_default(rtmdet_dir, body_t_dir, shared, monkeypatch):
    import edgepose.runtime.bench.run as run_module

    made = []

    def fake_runner(det, pose, encoded, det_every=1, draw=True):
        made.append(pose.plan)

        def run(warmup=3, frames=None, seconds=5.0):
            return Slice(frames=[dict(OURS)] * 4, persons=[1] * 4)
        return run

    busy = []

    class FakeBusy:
        def __init__(self, n, seconds):
            busy.append((n, seconds))

        def __enter__(self):
            return []

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(run_module, "pipeline_runner", fake_runner)
    import edgepose.runtime.bench.load as load_module
    monkeypatch.setattr(load_module, "busy_processes", FakeBusy)
    images = [str(shared / "data/calib_mmpose_examples/human-pose.jpeg")]
    report = run_module.bench([str(rtmdet_dir)], [str(body_t_dir)], images, precisions=["fp32"], threads=[1],
                              targets=(1,), seconds=0.2, rounds=1, baseline=False, memory=False,
                              settings=[(None, None), (1, 2)], load=2, load_seconds=0.1, log=lambda _m: None)
    assert [r["setting"] for r in report["rows"]] == ["default", "x1 c2"]
    assert [p.pinned_concurrency for p in made[:2]] == [None, 2]
    default, pinned = report["rows"]
    assert busy and all(n == 2 for n, _ in busy)
    assert default["loaded_p99_ms"] == pytest.approx(62.0) and "loaded_p99_ms" not in pinned
    assert default["loaded_p99_over_quiet_p50"] == pytest.approx(1.0)
    assert report["schedule"]["text"].startswith("schedule:") and report["best"][0]["setting"] in ("default", "x1 c2")


def test_busy_processes_stop_by_themselves():
    from edgepose.runtime.bench.load import start_busy, stop

    procs = start_busy(2, 0.3)
    assert len(procs) == 2
    deadline = time.monotonic() + 20
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(p.poll() == 0 for p in procs)
    stop(procs)


def test_bench_needs_images_and_names_the_flag(rtmdet_dir, wholebody_t_dir, tmp_path, capsys):
    rc = cli(["bench", "--det", str(rtmdet_dir), "--pose", str(wholebody_t_dir), "--no-baseline",
              "-o", str(tmp_path / "r")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--images" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    rc = cli(["bench", "--det", str(rtmdet_dir), "--pose", str(wholebody_t_dir), "--images", str(empty),
              "-o", str(tmp_path / "r")])
    assert rc == 2 and "no image files" in capsys.readouterr().err
