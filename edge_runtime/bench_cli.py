"""`edgepose bench`: FPS and per-stage latency on this device, with ONNX Runtime as baseline."""
from __future__ import annotations

import argparse
import os


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--det", nargs="+", required=True, metavar="MODEL",
                   help="converted detector folder(s)/.json; int8 variants are picked from these too")
    p.add_argument("--pose", nargs="+", required=True, metavar="MODEL",
                   help="converted pose model folder(s)/.json (fp32 and e.g. an `edgepose quantize` output)")
    p.add_argument("--precision", nargs="+", default=["fp32", "fp16", "int8"],
                   choices=["fp32", "fp16", "int8", "mixed"], help="precisions to run (missing ones are skipped)")
    p.add_argument("--threads", nargs="+", type=int, default=None,
                   help="thread counts: ncnn rows at each (besides the default schedule) and ONNX Runtime at each "
                        "(default: 1 .. cores)")
    p.add_argument("--device", nargs="+", default=["cpu"], metavar="DEVICE",
                   help="devices to run: cpu, gpu (ncnn's default Vulkan device), gpu:N; e.g. --device cpu gpu "
                        "gives GPU rows beside the CPU rows (int8 rows stay CPU-only)")
    p.add_argument("--images", nargs="+", default=None,
                   help="images or folders with people, e.g. one with 1 person and one with a crowd (required)")
    p.add_argument("--persons", nargs="+", type=int, default=[1, 3, 6],
                   help="person counts to measure; the largest means 'at least' (default 1 3 6)")
    p.add_argument("--seconds", type=float, default=5.0, help="measured time per row (default 5)")
    p.add_argument("--frames", type=int, default=None, help="measure this many frames per row instead")
    p.add_argument("--rounds", type=int, default=5,
                   help="split each row's time into this many slices, interleaved with the other rows; "
                        "FPS is the median slice (default 5)")
    p.add_argument("--extra-rounds", type=int, default=None,
                   help="at most this many more slices for rows whose slices were mostly slowed by other load "
                        "(default: --rounds; 0 with --frames)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--det-every", type=int, default=1, help="detector every N frames (default 1: every frame)")
    p.add_argument("--concurrency", nargs="+", type=int, default=[1],
                   help="persons run at once for the fixed-thread rows (e.g. 1 2: each thread count with each); "
                        "the 'default' row always runs the schedule's own choice")
    p.add_argument("--no-default", action="store_true", help="skip the row with the default schedule")
    p.add_argument("--load", type=int, default=0, metavar="N",
                   help="also measure the default rows and ONNX Runtime (most threads) with N busy processes "
                        "competing (they stop by themselves); reports p50/p99")
    p.add_argument("--load-seconds", type=float, default=None,
                   help="time per row under load (default: --seconds)")
    p.add_argument("--no-baseline", action="store_true", help="skip the ONNX Runtime baseline")
    p.add_argument("--no-memory", action="store_true",
                   help="skip the peak-memory measurement (one fresh process per configuration)")
    p.add_argument("--det-onnx", help="ONNX file of the detector for the baseline (default: the convert source)")
    p.add_argument("--pose-onnx", help="ONNX file of the pose model for the baseline (default: the convert source)")
    p.add_argument("-o", "--output", default="bench-results", help="report folder (JSON, Markdown, PNG)")


def main(args) -> int:
    from .bench.report import BEST_COLUMNS, open_output, table_lines, write
    from .bench.run import bench
    from .bench.scenarios import expand_images
    from .schedule import default_plan
    from edgepose.errors import BadArgumentError

    if not args.images:
        raise BadArgumentError("bench needs --images: photos (or folders of them) with 1, 3 and 6+ people")
    images = expand_images(args.images)
    if not images:
        raise BadArgumentError(f"--images {' '.join(args.images)}: no image files there "
                               f"(.jpg, .jpeg, .png, .bmp, .webp)")
    threads = args.threads or list(range(1, (os.cpu_count() or 1) + 1))
    if any(t < 1 for t in threads):
        raise BadArgumentError(f"--threads must be positive, got {threads}")
    if any(c < 1 for c in args.concurrency) or args.load < 0:
        raise BadArgumentError(f"--concurrency must be positive and --load 0 or more, got {args.concurrency}, "
                               f"{args.load}")
    settings = ([] if args.no_default else [(None, None)]) + [(t, c) for t in threads for c in args.concurrency]
    outputs = open_output(args.output)      # a bad -o fails now, not after minutes of timing
    print(default_plan().describe())
    try:
        report = bench(args.det, args.pose, images, precisions=args.precision, threads=threads,
                       targets=sorted(set(args.persons)), seconds=None if args.frames else args.seconds,
                       frames=args.frames, warmup=args.warmup, det_every=args.det_every,
                       baseline=not args.no_baseline, det_onnx=args.det_onnx, pose_onnx=args.pose_onnx,
                       rounds=args.rounds, extra_rounds=args.extra_rounds, memory=not args.no_memory,
                       settings=settings, load=args.load, load_seconds=args.load_seconds, devices=args.device)
    except BaseException:
        outputs.rollback()
        raise
    print()
    for line in table_lines(report["rows"]):
        print(line)
    if report.get("best"):
        print("\nbest setting of each (detection + pose):")
        for line in table_lines(report["best"], BEST_COLUMNS):
            print(line)
    paths = write(report, outputs)
    print("\nwritten: " + ", ".join(paths.values()))
    return 0
