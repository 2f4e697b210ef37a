"""Acceptance figures of the board runtime against the reference libraries (host only).

1. Pose parity with rtmlib (ONNX Runtime) on the same ONNX files and the same boxes:
   max keypoint difference (px), fraction of identical SimCC argmax, and for every keypoint
   more than 0.5 px off, whether it is a genuine near-tie in the reference logits.
   Also our pre/post-processing with ONNX Runtime as the engine (pure math check, expect 0 px).
2. Detection: person box AP of our ncnn Detector vs ONNX Runtime running the mmdeploy
   end2end ONNX (its own decode + NMS), and box agreement with rtmlib's RTMDet.

    python benchmarks/runtime_parity.py [--limit N]

Converts the models with `convert.api.convert` into a temporary folder unless --models-dir
holds them (subfolders body, wholebody, rtmdet).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SHARED = Path(os.environ.get("EDGEPOSE_SHARED", REPO.parent / "shared")).resolve()
COCO = SHARED / "data/coco_kp17_val2017_merged"
GT_JSON = COCO / "person_keypoints_val2017_merged.json"
DET_ONNX = SHARED / "models/rtmdet-nano-person-mmdeploy/end2end.onnx"
POSE_ONNX = {
    "body": SHARED / "reference/official/rtmpose-t_body8_256x192.onnx",
    "wholebody": SHARED / "reference/official/rtmpose-t_wholebody_256x192.onnx",
}
THREADS = 1   # inference threads (ncnn and onnxruntime); 1 keeps shared machines from thrashing


def ort_session(path):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = THREADS
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


DET_MEAN = np.array([103.53, 116.28, 123.675])
DET_STD = np.array([57.375, 57.12, 58.395])


def coco_images(limit=None):
    gt = json.loads(GT_JSON.read_text())
    ims = sorted(gt["images"], key=lambda im: im["id"])[:limit]
    return [(im["id"], str(COCO / "val2017" / im["file_name"])) for im in ims]


def convert_models(out_root: Path):
    from edgepose.convert.api import convert
    dirs = {}
    for key, src in [("rtmdet", DET_ONNX), *POSE_ONNX.items()]:
        d = out_root / key
        if not any(d.glob("*.json")):
            convert(str(src), str(d), check=False, log=lambda _m: None)
        dirs[key] = d
    return dirs


def official_simcc_decode(outputs, center, scale, input_size, split=2.0):
    """rtmlib's RTMPose.postprocess with mmpose 1.3.2's score (min of the two maxima).

    rtmlib 0.0.16 averages the maxima, which moves the `score <= 0 -> invalid` cut; the
    official decoder (and ours) takes the minimum.
    """
    sx, sy = outputs
    x = sx.reshape(-1, sx.shape[-1]); y = sy.reshape(-1, sy.shape[-1])
    locs = np.stack([x.argmax(1), y.argmax(1)], -1).astype(np.float32)
    vals = np.minimum(x.max(1), y.max(1))
    locs[vals <= 0] = -1
    kp = locs / split / np.array(input_size) * scale + center - scale / 2
    return kp.reshape(1, -1, 2), vals.reshape(1, -1)


# ----------------------------------------------------------------------------- detection
def ort_end2end(session, image):
    """The deploy ONNX with its own decode + NMS, fed with the official preprocessing."""
    from edgepose.runtime.preprocess import letterbox
    canvas, (fx, fy) = letterbox(image, (320, 320), "mmdet")
    x = ((canvas - DET_MEAN) / DET_STD).astype(np.float32).transpose(2, 0, 1)[None]
    dets, _labels = session.run(None, {"input": np.ascontiguousarray(x)})
    d = dets[0][dets[0][:, 4] > 0]  # the graph pads with zero rows
    boxes = d[:, :4] / np.array([fx, fy, fx, fy], np.float32)
    h, w = image.shape[:2]
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    return boxes.astype(np.float32), d[:, 4].astype(np.float32)


def box_iou(a, b):
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2]); rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=1)
    return inter / (area(a)[:, None] + area(b)[None] - inter + 1e-12)


def match(a, b):
    """Greedy one-to-one match by IoU (>= 0.5); returns the matched IoUs and unmatched counts."""
    iou = box_iou(a, b)
    ious = []
    while iou.size and iou.max() >= 0.5:
        i, j = np.unravel_index(iou.argmax(), iou.shape)
        ious.append(iou[i, j]); iou[i, :] = -1; iou[:, j] = -1
    return np.array(ious), len(a) - len(ious), len(b) - len(ious)


def detection_figures(det_dir, images):
    import cv2
    from edgepose.runtime.detector import Detector
    from edgepose.quantization.coco_eval import evaluate_boxes
    det = Detector(det_dir, precision="fp32", score_threshold=0.05, threads=THREADS)  # the end2end graph's own threshold
    assert det.nms_iou == 0.6, det.nms_iou  # and its NMS IoU
    sess = ort_session(DET_ONNX)
    ours, ref = {}, {}
    all_ious, miss_ours, miss_ref, n_ref = [], 0, 0, 0
    for image_id, path in images:
        img = cv2.imread(path)
        ours[image_id] = det(img)
        ref[image_id] = ort_end2end(sess, img)
        a = ours[image_id][0][ours[image_id][1] >= 0.3]; b = ref[image_id][0][ref[image_id][1] >= 0.3]
        ious, ua, ub = match(a, b)
        all_ious += list(ious); miss_ours += ub; miss_ref += ua; n_ref += len(b)
    ap_ours = evaluate_boxes(str(GT_JSON), ours)
    ap_ref = evaluate_boxes(str(GT_JSON), ref)
    all_ious = np.array(all_ious)
    return {
        "AP_ncnn": ap_ours["AP"], "AP_onnxruntime": ap_ref["AP"],
        "AP50_ncnn": ap_ours["AP50"], "AP50_onnxruntime": ap_ref["AP50"],
        "boxes_ort_score>=0.3": n_ref, "matched": int(len(all_ious)),
        "ort_boxes_missed_by_ncnn": miss_ours, "ncnn_boxes_not_in_ort": miss_ref,
        "min_matched_iou": float(all_ious.min()) if len(all_ious) else None,
        "mean_matched_iou": float(all_ious.mean()) if len(all_ious) else None,
    }


# ----------------------------------------------------------------------------- pose
def rtmlib_boxes(images):
    """Person boxes from rtmlib's RTMDet (ONNX Runtime, end2end ONNX): the boxes fed to both."""
    import cv2
    from rtmlib import RTMDet
    det = RTMDet(str(DET_ONNX), model_input_size=(320, 320), backend="onnxruntime", device="cpu")
    det.session = ort_session(DET_ONNX)
    return {image_id: np.asarray(det(cv2.imread(path)), np.float64).reshape(-1, 4) for image_id, path in images}


def pose_figures(pose_dir, onnx_path, images, boxes_by_image):
    """rtmlib 0.0.16 feeds the BGR image to RTMPose normalised with the RGB mean/std (mmpose's
    pipeline swaps to RGB first: `bgr_to_rgb=True`), so rtmlib gets the RGB image here; the
    warp is per channel, so its crops are then exactly the official ones."""
    import cv2
    from rtmlib import RTMPose
    from edgepose.runtime.pose import PoseEstimator
    rt = RTMPose(str(onnx_path), model_input_size=(192, 256), backend="onnxruntime", device="cpu")
    rt.session = ort_session(onnx_path)
    est = PoseEstimator(pose_dir, precision="fp32", threads=THREADS)
    sess = ort_session(onnx_path)
    mean, std = np.array([123.675, 116.28, 103.53]), np.array([58.395, 57.12, 57.375])
    px_ncnn, px_math, exact, total, ties, non_ties, sign_flips = [], [], 0, 0, 0, [], 0
    logit_diff = 0.0
    for image_id, path in images:
        img = cv2.imread(path)
        boxes = boxes_by_image[image_id]
        if len(boxes) == 0:
            continue
        # rtmlib, box by box
        ref_kp, ref_sc, ref_x, ref_y = [], [], [], []
        rgb = np.ascontiguousarray(img[:, :, ::-1])  # see below: rtmlib never swaps channels
        for box in boxes:
            inp, c, s = rt.preprocess(rgb, box)
            sx, sy = rt.inference(inp)
            kp, sc = official_simcc_decode((sx, sy), c, s, (192, 256))
            ref_kp.append(kp[0]); ref_sc.append(sc[0]); ref_x.append(sx[0]); ref_y.append(sy[0])
        ref_kp, ref_x, ref_y = np.array(ref_kp), np.array(ref_x), np.array(ref_y)
        # ours through ncnn
        crops, centers, scales, runs = est.preprocess(img, boxes.astype(np.float32))
        nx, ny = est.inference(crops)
        kp, sc = est.postprocess(nx, ny, centers, scales, runs)
        # ours with ONNX Runtime as the engine: the pure pre/post-processing math
        mx, my = [], []
        for crop in crops:
            x = ((crop[:, :, ::-1] - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)
            ox, oy = sess.run(None, {"input": np.ascontiguousarray(x)})
            mx.append(ox[0]); my.append(oy[0])
        mkp, _ = est.postprocess(np.array(mx), np.array(my), centers, scales, runs)
        px_math.append(np.abs(mkp - ref_kp).max())
        d = np.abs(kp - ref_kp).max(axis=2)
        px_ncnn.append(d.max())
        logit_diff = max(logit_diff, np.abs(nx - ref_x).max(), np.abs(ny - ref_y).max())
        same = (nx.argmax(2) == ref_x.argmax(2)) & (ny.argmax(2) == ref_y.argmax(2))
        exact += int(same.sum()); total += same.size
        for n, k in zip(*np.nonzero(d > 0.5)):
            ours_valid = sc[n, k] > 0; ref_valid = min(ref_x[n, k].max(), ref_y[n, k].max()) > 0
            if ours_valid != ref_valid:
                sign_flips += 1  # score within rounding of 0: the official -1 cut flips
                continue
            gaps = []
            for ours_l, ref_l in ((nx[n, k], ref_x[n, k]), (ny[n, k], ref_y[n, k])):
                gaps.append(ref_l.max() - ref_l[ours_l.argmax()])
            gap = max(gaps)
            err = max(np.abs(nx[n] - ref_x[n]).max(), np.abs(ny[n] - ref_y[n]).max())
            if gap <= 2 * err:
                ties += 1
            else:
                non_ties.append((image_id, int(n), int(k), float(gap), float(err)))
    return {
        "keypoints": total,
        "max_px_diff_ncnn_vs_rtmlib": float(max(px_ncnn)),
        "max_px_diff_our_math_on_ort_vs_rtmlib": float(max(px_math)),
        "exact_argmax_fraction": exact / total,
        "max_abs_logit_diff_ncnn_vs_ort": float(logit_diff),
        "over_0.5px_genuine_ties": ties,
        "over_0.5px_score_sign_at_zero": sign_flips,
        "over_0.5px_not_ties": non_ties,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="first N images only")
    ap.add_argument("--models-dir", default=None, help="reuse converted models (subfolders rtmdet, body, wholebody)")
    args = ap.parse_args(argv)
    images = coco_images(args.limit)
    with tempfile.TemporaryDirectory(prefix="edgepose-parity-") as tmp:
        dirs = convert_models(Path(args.models_dir or tmp))
        report = {"images": len(images)}
        report["detector"] = detection_figures(dirs["rtmdet"], images)
        boxes = rtmlib_boxes(images)
        report["persons"] = int(sum(len(b) for b in boxes.values()))
        from edgepose.runtime.detector import Detector
        det = Detector(dirs["rtmdet"], precision="fp32", threads=THREADS)
        import cv2
        ag = [match(det(cv2.imread(p))[0], boxes[i].astype(np.float32)) for i, p in images]
        ious = np.concatenate([a[0] for a in ag]) if ag else np.zeros(0)
        report["detector_vs_rtmlib_score>=0.3"] = {
            "rtmlib_boxes": report["persons"], "matched": int(len(ious)),
            "unmatched_ours": int(sum(a[1] for a in ag)), "unmatched_rtmlib": int(sum(a[2] for a in ag)),
            "min_iou": float(ious.min()) if len(ious) else None, "mean_iou": float(ious.mean()) if len(ious) else None}
        for key, onnx_path in POSE_ONNX.items():
            report[f"pose_{key}"] = pose_figures(dirs[key], onnx_path, images, boxes)
    print(json.dumps(report, indent=1, default=float))
    return report


if __name__ == "__main__":
    main()
