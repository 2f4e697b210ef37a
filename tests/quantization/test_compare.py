"""`edgepose compare`: agreement metrics, variant resolution, and full reports with plots."""
import json

import numpy as np
import pytest

from edgepose.errors import EdgeposeError
from edgepose.quantization import agreement
from edgepose.quantization.coco_eval import evaluate_boxes


# ---------------------------------------------------------------- agreement metrics

def test_keypoint_agreement_errors_and_pck():
    ref = np.zeros((2, 3, 2))
    test = ref.copy()
    test[0, 0] = [3, 4]      # 5 px off; box 0 is 100 px -> PCK threshold 5: inside
    test[1, 2] = [0, 5.5]    # 5.5 px off; box 1 is 100 px -> outside
    boxes = np.array([[0, 0, 100, 50], [0, 0, 20, 100]])
    out = agreement.keypoint_agreement(ref, test, boxes, parts={"a": [0, 1], "b": [1, 3]})
    assert out["all"]["mean_px_error"] == pytest.approx((5 + 5.5) / 6)
    assert out["all"]["pck@0.05"] == pytest.approx(5 / 6)
    assert out["a"]["pck@0.05"] == pytest.approx(1.0) and out["a"]["mean_px_error"] == pytest.approx(2.5)
    assert out["b"]["pck@0.05"] == pytest.approx(3 / 4) and out["b"]["count"] == 4
    same = agreement.keypoint_agreement(ref, ref, boxes)
    assert same["all"]["mean_px_error"] == 0 and same["all"]["pck@0.05"] == 1


def test_argmax_agreement_exact_and_within_one():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 10))
    y = rng.normal(size=(2, 4, 12))
    bins = agreement.simcc_bins(x, y)
    moved = bins.copy()
    moved[0, 0, 0] += 1   # one bin off on x: within one, not exact
    moved[1, 3, 1] += 2   # two bins off on y: neither
    out = agreement.argmax_agreement(bins, moved, parts={"p": [0, 2]})
    assert out["all"]["argmax_exact"] == pytest.approx(6 / 8)
    assert out["all"]["argmax_within_one"] == pytest.approx(7 / 8)
    assert out["p"]["argmax_exact"] == pytest.approx(3 / 4) and out["p"]["argmax_within_one"] == 1.0
    assert agreement.simcc_argmax_agreement(x, y, x, y)["all"]["argmax_exact"] == 1.0
    with pytest.raises(ValueError):
        agreement.argmax_agreement(bins, bins[:, :2])


def test_box_agreement():
    ref = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    test = np.array([[0, 0, 10, 5]], float)
    best = agreement.best_box_ious(ref, test)
    assert best == pytest.approx([0.5, 0.0])
    s = agreement.summarize_box_agreement(best, 2, 1)
    assert s["mean_best_iou"] == pytest.approx(0.25) and s["matched@0.5"] == pytest.approx(0.5)
    assert agreement.best_box_ious(ref, np.zeros((0, 4))) == pytest.approx([0, 0])


# ---------------------------------------------------------------- variants and output folder

def _meta_copy(src_dir, dst_dir, precision, method=None):
    """A variant folder pointing at the same ncnn files with another precision label."""
    from edgepose.model_meta import ModelMeta, find_model
    path = find_model(str(src_dir))
    meta = ModelMeta.load(path)
    meta.param, meta.bin = meta.param_path(path), meta.bin_path(path)
    meta.precision = precision
    if method:
        meta.quantization = {"method": method}
    dst_dir.mkdir(exist_ok=True)
    out = dst_dir / f"{meta.name}_{precision}_{method}.json"
    meta.save(str(out))
    return out


def test_resolve_variants(body_t_dir, rtmdet_dir, tmp_path):
    from edgepose.quantization.compare import resolve_variants
    vs = resolve_variants([str(body_t_dir)])
    assert [(v.label, v.run_precision) for v in vs] == [("fp32", "fp32"), ("fp16", "fp16")]
    assert [v.label for v in resolve_variants([str(body_t_dir)], fp16=False)] == ["fp32"]
    a = _meta_copy(body_t_dir, tmp_path / "q", "int8", "kl")
    b = _meta_copy(body_t_dir, tmp_path / "q", "int8", "aciq")
    vs = resolve_variants([str(a), str(b), str(body_t_dir)])
    assert vs[0].label == "fp32"  # the reference comes first whatever the argument order
    assert sorted(v.label for v in vs) == ["fp16", "fp32", "int8-aciq", "int8-kl"]
    assert all(v.run_precision == "int8" for v in vs if v.label.startswith("int8"))
    with pytest.raises(EdgeposeError, match="fp32 model as the reference"):
        resolve_variants([str(a)])
    with pytest.raises(EdgeposeError, match="mix tasks"):
        resolve_variants([str(body_t_dir), str(rtmdet_dir)])


def test_out_dir_never_overwrites_foreign_files(tmp_path):
    from edgepose.errors import BadArgumentError
    from edgepose.quantization.report import check_out_dir
    (tmp_path / "report.json").write_text('{"mine": 1}')
    with pytest.raises(BadArgumentError, match="report.json"):
        check_out_dir(str(tmp_path))
    other = tmp_path / "x"
    other.mkdir()
    (other / "speed.png").write_bytes(b"user file")
    with pytest.raises(BadArgumentError, match="speed.png"):
        check_out_dir(str(other))
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(BadArgumentError, match="file"):
        check_out_dir(str(f))
    assert (other / "speed.png").read_bytes() == b"user file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "report.json", "x"]


def test_unlabelled_pose_needs_detector(body_t_dir, shared, tmp_path):
    from edgepose.quantization.compare import compare
    with pytest.raises(EdgeposeError, match="--det"):
        compare([str(body_t_dir)], str(shared / "data" / "calib_alphapose_demo"), str(tmp_path / "r"),
                progress=False)
    assert not (tmp_path / "r" / "report.md").exists()


# ---------------------------------------------------------------- full reports

def _png_ok(path):
    import cv2
    img = cv2.imread(str(path))
    assert img is not None and img.shape[0] > 200 and img.shape[1] > 300, path
    assert img.std() > 10, f"{path} looks blank"


def test_detector_report_fp32_fp16(rtmdet_dir, shared, tmp_path):
    from edgepose.cli import main
    from edgepose.runtime.detector import Detector
    from edgepose.quantization.compare import load_dataset
    from edgepose.runtime.image_input import read_image
    gt = shared / "data" / "coco_kp17_val2017_merged" / "person_keypoints_val2017_merged.json"
    out = tmp_path / "det_report"
    rc = main(["compare", str(rtmdet_dir), "--data", str(gt), "-o", str(out), "--threads", "1",
               "--max-images", "6", "--quiet"])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert report["task"] == "detect" and [v["label"] for v in report["variants"]] == ["fp32", "fp16"]
    for name in ("box_ap.png", "speed.png"):
        _png_ok(out / name)
    md = (out / "report.md").read_text()
    assert "box_ap.png" in md and "| fp16 |" in md
    # the report's fp32 AP is what the runtime + evaluator give directly on the same images
    ds = load_dataset(str(gt), max_images=6)
    det = Detector(str(rtmdet_dir), threads=1, precision="fp32")
    direct = evaluate_boxes(ds.gt, {it.image_id: det(read_image(it.path)) for it in ds.images})
    fp32 = report["variants"][0]
    assert fp32["ap"]["AP"] == pytest.approx(direct["AP"], abs=1e-12)
    assert 0.2 < fp32["ap"]["AP50"] <= 1.0  # a real detector finds people
    assert all(v["speed"]["ms_per_image"] > 0 and v["speed"]["images"] == 6 for v in report["variants"])
    fp16 = report["variants"][1]["agreement"]["boxes"]
    assert fp16["mean_best_iou"] > 0.95
    # a second run into the same folder replaces its own report
    assert main(["compare", str(rtmdet_dir), "--data", str(gt), "-o", str(out), "--max-images", "2",
                 "--no-fp16", "--no-plots", "--quiet"]) == 0
    assert json.loads((out / "report.json").read_text())["images"] == 2


def test_wholebody_pose_report_per_part(wholebody_t_dir, wholebody_t_fp16_dir, shared, tmp_path):
    from edgepose.quantization.compare import compare
    gt = shared / "data" / "coco_wholebody_val_gt" / "annotations" / "coco_wholebody_example_gt.json"
    out = tmp_path / "pose_report"
    report = compare([str(wholebody_t_dir), str(wholebody_t_fp16_dir)], str(gt), str(out), threads=1,
                     max_images=3, progress=False)
    assert [v["label"] for v in report["variants"]] == ["fp32", "fp16"]
    assert report["variants"][1]["file_precision"] == "fp16"
    for v in report["variants"]:
        assert set(v["ap"]) == {"body", "foot", "face", "lefthand", "righthand", "wholebody"}
        assert all(0.0 <= a["AP"] <= 1.0 for a in v["ap"].values())  # random weights: AP near 0
    ag = report["variants"][1]["agreement"]
    assert set(ag["argmax"]) == {"all", "body", "foot", "face", "left_hand", "right_hand"}
    assert ag["argmax"]["all"]["count"] == report["persons"] * 133
    for part in ag["argmax"].values():
        assert part["argmax_within_one"] >= part["argmax_exact"]
    # fp16 weights change the logits a little, not the keypoints much
    assert ag["argmax"]["all"]["argmax_within_one"] > 0.9
    assert report["variants"][1]["error_histogram"]["median_px"] < 2.0
    for name in ("ap_per_part.png", "agreement_per_part.png", "keypoint_error_hist.png", "speed.png"):
        _png_ok(out / name)
    md = (out / "report.md").read_text()
    assert "AP wholebody" in md and "left_hand" in md


def test_body_pose_report_with_detector_boxes(body_t_dir, rtmdet_dir, shared, tmp_path):
    from edgepose.quantization.compare import compare
    data = shared / "data" / "coco_kp17_val2017_merged"
    report = compare([str(body_t_dir)], str(data), str(tmp_path / "r"), det=str(rtmdet_dir), threads=1,
                     max_images=2, progress=False)
    assert report["boxes"] == "detector" and report["persons"] > 0
    assert set(report["variants"][0]["ap"]) == {"body"}
    assert report["variants"][1]["speed"]["crops"] == report["persons"]


# ---------------------------------------------------------------- with our INT8 models (slow: calibration)

@pytest.mark.slow
def test_detector_and_pose_reports_with_int8(rtmdet_dir, body_t_dir, shared, tmp_path):
    from edgepose.quantization.compare import compare
    from edgepose.quantization.quantize_api import quantize_model
    calib = shared / "data" / "calib_coco_val2017_unlabeled"
    q = tmp_path / "q"
    det_int8 = quantize_model(str(rtmdet_dir), str(calib), out_dir=str(q), max_images=8, eval_inputs=4, all_int8=True,
                              log=lambda _m: None)
    gt = shared / "data" / "coco_kp17_val2017_merged" / "person_keypoints_val2017_merged.json"
    rep = compare([str(rtmdet_dir), det_int8], str(gt), str(tmp_path / "det"), threads=1, max_images=10,
                  progress=False)
    assert [v["label"] for v in rep["variants"]] == ["fp32", "fp16", "int8"]
    int8 = rep["variants"][2]
    assert int8["file_precision"] == "int8" and int8["method"] == "kl" and int8["calibration_sha256"]
    # accuracy of the int8 detector is the quantizer's acceptance test; here: the report holds it
    assert 0.0 <= int8["agreement"]["boxes"]["matched@0.5"] <= 1.0 and int8["boxes"] >= 0
    assert 0.0 <= int8["ap"]["AP"] <= 1.0 and int8["speed"]["ms_per_image"] > 0
    _png_ok(tmp_path / "det" / "box_ap.png")

    pose_int8 = quantize_model(str(body_t_dir), str(calib), out_dir=str(q), det_model=str(rtmdet_dir), all_int8=True,
                               max_images=6, eval_inputs=4, log=lambda _m: None)
    rep = compare([str(body_t_dir), pose_int8], str(gt), str(tmp_path / "pose"), threads=1, max_images=4,
                  progress=False)
    int8 = rep["variants"][-1]
    assert int8["label"] == "int8" and int8["agreement"]["argmax"]["all"]["count"] == rep["persons"] * 17
    assert "Layers kept in float" in (tmp_path / "pose" / "report.md").read_text()
    _png_ok(tmp_path / "pose" / "keypoint_error_hist.png")
