"""CPU vs GPU (ncnn Vulkan) parity of the whole pipeline: detector boxes and pose keypoints.

The CPU at fp32 is the reference. The GPU runs the same models (detector and pose on the GPU,
the pose on the GPU's own boxes). Per image: same box count, box corner difference (px); per
keypoint: distance (px) to the CPU's. The reference pose weights are seeded random, so SimCC
logits are nearly flat and a rounding difference can move an argmax to another bin far away:
a keypoint more than 0.5 px off counts as a genuine tie when, in the CPU's logits, the GPU's
bin is within twice the logit difference of the CPU's best bin (same rule as runtime_parity.py).

    python benchmarks/gpu_parity.py --det DET --pose POSE [--gpu-precision fp32|fp16]
                                    [--det-precision fp32|fp16] [--device gpu]
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
IMAGES = "data/coco_wholebody_val_gt/images"


def shared_dir() -> Path:
    return Path(os.environ.get("EDGEPOSE_SHARED") or REPO.parent / "shared")


def example_images():
    return sorted(glob.glob(str(shared_dir() / IMAGES / "*.jpg")))


def _pose_stages(est, image, boxes):
    crops, centers, scales, runs = est.preprocess(image, boxes)
    sx, sy = est.inference(crops)
    kp, sc = est.postprocess(sx, sy, centers, scales, runs)
    return kp, sx, sy


def _tie(ref_x, ref_y, got_x, got_y) -> bool:
    err = max(np.abs(got_x - ref_x).max(), np.abs(got_y - ref_y).max())
    gap = max(ref_x.max() - ref_x[got_x.argmax()], ref_y.max() - ref_y[got_y.argmax()])
    return gap <= 2 * err


def parity_figures(det, pose, images, gpu_precision="fp32", device="gpu", threads=1, det_precision=None):
    import cv2
    from edgepose.runtime.detector import Detector
    from edgepose.runtime.pose import PoseEstimator
    cpu_det = Detector(det, precision="fp32", threads=threads)
    cpu_pose = PoseEstimator(pose, precision="fp32", threads=threads)
    gpu_det = Detector(det, precision=det_precision or gpu_precision, device=device, threads=threads)
    gpu_pose = PoseEstimator(pose, precision=gpu_precision, device=device, threads=threads)
    box_counts_differ, box_px, dists, not_ties, ties, finite = [], 0.0, [], [], 0, True
    for path in images:
        img = cv2.imread(path)
        name = os.path.basename(path)
        cb, _ = cpu_det(img)
        gb, _ = gpu_det(img)
        finite &= bool(np.isfinite(gb).all())
        if len(cb) != len(gb):
            box_counts_differ.append((name, len(cb), len(gb)))
            continue
        if len(cb) == 0:
            continue
        box_px = max(box_px, float(np.abs(cb - gb).max()))
        ckp, cx, cy = _pose_stages(cpu_pose, img, cb)
        gkp, gx, gy = _pose_stages(gpu_pose, img, gb)
        finite &= bool(np.isfinite(gkp).all() and np.isfinite(gx).all() and np.isfinite(gy).all())
        d = np.linalg.norm(gkp - ckp, axis=2)
        dists.append(d.ravel())
        for n, k in zip(*np.nonzero(d > 0.5)):
            if _tie(cx[n, k], cy[n, k], gx[n, k], gy[n, k]):
                ties += 1
            else:
                not_ties.append((name, int(n), int(k), float(d[n, k])))
    d = np.concatenate(dists) if dists else np.zeros(0)
    gpu = gpu_pose.model.gpu
    return {
        "device": gpu.describe() if gpu else "cpu",
        "gpu_precision": gpu_pose.model.precision,
        "gpu_det_precision": gpu_det.model.precision,
        "images": len(images),
        "box_counts_differ": box_counts_differ,
        "max_box_px_diff": box_px,
        "keypoints": int(d.size),
        "all_finite": finite,
        "median_kp_px": float(np.median(d)) if d.size else 0.0,
        "max_kp_px": float(d.max()) if d.size else 0.0,
        "within_0.5px": float((d <= 0.5).mean()) if d.size else 1.0,
        "within_2px": float((d <= 2.0).mean()) if d.size else 1.0,
        "over_0.5px_genuine_ties": ties,
        "over_0.5px_not_ties": not_ties,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--det", required=True)
    p.add_argument("--pose", required=True)
    p.add_argument("--gpu-precision", default="fp32", choices=("fp32", "fp16"))
    p.add_argument("--det-precision", default=None, choices=("fp32", "fp16"),
                   help="GPU detector precision (default: --gpu-precision); fp32 isolates the pose model")
    p.add_argument("--device", default="gpu")
    a = p.parse_args(argv)
    fig = parity_figures(a.det, a.pose, example_images(), a.gpu_precision, a.device, det_precision=a.det_precision)
    print(json.dumps(fig, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
