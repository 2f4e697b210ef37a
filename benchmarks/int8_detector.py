"""INT8 vs FP32 person detector: box AP on a COCO val set, and speed, in one process.

    python benchmarks/int8_detector.py --fp32 MODEL_DIR [--int8 INT8_DIR | --calib DIR...]
        [--data ../shared/data/coco_kp17_val2017_merged] [--threads 1] [--repeat 3]

Without --int8 the fp32 model is first quantised (KL + output-error scales + bias
correction, whole calibration images; --float-depthwise keeps depthwise convs float) into a
temporary folder. AP uses quantization.coco_eval.evaluate_boxes with the same low score
threshold for both precisions (AP needs the low-score tail). Speed: model forward only on
the letterboxed val images, fp32 and int8 interleaved per repeat so both see the same
machine load; prints the int8/fp32 time ratio.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


SHARED = os.environ.get("EDGEPOSE_SHARED",
                        os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fp32", required=True)
    ap.add_argument("--int8")
    ap.add_argument("--calib", nargs="+", default=sorted(glob.glob(os.path.join(SHARED, "data", "calib_*"))))
    ap.add_argument("--method", default="kl")
    ap.add_argument("--float-depthwise", action="store_true")
    ap.add_argument("--data", default=os.path.join(SHARED, "data", "coco_kp17_val2017_merged"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--score-threshold", type=float, default=0.05)
    args = ap.parse_args(argv)

    import cv2
    from edgepose.runtime.detector import Detector
    from edgepose.quantization.coco_eval import evaluate_boxes

    tmp = None
    int8 = args.int8
    if not int8:
        from edgepose.quantization.quantize_api import quantize_model
        tmp = tempfile.TemporaryDirectory(prefix="edgepose-int8det-")
        int8 = quantize_model(args.fp32, args.calib, method=args.method, out_dir=tmp.name, progress=True,
                              float_depthwise=args.float_depthwise)

    from edgepose.model_meta import find_model
    int8 = find_model(int8)             # a folder holding an "int8" or a "mixed" model
    gt_json = glob.glob(os.path.join(args.data, "*.json"))
    gt_json = [g for g in gt_json if "keypoints" in os.path.basename(g)] or gt_json
    import json
    with open(gt_json[0]) as f:
        gt = json.load(f)
    images = [(im["id"], os.path.join(args.data, "val2017", im["file_name"])) for im in gt["images"]]

    dets = {"fp32": Detector(args.fp32, threads=args.threads, precision="fp32",
                             score_threshold=args.score_threshold, max_detections=100),
            "int8": Detector(int8, threads=args.threads, precision="int8", fp16=False,
                             score_threshold=args.score_threshold, max_detections=100)}
    results = {k: {} for k in dets}
    canvases = []
    for image_id, path in images:
        img = cv2.imread(path)
        canvases.append(dets["fp32"].preprocess(img)[0])
        for k, d in dets.items():
            boxes, scores = d(img)
            results[k][image_id] = (boxes, scores)
    aps = {k: evaluate_boxes(gt_json[0], results[k]) for k in dets}

    times = {k: [] for k in dets}
    for _ in range(args.repeat):
        for k, d in dets.items():
            t = time.perf_counter()
            for c in canvases:
                d.inference(c)
            times[k].append((time.perf_counter() - t) / len(canvases))
    best = {k: min(v) for k, v in times.items()}

    print(f"images: {len(images)} ({args.data}); int8 model: {int8}")
    for k in dets:
        print(f"{k}: person box AP {aps[k]['AP']:.4f}  AP50 {aps[k]['AP50']:.4f}  AR100 {aps[k]['AR100']:.4f}  "
              f"forward {best[k] * 1000:.2f} ms ({args.threads} thread(s))")
    print(f"AP difference int8 - fp32: {100 * (aps['int8']['AP'] - aps['fp32']['AP']):+.2f} AP points")
    print(f"speed ratio int8/fp32 forward time: {best['int8'] / best['fp32']:.3f} "
          f"({best['fp32'] / best['int8']:.2f}x {'faster' if best['int8'] < best['fp32'] else 'slower'})")
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
