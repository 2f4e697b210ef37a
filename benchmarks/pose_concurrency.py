"""What running persons concurrently on separate ncnn extractors buys (host or board).

    python benchmarks/pose_concurrency.py MODEL [--persons 8] [--repeat 5]

Times PoseEstimator on one image with N boxes for (threads, concurrency) in
{1, 2} x {1, 2} and prints ms per frame and the speed-up vs threads=1, concurrency=1
measured in the same process.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="converted pose model (folder, .json or .ncnn.param)")
    ap.add_argument("--persons", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--precision", default="fp32")
    args = ap.parse_args(argv)
    from edgepose.runtime.pose import PoseEstimator
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    xy = rng.uniform(0, 1000, (args.persons, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(80, 300, (args.persons, 2))], 1).astype(np.float32)
    results = {}
    for threads in (1, 2):
        for conc in (1, 2):
            est = PoseEstimator(args.model, threads=threads, precision=args.precision, concurrency=conc)
            est(image, boxes)  # warm-up
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                est(image, boxes)
                times.append(time.perf_counter() - t)
            est.close()
            results[(threads, conc)] = float(np.median(times))
    base = results[(1, 1)]
    print(f"cpus={os.cpu_count()} persons={args.persons} precision={args.precision}")
    for (threads, conc), t in results.items():
        print(f"threads={threads} concurrency={conc}: {t * 1000:7.1f} ms/frame  speed-up x{base / t:.2f}")


if __name__ == "__main__":
    main()
