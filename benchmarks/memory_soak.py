"""RSS growth of the video pipeline over a long run (target: < 20 MB over 2,000 frames).

Runs PoseTracker (detector every N frames, pose, pose NMS, tracking, One-Euro
smoothing) plus drawing over `--frames` frames of a video, looping it, and
prints the resident set size after a warm-up (baseline) and at the end.

    python benchmarks/memory_soak.py --det DET_MODEL --pose POSE_MODEL \
        [--video ../shared/data/video_mmpose_demo/body3d_demo.mp4] [--frames 2000]

Without --det/--pose, the shared RTMDet-nano and reference whole-body ONNX are
converted into a temporary folder first (needs the host toolchain).
Exit code 1 when the growth exceeds --limit-mb.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
SHARED = os.environ.get("EDGEPOSE_SHARED", os.path.join(REPO, "..", "shared"))


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def frames_forever(path):
    import cv2
    while True:
        cap = cv2.VideoCapture(path)
        n = 0
        while True:
            ok, img = cap.read()
            if not ok:
                break
            n += 1
            yield img
        cap.release()
        if n == 0:
            raise SystemExit(f"{path}: no frames")


def default_models(work: str):
    from edgepose.convert.api import convert
    det = convert(os.path.join(SHARED, "models/rtmdet-nano-person/rtmdet-nano-person_raw-heads.onnx"),
                  os.path.join(work, "det"), log=lambda s: None)
    pose = convert(os.path.join(SHARED, "reference/official/rtmpose-t_wholebody_256x192.onnx"),
                   os.path.join(work, "pose"), log=lambda s: None)
    return det, pose


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--det")
    ap.add_argument("--pose")
    ap.add_argument("--video", default=os.path.join(SHARED, "data/video_mmpose_demo/body3d_demo.mp4"))
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--det-every", type=int, default=5)
    ap.add_argument("--limit-mb", type=float, default=20.0)
    args = ap.parse_args()

    from edgepose.runtime.detector import Detector
    from edgepose.runtime.draw import draw_mmpose
    from edgepose.runtime.pose import PoseEstimator
    from edgepose.runtime.pose_tracker import PoseTracker
    from edgepose.runtime.results_json import coco_results

    with tempfile.TemporaryDirectory(prefix="edgepose-soak-") as work:
        det, pose = (args.det, args.pose) if args.det and args.pose else default_models(work)

        class Models:
            detector = Detector(det, threads=args.threads, precision="fp32")
            pose_estimator = PoseEstimator(pose, threads=args.threads, precision="fp32")

        tracker = PoseTracker(Models, det_every=args.det_every)
        frames = frames_forever(args.video)
        samples = []
        persons = 0
        t0 = time.perf_counter()
        base = None
        for i in range(args.frames):
            img = next(frames)
            poses = tracker(img)
            draw_mmpose(img, poses.keypoints, poses.scores, poses.boxes, poses.track_ids)
            coco_results(i, poses.boxes, poses.box_scores, poses.keypoints, poses.scores, poses.track_ids)
            persons += len(poses)
            if i + 1 == args.warmup:
                base = rss_mb()
            if (i + 1) % 250 == 0:
                samples.append((i + 1, rss_mb()))
                print(f"  frame {i + 1:5d}: RSS {samples[-1][1]:.1f} MB", flush=True)
        elapsed = time.perf_counter() - t0
    end = rss_mb()
    growth = end - base
    print(f"memory soak: {args.frames} frames ({os.path.basename(args.video)} looped, det every "
          f"{args.det_every}, {persons / args.frames:.2f} persons/frame, {args.frames / elapsed:.1f} FPS)")
    print(f"  RSS baseline after {args.warmup} frames: {base:.1f} MB, at the end: {end:.1f} MB, "
          f"growth {growth:+.1f} MB (limit {args.limit_mb:.0f} MB) -> {'OK' if growth < args.limit_mb else 'FAIL'}")
    return 0 if growth < args.limit_mb else 1


if __name__ == "__main__":
    sys.exit(main())
