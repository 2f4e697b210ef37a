"""Peak memory of one pipeline (detector + pose at one precision and thread count), measured
in a fresh process: in the bench process every configuration is loaded at once and freed
memory is reused, so its peak says little about what one configuration needs on a board.

    python -m edgepose.runtime.bench.memory --det D --pose P --precision fp32 --threads 1 --image crowd.jpg
prints {"peak_rss_mb": ..., "imports_rss_mb": ...} as JSON.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Dict, Optional


def measure_in_child(det_model: str, pose_model: str, precision: str, threads: Optional[int], image: str,
                     frames: int = 3, timeout: float = 600.0,
                     concurrency: Optional[int] = None) -> Dict[str, Optional[float]]:
    """{"peak_rss_mb", "imports_rss_mb", "pipeline_mb"}; values None if the child failed.
    threads/concurrency None: the schedule's choice."""
    cmd = [sys.executable, "-m", "edgepose.runtime.bench.memory", "--det", det_model, "--pose", pose_model,
           "--precision", precision, "--threads", str(threads or 0), "--concurrency", str(concurrency or 0),
           "--image", image, "--frames", str(frames)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        out = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
    except (subprocess.TimeoutExpired, ValueError, IndexError, OSError):
        out = None
    if not out:
        return {"peak_rss_mb": None, "imports_rss_mb": None, "pipeline_mb": None}
    out["pipeline_mb"] = out["peak_rss_mb"] - out["imports_rss_mb"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--det", required=True)
    ap.add_argument("--pose", required=True)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--threads", type=int, default=1, help="0: the schedule's choice")
    ap.add_argument("--concurrency", type=int, default=0, help="0: the schedule's choice")
    ap.add_argument("--image", required=True)
    ap.add_argument("--frames", type=int, default=3)
    args = ap.parse_args(argv)

    import cv2
    import ncnn  # noqa: F401  (counted with the imports, not with the pipeline)
    import numpy

    from .pipeline import load_pipeline, pipeline_runner
    from .timing import peak_rss_mb

    imports = peak_rss_mb()
    with open(args.image, "rb") as f:
        encoded = f.read()
    if cv2.imdecode(numpy.frombuffer(encoded, numpy.uint8), cv2.IMREAD_COLOR) is None:
        print(f"{args.image}: not a readable image", file=sys.stderr)
        return 2
    from edgepose.errors import EdgeposeError

    try:
        det, pose, _ = load_pipeline(args.det, args.pose, args.precision, args.threads or None,
                                     args.concurrency or None)
        pipeline_runner(det, pose, encoded)(warmup=0, frames=args.frames, seconds=None)
    except EdgeposeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"peak_rss_mb": peak_rss_mb(), "imports_rss_mb": imports}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
