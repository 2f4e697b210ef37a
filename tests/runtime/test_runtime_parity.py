"""Acceptance: the whole ncnn chain against rtmlib / onnxruntime on the 114 COCO val images.

Slow (minutes): `pytest -m slow tests/test_runtime_parity.py`. Needs rtmlib (installed with
--no-deps, see .ci/run) and onnxruntime. Figures come from benchmarks/runtime_parity.py.
"""
import pytest

pytestmark = pytest.mark.host   # references: rtmlib / onnxruntime / quantization


@pytest.mark.slow
def test_detector_ap_matches_onnxruntime(shared, rtmdet_mmdeploy_dir, benchmark_script):
    mod = benchmark_script("runtime_parity")
    fig = mod.detection_figures(rtmdet_mmdeploy_dir, mod.coco_images())
    print(fig)
    assert abs(fig["AP_ncnn"] - fig["AP_onnxruntime"]) < 0.005          # within 0.5 AP points
    assert fig["ort_boxes_missed_by_ncnn"] == 0 and fig["ncnn_boxes_not_in_ort"] == 0
    assert fig["min_matched_iou"] > 0.99


@pytest.mark.slow
@pytest.mark.parametrize("key", ["body", "wholebody"])
def test_pose_parity_with_rtmlib(shared, key, request, rtmdet_mmdeploy_dir, benchmark_script):
    import onnxruntime  # noqa: F401
    import rtmlib  # noqa: F401  (test dependency: pip install --no-deps rtmlib)
    mod = benchmark_script("runtime_parity")
    images = mod.coco_images()
    boxes = mod.rtmlib_boxes(images)
    pose_dir = request.getfixturevalue("body_t_dir" if key == "body" else "wholebody_t_dir")
    fig = mod.pose_figures(pose_dir, mod.POSE_ONNX[key], images, boxes)
    print(fig)
    assert fig["keypoints"] > 1000
    assert fig["max_px_diff_our_math_on_ort_vs_rtmlib"] < 1e-3       # identical math
    assert fig["over_0.5px_not_ties"] == []                          # ncnn only flips genuine ties
    assert fig["exact_argmax_fraction"] > 0.99
