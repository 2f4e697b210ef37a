"""The issue-13 table in one command: default schedule and best settings vs ONNX Runtime.

    python benchmarks/issue13_table.py [--seconds 6] [--rounds 6] [--load 2] [-o issue13-table]

RTMDet-nano person (shared, real weights, fp32) + the reference whole-body RTMPose-t converted
here (`edgepose convert`), and the INT8 pair as the README recommends (detector with float
depthwise convolutions, pose pure INT8). One process, rows in interleaved slices:
edgepose `default` (what `Wholebody(det=..., pose=...)` does), x1, x2 (one person at a
time) and x1 c2 (two persons in flight), against ONNX Runtime at 1 and 2 threads on the same
ONNX files, on a 1-person photo and COCO val 000000001000 (15 persons). Ratios compare
detection + pose only (decoding, tracking and drawing are out of the ratio for both).
Also printed: the 2-core compute limit (GMAC per frame / measured single-core GMAC/s, the x1
row), the default row's p50/p99 with `--load` busy processes competing, and the time of
`draw_mmpose` for 15 whole-body persons (the annotated COCO-WholeBody poses of val 1000,
12 persons, plus 3 of them shifted).
Data: $EDGEPOSE_SHARED, else ../shared beside the checkout. Needs the host extra.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_table import prepare_models, shared_dir  # noqa: E402  (same folder)

SINGLE = "data/calib_mmpose_examples/human-pose.jpeg"
CROWD = "data/coco_wholebody_val_gt/images/000000001000.jpg"
WHOLEBODY_GT = "data/coco_wholebody_val_gt/annotations/coco_wholebody_example_gt.json"
SETTINGS = [(None, None), (1, 1), (2, 1), (1, 2)]
MMDEPLOY_DET = "models/rtmdet-nano-person-mmdeploy/end2end.onnx"


def drawing_ms(shared: Path, repeats: int = 200) -> dict:
    """Median / best ms of draw_mmpose for 15 whole-body persons on the crowd photo."""
    import cv2
    import numpy as np

    from edgepose.runtime.draw import draw_mmpose

    data = json.loads((shared / WHOLEBODY_GT).read_text())
    kp, sc, boxes = [], [], []
    for a in data["annotations"]:
        if a["image_id"] != 1000:
            continue
        flat = np.asarray(a["keypoints"] + a["foot_kpts"] + a["face_kpts"] + a["lefthand_kpts"]
                          + a["righthand_kpts"], np.float32).reshape(133, 3)
        kp.append(flat[:, :2])
        sc.append(np.where(flat[:, 2] > 0, 0.9, 0.0))
        x, y, w, h = a["bbox"]
        boxes.append([x, y, x + w, y + h])
    kp, sc, boxes = np.stack(kp), np.stack(sc).astype(np.float32), np.asarray(boxes, np.float32)
    extra = 15 - len(kp)
    kp = np.concatenate([kp, kp[:extra] + 25]).astype(np.float32)
    sc = np.concatenate([sc, sc[:extra]])
    boxes = np.concatenate([boxes, boxes[:extra] + 25])
    image = cv2.imread(str(shared / CROWD))
    ids = list(range(len(kp)))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        draw_mmpose(image, kp, sc, boxes, ids)
        times.append(time.perf_counter() - t0)
    return {"persons": len(kp), "median_ms": 1000 * statistics.median(times), "best_ms": 1000 * min(times)}


def _row(report, precision, setting, scenario_prefix):
    return next((r for r in report["rows"] if r["precision"] == precision and r["setting"] == setting
                 and r["scenario"].startswith(scenario_prefix)), None)


def _base(report, threads, scenario_prefix):
    return next((b for b in report["baseline_rows"] if b["threads"] == threads
                 and b["scenario"].startswith(scenario_prefix)), None)


def _f(v, fmt="{:.1f}"):
    return "-" if v is None else fmt.format(v)


def summarize(report, drawing) -> dict:
    lines = ["| precision | image | edgepose setting | det+pose ms | ORT x1 ms | ORT x2 ms | x ORT x1 | x ORT x2 |",
             "|---|---|---|---|---|---|---|---|"]
    scen = {"1p": "1 person", "15p": "15 persons"}
    for precision in dict.fromkeys(r["precision"] for r in report["rows"]):
        for prefix in ("1p", "15p"):
            b1, b2 = _base(report, 1, prefix), _base(report, 2, prefix)
            ms1 = 1000 / b1["infer_fps"] if b1 and b1.get("infer_fps") else None
            ms2 = 1000 / b2["infer_fps"] if b2 and b2.get("infer_fps") else None
            for setting in ("default", "x1", "x2", "x1 c2"):
                r = _row(report, precision, setting, prefix)
                if r is None:
                    continue
                ms = 1000 / r["infer_fps"] if r.get("infer_fps") else None
                lines.append(f"| {precision} | {scen[prefix]} | {setting} | {_f(ms)} | {_f(ms1)} | {_f(ms2)} | "
                             f"{_f(ms1 / ms if ms and ms1 else None, '{:.2f}')}x | "
                             f"{_f(ms2 / ms if ms and ms2 else None, '{:.2f}')}x |")
    lines += ["", "Best setting of each (fastest edgepose setting vs fastest ONNX Runtime thread count):", "",
              "| precision | image | edgepose | ms | ORT threads | ms | ratio |", "|---|---|---|---|---|---|---|"]
    for b in report["best"]:
        lines.append(f"| {b['precision']} | {b['scenario']} | {b['setting']} | "
                     f"{_f(1000 / b['infer_fps'] if b.get('infer_fps') else None)} | {b['baseline_threads']} | "
                     f"{_f(1000 / b['baseline_infer_fps'] if b.get('baseline_infer_fps') else None)} | "
                     f"{_f(b['ratio'], '{:.2f}')}x |")
    extra = {}
    seq = _row(report, "fp32", "x1", "15p")
    default = _row(report, "fp32", "default", "15p")
    if seq and default and seq.get("infer_fps") and default.get("infer_fps"):
        single_core = seq["gmac_per_frame"] * seq["infer_fps"]      # GMAC/s of det+pose on one core
        cores = min(2, os.cpu_count() or 1)
        limit_ms = 1000 * default["gmac_per_frame"] / (cores * single_core)
        default_ms = 1000 / default["infer_fps"]
        extra["compute_limit"] = {"gmac_per_frame": default["gmac_per_frame"], "single_core_gmac_s": single_core,
                                  "limit_ms": limit_ms, "default_ms": default_ms, "ratio": default_ms / limit_ms}
        lines += ["", f"{cores}-core compute limit, 15 persons fp32: {default['gmac_per_frame']:.2f} GMAC/frame / "
                      f"({cores} x {single_core:.1f} GMAC/s measured on one core) = {limit_ms:.1f} ms; default "
                      f"{default_ms:.1f} ms = {default_ms / limit_ms:.2f}x the limit"]
    for precision in ("fp32", "int8"):
        r = _row(report, precision, "default", "15p")
        if r and r.get("loaded_p99_ms"):
            extra[f"loaded_{precision}"] = {k: r[k] for k in ("p50_ms", "loaded_p50_ms", "loaded_p99_ms",
                                                              "loaded_p99_over_quiet_p50")}
            lines.append(f"{precision} default, 15 persons, {report['load']['busy_processes']} busy processes: "
                         f"p50 {r['loaded_p50_ms']:.0f} ms, p99 {r['loaded_p99_ms']:.0f} ms = "
                         f"{r['loaded_p99_over_quiet_p50']:.2f}x the quiet p50 ({r['p50_ms']:.0f} ms, whole frame)")
    b = _base(report, max(t for t in report["settings"]["threads"]), "15p")
    if b and b.get("loaded_p99_ms"):
        lines.append(f"ONNX Runtime x{b['threads']}, same load: p50 {b['loaded_p50_ms']:.0f} ms, "
                     f"p99 {b['loaded_p99_ms']:.0f} ms ({b['loaded_p99_over_quiet_p50']:.2f}x its quiet p50)")
    lines.append(f"draw_mmpose, {drawing['persons']} whole-body persons: median {drawing['median_ms']:.2f} ms, "
                 f"best {drawing['best_ms']:.2f} ms")
    lines.append(f"baseline: {report.get('baseline_name')}; {report['schedule']['text']}")
    return {"table": "\n".join(lines), **extra, "drawing": drawing}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=6.0, help="measured seconds per row")
    ap.add_argument("--rounds", type=int, default=6, help="interleaved slices per row")
    ap.add_argument("--extra-rounds", type=int, default=None)
    ap.add_argument("--load", type=int, default=2, help="busy processes for the loaded p50/p99 (0: skip)")
    ap.add_argument("--load-seconds", type=float, default=8.0)
    ap.add_argument("--precision", nargs="+", default=["fp32", "int8"])
    ap.add_argument("--work", default=None, help="where converted models are kept (default: a temp folder)")
    ap.add_argument("--baseline", choices=("rtmlib", "ort"), default="rtmlib",
                    help="rtmlib: rtmlib 0.0.16 as shipped (ONNX Runtime's default spin-waiting) on the RTMDet-nano "
                         "deploy export with NMS inside, edgepose on the same file converted; ort: ONNX Runtime "
                         "without spin-waiting (its fastest here) with edgepose's pre/post on the raw-heads export")
    ap.add_argument("-o", "--output", default="issue13-table")
    args = ap.parse_args(argv)

    from edgepose.runtime.bench.report import write
    from edgepose.runtime.bench.run import bench

    shared = shared_dir()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="edgepose-issue13-"))
    dets, poses, det_onnx, pose_onnx = prepare_models(work, shared, quantize="int8" in args.precision)
    if args.baseline == "rtmlib":
        from edgepose.convert.api import convert
        det_onnx = str(shared / MMDEPLOY_DET)
        mm_dir = work / "det-mmdeploy"
        if not any(mm_dir.glob("*.json")):
            convert(det_onnx, str(mm_dir), check=False, log=print)
        dets = [str(mm_dir)] + dets[1:]
    images = [str(shared / SINGLE), str(shared / CROWD)]
    report = bench(dets, poses, images, precisions=args.precision, threads=[1, 2], targets=(1, 15),
                   seconds=args.seconds, det_onnx=det_onnx, pose_onnx=pose_onnx, rounds=args.rounds,
                   extra_rounds=args.extra_rounds, memory=False, settings=SETTINGS, load=args.load,
                   load_seconds=args.load_seconds, baseline_as_shipped=args.baseline == "rtmlib")
    write(report, args.output)
    out = summarize(report, drawing_ms(shared))
    print("\n" + out["table"])
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "table.md"), "w") as f:
        f.write(out["table"] + "\n")
    with open(os.path.join(args.output, "table.json"), "w") as f:
        json.dump({k: v for k, v in out.items() if k != "table"}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
