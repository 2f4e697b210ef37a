"""Board runtime on converted models: ncnn Detector / PoseEstimator / solutions against
onnxruntime on the same ONNX files (an independent numpy reference of the official math),
plus bad input and bad model files."""
import json
import os
import shutil

import cv2
import numpy as np
import pytest

from edgepose.runtime.detector import Detector
from edgepose.errors import BadModelError, EdgeposeError
from edgepose.runtime.ncnn_model import NcnnModel
from edgepose.runtime.pose import PoseEstimator
from edgepose.runtime.solutions import Body, Poses, Wholebody


COCO = "data/coco_kp17_val2017_merged"
IMAGES = ["000000000785.jpg", "000000001000.jpg", "000000034417.jpg"]
POSE_MEAN, POSE_STD = np.array([123.675, 116.28, 103.53]), np.array([58.395, 57.12, 57.375])
DET_MEAN, DET_STD = np.array([103.53, 116.28, 123.675]), np.array([57.375, 57.12, 58.395])


def ort_options():
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1   # the test machines are shared
    return opts


def coco_image(shared, name):
    return cv2.imread(str(shared / COCO / "val2017" / name))


def gt_boxes(shared, name):
    gt = json.loads((shared / COCO / "person_keypoints_val2017_merged.json").read_text())
    image_id = next(im["id"] for im in gt["images"] if im["file_name"] == name)
    b = np.array([a["bbox"] for a in gt["annotations"] if a["image_id"] == image_id], np.float64).reshape(-1, 4)
    b[:, 2:] += b[:, :2]
    return b


def reference_pose(session, image, boxes, size=(192, 256)):
    """The official top-down math written out in closed form, with onnxruntime as the engine."""
    w, h = size
    kps, scs = [], []
    for x1, y1, x2, y2 in boxes:
        c = np.array([x1 + x2, y1 + y2]) / 2
        s = np.array([x2 - x1, y2 - y1]) * 1.25
        s = np.array([s[0], s[0] * h / w]) if s[0] > s[1] * w / h else np.array([s[1] * w / h, s[1]])
        k = w / s[0]
        m = np.array([[k, 0, w / 2 - k * c[0]], [0, k, h / 2 - k * c[1]]])
        crop = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR)
        x = ((crop[:, :, ::-1] - POSE_MEAN) / POSE_STD).transpose(2, 0, 1)[None].astype(np.float32)
        sx, sy = session.run(None, {"input": np.ascontiguousarray(x)})
        loc = np.stack([sx[0].argmax(1), sy[0].argmax(1)], 1) / 2.0
        score = np.minimum(sx[0].max(1), sy[0].max(1))
        loc[score <= 0] = -0.5
        kps.append(loc / np.array([w, h]) * s + c - s / 2)
        scs.append(score)
    return np.array(kps), np.array(scs)


@pytest.fixture(scope="module")
def body_pose(body_t_dir):
    return PoseEstimator(body_t_dir, precision="fp32", threads=1)


@pytest.mark.host
def test_pose_matches_official_math_on_onnxruntime(shared, body_pose):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(shared / "reference/official/rtmpose-t_body8_256x192.onnx"),
                                providers=["CPUExecutionProvider"], sess_options=ort_options())
    n = 0
    for name in IMAGES:
        img = coco_image(shared, name)
        boxes = gt_boxes(shared, name)
        kp, sc = body_pose(img, boxes)
        ref_kp, ref_sc = reference_pose(sess, img, boxes)
        assert kp.shape == (len(boxes), 17, 2) and kp.dtype == np.float32 and sc.shape == (len(boxes), 17)
        assert np.abs(kp - ref_kp).max() < 0.5
        assert np.abs(sc - ref_sc).max() < 1e-2
        n += len(boxes)
    assert n >= 5


def test_pose_concurrency_gives_the_same_result(shared, body_t_dir, body_pose):
    img = coco_image(shared, "000000001000.jpg")
    boxes = gt_boxes(shared, "000000001000.jpg")
    assert len(boxes) > 2
    pooled = PoseEstimator(body_t_dir, precision="fp32", concurrency=2, threads=1)
    a, b = body_pose(img, boxes), pooled(img, boxes)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    pooled.close()


def test_pose_odd_boxes(shared, body_pose):
    img = coco_image(shared, "000000000785.jpg")
    h, w = img.shape[:2]
    boxes = np.array([[280, 42, 493, 378],          # inside
                      [-100, -50, 60, 200],          # partly outside
                      [w + 10, h + 10, w + 200, h + 400],  # fully outside
                      [50, 60, 50, 160],             # zero width
                      [70, 80, 70, 80]], np.float32)  # a point
    kp, sc = body_pose(img, boxes)
    assert kp.shape == (5, 17, 2) and np.isfinite(kp).all() and np.isfinite(sc).all()
    assert (sc[3:] == 0).all() and np.allclose(kp[3], [50, 110]) and np.allclose(kp[4], [70, 80])
    single, _ = body_pose(img, boxes[:1])
    assert np.array_equal(single[0], kp[0])          # one box's answer does not depend on the others
    kp0, sc0 = body_pose(img, np.zeros((0, 4)))
    assert kp0.shape == (0, 17, 2) and sc0.shape == (0, 17)
    whole, _ = body_pose(img)                        # no boxes: the whole image, as rtmlib
    assert whole.shape == (1, 17, 2)


def ort_end2end(session, img, letterbox):
    canvas, (fx, fy) = letterbox(img, (320, 320), "mmdet")
    x = ((canvas - DET_MEAN) / DET_STD).astype(np.float32).transpose(2, 0, 1)[None]
    dets, _ = session.run(None, {"input": np.ascontiguousarray(x)})
    d = dets[0][dets[0][:, 4] > 0]
    return d[:, :4] / np.array([fx, fy, fx, fy]), d[:, 4]


@pytest.mark.host
def test_rtmdet_matches_deploy_onnx_with_its_own_nms(shared, rtmdet_mmdeploy_dir):
    import onnxruntime as ort

    from edgepose.runtime.preprocess import letterbox
    det = Detector(rtmdet_mmdeploy_dir, precision="fp32", score_threshold=0.05, threads=1)
    assert (det.family, det.nms_iou, det.input_size) == ("rtmdet", 0.6, (320, 320))
    sess = ort.InferenceSession(str(shared / "models/rtmdet-nano-person-mmdeploy/end2end.onnx"),
                                providers=["CPUExecutionProvider"], sess_options=ort_options())
    for name in IMAGES:
        img = coco_image(shared, name)
        boxes, scores = det(img)
        ref_boxes, ref_scores = ort_end2end(sess, img, letterbox)
        keep = ref_scores >= 0.3
        assert boxes.dtype == np.float32 and scores.dtype == np.float32
        assert (scores[:-1] >= scores[1:]).all()
        ours = boxes[scores >= 0.3]
        assert len(ours) == keep.sum()
        h, w = img.shape[:2]
        ref = np.clip(ref_boxes[keep], 0, [w, h, w, h])
        assert np.abs(ours - ref).max() < 0.5
        assert np.abs(scores[scores >= 0.3] - ref_scores[keep]).max() < 1e-3
    boxes, scores = Detector(rtmdet_mmdeploy_dir, precision="fp32", threads=1)(coco_image(shared, "000000000785.jpg"))
    assert len(boxes) == 1 and scores[0] > 0.8     # PROVENANCE: one person ~ (280, 42, 493, 378)
    assert np.abs(boxes[0] - [280, 42, 493, 378]).max() < 10


@pytest.mark.host
def test_yolox_finds_the_person(shared, yolox_dir):
    import onnxruntime as ort

    det = Detector(yolox_dir, precision="fp32", threads=1)
    assert det.family == "yolox" and det.input_size == (416, 416)
    img = coco_image(shared, "000000000785.jpg")
    boxes, scores = det(img)
    assert len(boxes) >= 1 and 0.8 < scores[0] < 0.95   # PROVENANCE: person score 0.89
    assert np.abs(boxes[0] - [280, 42, 493, 378]).max() < 25
    # same decode fed by onnxruntime: the ncnn path changes nothing
    from edgepose.runtime.detector import decode_yolox, nms
    sess = ort.InferenceSession(str(shared / "models/yolox-nano/yolox_nano_416x416.onnx"),
                                providers=["CPUExecutionProvider"], sess_options=ort_options())
    canvas, (r, _) = det.preprocess(img)
    out = sess.run(None, {"images": canvas.astype(np.float32).transpose(2, 0, 1)[None].copy()})[0][0]
    b, s = decode_yolox(out, [8, 16, 32], (416, 416), 0, det.score_threshold)
    keep = nms(b, s, det.nms_iou, 100)
    assert len(keep) == len(boxes) and np.abs(b[keep] / r - boxes).max() < 0.5


# ----------------------------------------------------------------------------- solutions, bad input
@pytest.fixture(scope="module")
def body(body_t_dir, rtmdet_mmdeploy_dir):
    return Body(det=rtmdet_mmdeploy_dir, pose=body_t_dir, precision="fp32", threads=1)


def test_body_solution_is_the_detector_then_the_pose_model(shared, body, body_t_dir, rtmdet_mmdeploy_dir):
    from edgepose.runtime.preprocess import boxes_to_center_scale
    img = coco_image(shared, "000000001000.jpg")
    poses = body.infer(img)
    assert isinstance(poses, Poses) and len(poses) > 2
    kp, sc = body(img)
    assert np.array_equal(kp, poses.keypoints) and np.array_equal(sc, poses.scores)
    # The same as running the two models by hand, bit for bit.
    boxes, box_scores = Detector(rtmdet_mmdeploy_dir, precision="fp32", threads=1)(img)
    hand_kp, hand_sc = PoseEstimator(body_t_dir, precision="fp32", threads=1)(img, boxes)
    assert np.array_equal(boxes, poses.boxes) and np.array_equal(box_scores, poses.box_scores)
    assert np.array_equal(hand_kp, kp) and np.array_equal(hand_sc, sc)
    assert box_scores.min() >= 0.3 and np.all(np.diff(box_scores) <= 0)     # person threshold, best first
    # SimCC maps every keypoint into its person's crop: the box grown by the official 1.25 padding.
    center, scale = boxes_to_center_scale(poses.boxes, (192, 256))
    lo, hi = center - scale / 2, center + scale / 2
    assert np.all(kp >= lo[:, None] - 1) and np.all(kp <= hi[:, None] + 1)
    assert kp.shape == (len(poses), 17, 2) and kp.dtype == np.float32


def test_wholebody_solution(shared, wholebody_t_dir, rtmdet_mmdeploy_dir, body_t_dir):
    wb = Wholebody(det=rtmdet_mmdeploy_dir, pose=wholebody_t_dir, precision="fp32", threads=1)
    kp, sc = wb(coco_image(shared, "000000000785.jpg"))
    assert kp.shape == (1, 133, 2) and sc.shape == (1, 133)
    with pytest.raises(EdgeposeError, match="133"):
        Wholebody(det=rtmdet_mmdeploy_dir, pose=body_t_dir)
    with pytest.raises(EdgeposeError, match="det= and pose="):
        Body()


def test_bad_images_are_handled(shared, body):
    img = coco_image(shared, "000000000785.jpg")
    ref_boxes, _ = body.detector(img)
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    for variant in (gray, gray[:, :, None], cv2.cvtColor(img, cv2.COLOR_BGR2BGRA),
                    img.astype(np.uint16) * 257, img.astype(np.float32) / 255):
        kp, sc = body(variant)
        assert kp.ndim == 3 and kp.shape[1:] == (17, 2) and np.isfinite(kp).all()
    assert np.array_equal(body.detector(img.astype(np.uint16) * 257)[0], ref_boxes)
    for tiny in (np.zeros((1, 1, 3), np.uint8), np.full((1, 7), 200, np.uint8), np.zeros((3000, 1, 3), np.uint8)):
        kp, sc = body(tiny)
        assert kp.shape[1:] == (17, 2)
    with pytest.raises(EdgeposeError, match="empty image"):
        body(np.zeros((0, 0, 3), np.uint8))
    with pytest.raises(EdgeposeError):
        body(None)


def test_huge_image(shared, body):
    img = coco_image(shared, "000000000785.jpg")
    big = cv2.resize(img, (8000, 6000), interpolation=cv2.INTER_LINEAR)
    poses = body.infer(big)
    assert len(poses) >= 1
    fx, fy = 8000 / img.shape[1], 6000 / img.shape[0]
    assert np.abs(poses.boxes[0] - np.array([280 * fx, 42 * fy, 493 * fx, 378 * fy])).max() < 200


# ----------------------------------------------------------------------------- model files
def copy_model(src, dst):
    shutil.copytree(src, dst)
    meta = next(p for p in os.listdir(dst) if p.endswith(".json"))
    return os.path.join(dst, meta)


def test_model_file_errors(tmp_path, body_t_dir, rtmdet_mmdeploy_dir):
    with pytest.raises(EdgeposeError, match="not found"):
        PoseEstimator(tmp_path / "nowhere")
    body_json = next(str(p) for p in body_t_dir.glob("*.json"))
    with pytest.raises(EdgeposeError, match="'detect' model"):
        Detector(body_json, precision="fp32", threads=1)
    with pytest.raises(EdgeposeError, match="int8"):
        PoseEstimator(body_t_dir, precision="int8")
    with pytest.raises(EdgeposeError, match="precision"):
        PoseEstimator(body_t_dir, precision="fp8")

    meta = copy_model(body_t_dir, tmp_path / "nobin")
    data = json.load(open(meta))
    os.remove(os.path.join(os.path.dirname(meta), data["bin"]))
    with pytest.raises(EdgeposeError, match="missing"):
        PoseEstimator(os.path.dirname(meta))

    meta = copy_model(body_t_dir, tmp_path / "wrongblob")
    data = json.load(open(meta))
    data["output_blobs"]["simcc_x"] = "no_such_blob"
    json.dump(data, open(meta, "w"))
    with pytest.raises(EdgeposeError, match="no_such_blob"):
        PoseEstimator(meta)

    meta = copy_model(body_t_dir, tmp_path / "badparam")
    data = json.load(open(meta))
    param = os.path.join(os.path.dirname(meta), data["param"])
    text = open(param).read().splitlines()
    text[3] = text[3].replace(text[3].split()[0], "NoSuchLayerType", 1)
    open(param, "w").write("\n".join(text) + "\n")
    with pytest.raises(BadModelError, match="sha256"):        # the recorded checksum catches it first
        PoseEstimator(meta)
    data.pop("checksums")                                   # as a model converted before checksums
    json.dump(data, open(meta, "w"))
    with pytest.raises(EdgeposeError, match="cannot parse"):
        PoseEstimator(meta)

    meta = copy_model(body_t_dir, tmp_path / "truncbin")
    data = json.load(open(meta))
    binf = os.path.join(os.path.dirname(meta), data["bin"])
    with open(binf, "r+b") as f:
        f.truncate(1000)
    data.pop("checksums")
    json.dump(data, open(meta, "w"))
    with pytest.raises(EdgeposeError, match="weights"):
        PoseEstimator(meta)

    meta = copy_model(rtmdet_mmdeploy_dir, tmp_path / "noroles")
    data = json.load(open(meta))
    del data["output_blobs"]["box_16"]
    json.dump(data, open(meta, "w"))
    with pytest.raises(EdgeposeError, match="box_16"):
        Detector(meta)


def test_precision_options(body_t_dir):
    fp32 = NcnnModel(body_t_dir, task="pose", precision="fp32", threads=1)
    o = fp32.net.opt
    assert not (o.use_fp16_storage or o.use_fp16_packed or o.use_fp16_arithmetic or o.use_int8_inference)
    fp16 = NcnnModel(body_t_dir, task="pose", precision="fp16", threads=1)
    o = fp16.net.opt
    assert o.use_fp16_storage and o.use_fp16_packed and o.use_fp16_arithmetic and o.num_threads == 1
    off = NcnnModel(body_t_dir, task="pose", precision="fp16", fp16=False)
    assert not off.net.opt.use_fp16_arithmetic
    with pytest.raises(EdgeposeError, match="threads"):
        NcnnModel(body_t_dir, threads=0)
