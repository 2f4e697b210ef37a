"""`edgepose bench`: GMAC counting, the ORT baseline doing the same work, and the report."""
import json
import statistics

import cv2
import numpy as np
import pytest

from edgepose.runtime.bench.gmac import gmac
from edgepose.runtime.bench.ort_baseline import OrtDetector, OrtPose, _session
from edgepose.runtime.bench.timing import Slice, fps_summary, split_budget
from edgepose.cli import main as cli
from edgepose.runtime.detector import Detector
from edgepose.model_meta import ModelMeta, find_model
from edgepose.runtime.pose import PoseEstimator

# The ONNX Runtime baseline and the independent ONNX count need the host packages.
pytestmark = pytest.mark.host


def onnx_gmac(path) -> float:
    """Independent count on the ONNX graph: Conv, Gemm and MatMul multiply-accumulates, with
    the tensor shapes of one onnxruntime run."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    nodes = [n for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    wanted = {n.output[0] for n in nodes} | {n.input[0] for n in nodes}
    inits = {t.name: list(t.dims) for t in model.graph.initializer}
    have = {o.name for o in model.graph.output}
    for name in sorted(wanted - have - set(inits)):
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    x = np.zeros([1] + [int(d) for d in inp.shape[1:]], np.float32)
    names = [o.name for o in sess.get_outputs()]
    shapes = {n: list(v.shape) for n, v in zip(names, sess.run(names, {inp.name: x}))}
    shapes.update(inits)
    total = 0
    for node in nodes:
        out = shapes[node.output[0]]
        if node.op_type == "Conv":
            total += int(np.prod(out)) * int(np.prod(inits[node.input[1]][1:]))
        else:
            a = shapes[node.input[0]]
            trans_a = node.op_type == "Gemm" and any(at.name == "transA" and at.i for at in node.attribute)
            total += int(np.prod(out)) * (a[-2] if trans_a else a[-1])
    return total / 1e9


def test_gmac_matches_an_independent_onnx_count(wholebody_t_dir, body_t_dir, rtmdet_dir, shared):
    pose = gmac(find_model(str(wholebody_t_dir)))
    ref = onnx_gmac(shared / "reference/official/rtmpose-t_wholebody_256x192.onnx")
    # The folded normalisation adds a 3->3 1x1 conv at the input: 256*192*9 MAC.
    assert abs(pose - ref) / ref < 0.01, (pose, ref)
    body = gmac(find_model(str(body_t_dir)))
    assert 0.33 < body < 0.39  # RTMPose-t body is published at 0.36 G(MAC) at 256x192
    det = gmac(find_model(str(rtmdet_dir)))
    assert 0.1 < det < 1.0


def test_ort_baseline_does_the_same_work(rtmdet_dir, wholebody_t_dir, shared):
    image = cv2.imread(str(shared / "data/calib_pypi_wheel_assets/ultralytics/bus.jpg")) if \
        (shared / "data/calib_pypi_wheel_assets/ultralytics/bus.jpg").exists() else \
        cv2.imread(str(shared / "data/calib_mmpose_examples/human-pose.jpeg"))
    det = Detector(str(rtmdet_dir), precision="fp32")
    det_meta = ModelMeta.load(find_model(str(rtmdet_dir)))
    ort_det = OrtDetector(str(shared / "models/rtmdet-nano-person/rtmdet-nano-person_raw-heads.onnx"),
                          det_meta, 1, det.score_threshold, det.nms_iou)
    boxes, _ = det(image)
    ort_boxes, _ = ort_det(image)
    assert len(boxes) >= 1 and len(boxes) == len(ort_boxes)
    assert np.abs(boxes - ort_boxes).max() < 1.0
    pose = PoseEstimator(str(wholebody_t_dir), precision="fp32")
    ort_pose = OrtPose(str(shared / "reference/official/rtmpose-t_wholebody_256x192.onnx"),
                       ModelMeta.load(find_model(str(wholebody_t_dir))), 1)
    k1, s1 = pose(image, boxes)
    k2, s2 = ort_pose(image, boxes)
    assert k1.shape == k2.shape == (len(boxes), 133, 2)
    assert np.median(np.abs(k1 - k2)) < 0.5


def test_bench_cli_writes_report(rtmdet_dir, wholebody_t_dir, shared, tmp_path, capsys):
    out = tmp_path / "report"
    rc = cli(["bench", "--det", str(rtmdet_dir), "--pose", str(wholebody_t_dir), "--precision", "fp32",
              "--threads", "1", "--frames", "3", "--rounds", "3", "--warmup", "1", "--persons", "1", "3",
              "--images", str(shared / "data/calib_mmpose_examples"), str(shared / "data/calib_alphapose_demo"),
              "--pose-onnx", str(shared / "reference/official/rtmpose-t_wholebody_256x192.onnx"),
              "--det-onnx", str(shared / "models/rtmdet-nano-person/rtmdet-nano-person_raw-heads.onnx"),
              "-o", str(out)])
    assert rc == 0
    report = json.loads((out / "bench.json").read_text())
    assert (out / "bench.md").read_text().startswith("# edgepose bench")
    rows = report["rows"]
    # One row per asked count; the largest means "at least" (that image's persons all run).
    assert rows[0]["persons"] == 1.0 and rows[1]["persons"] >= 3.0
    for r in rows:
        assert r["frames"] == 3 and r["fps"] > 0 and r["baseline_fps"] > 0
        assert r["ratio_vs_baseline"] == r["fps"] / r["baseline_fps"]
        # Three rounds of one frame each, ncnn and ONNX Runtime alike; FPS is the median slice.
        assert len(r["fps_slices"]) == 3 and len(r["baseline_fps_slices"]) == 3
        assert r["fps"] == statistics.median(r["fps_slices"])
        assert min(r["fps_slices"]) <= r["fps_mean"] <= max(r["fps_slices"]) == r["fps_best"]
        assert r["ratio_best_vs_baseline"] == r["fps_best"] / r["baseline_fps_best"]
        st = r["stages_ms"]
        assert st["pose_ncnn"]["mean"] > 0 and st["detect_ncnn"]["mean"] > 0
        # The stages add up to the frame (within timer overhead).
        parts = sum(st[s]["mean"] for s in ("decode", "detect", "crop", "pose", "decode_keypoints",
                                            "track_smooth", "draw"))
        assert abs(parts - st["total"]["mean"]) < 0.05 * st["total"]["mean"] + 0.5
    assert report["device"]["cores"] >= 1 and report["device"]["ncnn"]["version"]
    # Memory of the configuration alone, in a fresh process: at least the weights ncnn holds.
    bins = sum(p.stat().st_size for d in (rtmdet_dir, wholebody_t_dir) for p in d.glob("*.bin")) / 2 ** 20
    for r in rows:
        assert r["pipeline_mb"] >= bins and r["peak_rss_mb"] > r["pipeline_mb"]
    assert "FPS" in capsys.readouterr().out


def test_bench_refuses_missing_models(tmp_path, capsys):
    rc = cli(["bench", "--det", str(tmp_path / "nope"), "--pose", str(tmp_path / "nope2"),
              "--images", str(tmp_path), "-o", str(tmp_path / "r")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err


def test_row_fps_is_the_median_slice_so_one_busy_stretch_does_not_move_it():
    def slice_at(fps, n=10):
        return Slice(frames=[{"total": 1.0 / fps}] * n, persons=[1] * n)

    quiet = [slice_at(20.0) for _ in range(4)]
    summary = fps_summary(quiet + [slice_at(10.0)])  # one slice while another process ran
    assert summary["fps"] == pytest.approx(20.0)
    assert summary["fps_best"] == pytest.approx(20.0)
    assert summary["fps_slices"][-1] == pytest.approx(10.0) and summary["fps_spread_pct"] == pytest.approx(50.0)
    # The all-frames mean does feel the busy stretch: it is reported, not used as the row's FPS.
    assert 10.0 < summary["fps_mean"] < 20.0
    # A row slowed for most of its slices is slow: the median follows the majority.
    assert fps_summary([slice_at(10.0)] * 3 + [slice_at(20.0)] * 2)["fps"] == pytest.approx(10.0)


def test_budget_split_adds_up_to_the_rows_budget():
    assert split_budget(5, None, 5.0) == [(None, 1.0)] * 5
    assert [f for f, _ in split_budget(3, 10, None)] == [4, 3, 3]
    assert [f for f, _ in split_budget(5, 2, None)] == [1, 1]  # never an empty slice


def test_ort_baseline_sessions_do_not_spin_wait(shared):
    # Two sessions alternate in the baseline pipeline; spinning pools contend for the cores.
    sess = _session(str(shared / "reference/official/rtmpose-t_wholebody_256x192.onnx"), 2)
    assert sess.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_rows_the_device_slowed_get_extra_rounds_until_most_slices_agree(rtmdet_dir, body_t_dir, shared,
                                                                          monkeypatch):
    """Only the slowed row is measured again, and its FPS is then a quiet slice."""
    import edgepose.runtime.bench.run as run_module

    single = shared / "data/calib_mmpose_examples/human-pose.jpeg"
    programmed = {"1p": [20.0] * 5, "crowd": [5.0, 5.0, 5.0, 10.0, 10.0] + [10.0] * 10}
    asked = {"1p": 0, "crowd": 0}

    def fake_runner(det, pose, encoded, det_every=1, draw=True):
        key = "1p" if encoded == single.read_bytes() else "crowd"

        def run(warmup=3, frames=None, seconds=5.0):
            fps = programmed[key][asked[key]]
            asked[key] += 1
            return Slice(frames=[{"total": 1.0 / fps}] * 4, persons=[1] * 4)
        return run

    monkeypatch.setattr(run_module, "pipeline_runner", fake_runner)
    images = [str(single), *sorted(str(p) for p in (shared / "data/calib_openpose_media").glob("*.jpg"))]
    report = run_module.bench([str(rtmdet_dir)], [str(body_t_dir)], images, precisions=["fp32"], threads=[1],
                              targets=(1, 6), seconds=0.5, rounds=5, baseline=False, log=lambda _m: None)
    one, crowd = report["rows"]
    assert one["slices"] == 5 and one["fps"] == pytest.approx(20.0)
    # [5, 5, 5, 10, 10] -> +10 (3 of 6 quiet: not yet most) -> +10 (4 of 7): two extra rounds.
    assert crowd["slices"] == 7 and crowd["fps"] == pytest.approx(10.0) and crowd["median_quiet"]
    assert report["settings"]["extra_rounds_used"] == 2 and report["unstable_rows"] == []
    # Without extra rounds the same row stays slow and is flagged.
    asked.update({"1p": 0, "crowd": 0})
    report = run_module.bench([str(rtmdet_dir)], [str(body_t_dir)], images, precisions=["fp32"], threads=[1],
                              targets=(1, 6), seconds=0.5, rounds=5, extra_rounds=0, baseline=False,
                              log=lambda _m: None)
    crowd = report["rows"][1]
    assert crowd["fps"] == pytest.approx(5.0) and not crowd["median_quiet"]
    assert report["unstable_rows"] == [("fp32", 1, crowd["scenario"])]


@pytest.mark.parametrize("flag,value,message", [("--rounds", "0", "rounds must be at least 1"),
                                                ("--extra-rounds", "-1", "extra rounds must be 0 or more")])
def test_bench_refuses_bad_round_counts(rtmdet_dir, wholebody_t_dir, shared, tmp_path, capsys, flag, value, message):
    rc = cli(["bench", "--det", str(rtmdet_dir), "--pose", str(wholebody_t_dir), flag, value, "--no-baseline",
              "--images", str(shared / "data/calib_mmpose_examples"), "-o", str(tmp_path / "r")])
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_memory_child_failure_is_reported_as_unknown(rtmdet_dir, wholebody_t_dir, tmp_path):
    from edgepose.runtime.bench.memory import measure_in_child

    not_an_image = tmp_path / "notes.txt"
    not_an_image.write_text("no pixels here")
    out = measure_in_child(str(rtmdet_dir), str(wholebody_t_dir), "fp32", 1, str(not_an_image))
    assert out == {"peak_rss_mb": None, "imports_rss_mb": None, "pipeline_mb": None}
