"""INT8 / mixed vs FP32 person detector: box AP on a COCO val set, and speed, in one process.

    flock /work/bench.lock python benchmarks/int8_detector.py --fp32 MODEL_DIR \
        --quantized Q_DIR [Q_DIR ...] [--data ../shared/data/coco_kp17_val2017_merged] [--threads 1]

Without --quantized, the fp32 model is first quantised with the default `edgepose quantize`
(speed + accuracy) into a temporary folder (--calib: the shared calibration folders; never the
val images). Box AP by the official protocol: every detection at or above the config's test
score threshold (the metadata's detector.score_threshold, 0.05 for RTMDet), up to 100 per
image, for every model alike. Speed: model forward only on the letterboxed val images, all
models interleaved slice by slice (order alternating) so all see the same machine load;
per-image time is the median slice, and the ratio to fp32 is printed (figures on a shared
machine: read the ratios).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


SHARED = os.environ.get("EDGEPOSE_SHARED",
                        os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fp32", required=True)
    ap.add_argument("--quantized", "--int8", nargs="+", default=None, dest="quantized")
    ap.add_argument("--calib", nargs="+", default=sorted(glob.glob(os.path.join(SHARED, "data", "calib_*"))))
    ap.add_argument("--data", default=os.path.join(SHARED, "data", "coco_kp17_val2017_merged"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--slices", type=int, default=7, help="interleaved timing slices per model (median)")
    ap.add_argument("--slice-images", type=int, default=20, help="images per timing slice")
    args = ap.parse_args(argv)

    import cv2
    import numpy as np
    from edgepose.model_meta import ModelMeta, find_model
    from edgepose.quantization.coco_eval import evaluate_boxes
    from edgepose.quantization.compare import ap_score_threshold
    from edgepose.runtime.detector import Detector

    tmp = None
    quantized = args.quantized
    if not quantized:
        import tempfile
        from edgepose.quantization.quantize_api import quantize_model
        tmp = tempfile.TemporaryDirectory(prefix="edgepose-int8det-")
        quantized = [quantize_model(args.fp32, args.calib, out_dir=tmp.name, progress=True, threads=args.threads)]

    gt_json = glob.glob(os.path.join(args.data, "*.json"))
    gt_json = [g for g in gt_json if "keypoints" in os.path.basename(g)] or gt_json
    with open(gt_json[0]) as f:
        gt = json.load(f)
    images = [(im["id"], os.path.join(args.data, "val2017", im["file_name"])) for im in gt["images"]]

    fp32_json = find_model(args.fp32, "fp32")
    thr = ap_score_threshold(ModelMeta.load(fp32_json))
    dets = {"fp32": Detector(fp32_json, threads=args.threads, precision="fp32", score_threshold=thr,
                             max_detections=100)}
    for q in quantized:
        qj = find_model(q, "int8")
        m = ModelMeta.load(qj)
        q = m.quantization or {}
        steps = "+".join(k for k, on in (("cle", bool(q.get("cle", {}).get("pairs"))),
                                         ("output-error", q.get("output_error_scales")),
                                         ("adaround", q.get("adaround")), ("bias", q.get("bias_correction"))) if on)
        label = f"{os.path.basename(os.path.dirname(os.path.dirname(qj)))}/{m.name} ({q.get('mode', m.precision)}, " \
                f"{q.get('int8_layers', '?')} int8 layers, {steps or 'nearest'})"
        dets[label] = Detector(qj, threads=args.threads, precision="int8", fp16=False, score_threshold=thr,
                               max_detections=100)
    results = {k: {} for k in dets}
    canvases = []
    for image_id, path in images:
        img = cv2.imread(path)
        canvases.append(dets["fp32"].preprocess(img)[0])
        for k, d in dets.items():
            results[k][image_id] = d(img)
    aps = {k: evaluate_boxes(gt_json[0], results[k]) for k in dets}

    per_slice = {k: [] for k in dets}
    keys = list(dets)
    n = min(args.slice_images, len(canvases))
    for k in keys:                                  # warm-up
        dets[k].inference(canvases[0])
    for s in range(args.slices):
        chunk = canvases[(s * n) % len(canvases):][:n] or canvases[:n]
        for k in (keys if s % 2 == 0 else keys[::-1]):
            t = time.perf_counter()
            for c in chunk:
                dets[k].inference(c)
            per_slice[k].append((time.perf_counter() - t) / len(chunk))
    med = {k: float(np.median(v)) for k, v in per_slice.items()}

    print(f"images: {len(images)} ({args.data}); box AP: all detections >= score {thr} "
          f"(config test threshold), <= 100 per image; {args.threads} thread(s); shared machine: read ratios")
    for k in dets:
        print(f"{k}: box AP {aps[k]['AP']:.4f} ({100 * (aps[k]['AP'] - aps['fp32']['AP']):+.2f} vs fp32)  "
              f"AP50 {aps[k]['AP50']:.4f}  forward {med[k] * 1000:.2f} ms  "
              f"time x{med[k] / med['fp32']:.3f} of fp32 ({med['fp32'] / med[k]:.2f}x speed)")
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
