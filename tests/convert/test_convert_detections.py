"""Acceptance 3: converted detectors find the same persons as onnxruntime on COCO images.

onnxruntime runs the source graph on the runtime's own letterboxed canvas and its raw
outputs go through the runtime's decode + NMS (edge_runtime.detector), so the only
difference left is ncnn vs onnxruntime.
"""
from __future__ import annotations

import numpy as np
import pytest

from edgepose.convert import api, onnx_source
from edgepose.runtime.detector import Detector
from edgepose.model_meta import find_model
from helpers import iou

DETECTORS = {
    "rtmdet_dir": "models/rtmdet-nano-person/rtmdet-nano-person_raw-heads.onnx",
    "rtmdet_mmdeploy_dir": "models/rtmdet-nano-person-mmdeploy/end2end.onnx",
    "yolox_dir": "models/yolox-nano/yolox_nano_416x416.onnx",
}
IMAGES = 12


@pytest.mark.parametrize("fixture", sorted(DETECTORS))
def test_ncnn_detections_match_onnxruntime(fixture, request, shared):
    import cv2
    folder = request.getfixturevalue(fixture)
    det = Detector(find_model(str(folder)), precision="fp32", fp16=False, threads=1)
    src = onnx_source.inspect(str(shared / DETECTORS[fixture]))
    reference = api._ort_reference(src.reference_model, src)
    files = sorted((shared / "data/coco_kp17_val2017_merged/val2017").iterdir())[:IMAGES]
    persons, worst = 0, 1.0
    for f in files:
        image = cv2.imread(str(f))
        got_boxes, got_scores = det(image)
        canvas, factors = det.preprocess(image)
        raw = reference(canvas.transpose(2, 0, 1).astype(np.float32)[None])
        outputs = {role: r[0] for role, r in zip(src.output_roles, raw)}
        want_boxes, want_scores = det.postprocess(outputs, factors, image.shape)
        assert len(got_boxes) == len(want_boxes), f.name
        for wb, ws in zip(want_boxes, want_scores):
            best = max(iou(wb, gb) for gb in got_boxes)
            worst = min(worst, best)
            assert best >= 0.99, (f.name, wb, best)
        assert np.allclose(np.sort(got_scores), np.sort(want_scores), atol=1e-3)
        persons += len(want_boxes)
    print(f"{fixture}: {persons} persons on {len(files)} images, worst IoU {worst:.4f}")
    assert persons > 0


def test_cut_mmdeploy_model_reproduces_its_own_nms_output(rtmdet_mmdeploy_dir, shared):
    """The deploy ONNX with NMS inside (what peer libraries load) vs our cut + runtime decode."""
    import cv2
    import onnxruntime as ort

    from edgepose.convert import fold_input
    det = Detector(find_model(str(rtmdet_mmdeploy_dir)), precision="fp32", fp16=False, threads=1)
    meta = det.meta
    sess = ort.InferenceSession(str(shared / DETECTORS["rtmdet_mmdeploy_dir"]))
    files = sorted((shared / "data/coco_kp17_val2017_merged/val2017").iterdir())[:IMAGES]
    persons = 0
    for f in files:
        image = cv2.imread(str(f))
        got_boxes, _ = det(image)
        canvas, (sx, sy) = det.preprocess(image)
        x = fold_input.normalise_pixels(canvas.transpose(2, 0, 1)[None].astype(np.float32), meta.mean, meta.std,
                                        meta.model_channel_order, meta.channel_order)
        dets, labels = sess.run(None, {"input": x})
        keep = (dets[0][:, 4] >= det.score_threshold) & (labels[0] == 0)
        want = dets[0][keep, :4] / np.array([sx, sy, sx, sy], np.float32)
        assert len(want) == len(got_boxes), f.name
        for wb in want:
            assert max(iou(wb, gb) for gb in got_boxes) >= 0.99, f.name
        persons += len(want)
    assert persons >= 10
