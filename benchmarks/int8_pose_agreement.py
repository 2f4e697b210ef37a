"""INT8 / mixed pose models vs their fp32 model on held-out real person crops.

    python benchmarks/int8_pose_agreement.py --fp32 MODEL_DIR --quantized Q_DIR [Q_DIR ...]
        [--data ../shared/data/coco_kp17_val2017_merged] [--max-people 150]

Crops come from the ground-truth person boxes of a COCO val set (never the calibration
images), made exactly as the runtime makes them. Prints, per quantised model, SimCC
argmax-within-one-bin agreement, mean keypoint deviation (model-input pixels), logit cosine,
and the forward time ratio vs fp32 measured in the same process.
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


def val_crops(data: str, size, max_people: int):
    import cv2
    import numpy as np
    from edgepose.runtime.preprocess import boxes_to_center_scale, crop_person

    gt_path = [g for g in glob.glob(os.path.join(data, "*.json")) if "keypoints" in os.path.basename(g)][0]
    with open(gt_path) as f:
        gt = json.load(f)
    files = {im["id"]: im["file_name"] for im in gt["images"]}
    crops = []
    for a in gt["annotations"]:
        x, y, w, h = a["bbox"]
        if a.get("iscrowd") or min(w, h) < 32:
            continue
        img = cv2.imread(os.path.join(data, "val2017", files[a["image_id"]]))
        c, s = boxes_to_center_scale(np.array([[x, y, x + w, y + h]]), size)
        crops.append(crop_person(img, c[0], s[0], size))
        if len(crops) >= max_people:
            break
    return crops


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fp32", required=True)
    ap.add_argument("--quantized", nargs="+", required=True)
    ap.add_argument("--data", default=os.path.join(SHARED, "data", "coco_kp17_val2017_merged"))
    ap.add_argument("--max-people", type=int, default=150)
    ap.add_argument("--repeat", type=int, default=7, help="interleaved timing slices per model (median)")
    args = ap.parse_args(argv)

    from edgepose.model_meta import ModelMeta, find_model
    from edgepose.quantization.calib_data import to_chw
    from edgepose.quantization.calibration import make_net, run_net
    from edgepose.quantization.sensitivity import compare_outputs

    ref_json = find_model(args.fp32, "fp32")
    meta = ModelMeta.load(ref_json)
    crops = [to_chw(c) for c in val_crops(args.data, (meta.input_width, meta.input_height), args.max_people)]
    blobs = list(meta.output_blobs.values())

    def load(json_path, int8):
        m = ModelMeta.load(json_path)
        return make_net(m.param_path(json_path), m.bin_path(json_path), int8=int8, threads=1), m.input_blob

    nets = {"fp32": load(ref_json, False)}
    metas = {}
    for q in args.quantized:
        qj = find_model(q, "int8")
        metas[qj] = ModelMeta.load(qj)
        nets[qj] = load(qj, True)
    outputs = {k: [run_net(net, blob, x, blobs) for x in crops] for k, (net, blob) in nets.items()}
    # speed: all models interleaved slice by slice (order alternating), median slice per model,
    # so every model sees the same machine load; read the ratios (shared machine)
    import numpy as np
    slices = {k: [] for k in nets}
    keys = list(nets)
    chunk = crops[:25]
    for r in range(args.repeat):
        for k in (keys if r % 2 == 0 else keys[::-1]):
            net, blob = nets[k]
            t = time.perf_counter()
            for x in chunk:
                run_net(net, blob, x, blobs)
            slices[k].append((time.perf_counter() - t) / len(chunk))
    best = {k: float(np.median(v)) for k, v in slices.items()}
    print(f"{meta.name}: {len(crops)} held-out person crops from {args.data}; "
          f"fp32 forward {best['fp32'] * 1000:.1f} ms (1 thread)")
    for qj, qm in metas.items():
        s = compare_outputs(meta, outputs["fp32"], outputs[qj])
        fl = list((qm.quantization or {}).get("float_layers", {}))[:8]
        print(f"{qm.name} ({qm.precision}, float layers: {', '.join(fl) or '-'}): argmax within one bin "
              f"{s.agreement:.4f}, mean keypoint deviation {s.mean_deviation_px:.2f} px, logit cosine "
              f"{s.cosine:.5f}, forward {best[qj] * 1000:.1f} ms (time x{best[qj] / best['fp32']:.3f} of fp32, "
              f"{best['fp32'] / best[qj]:.2f}x speed, 1 thread); {(qm.quantization or {}).get('int8_layers')} int8 layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
