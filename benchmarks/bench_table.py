"""Reproduce the issue-5 table with one command:

    python benchmarks/bench_table.py [--runs 3] [--seconds 5] [-o bench-table]

RTMDet-nano person (shared, real weights) + the reference whole-body RTMPose-t, converted
here to ncnn fp32 and quantized to int8 with our own quantizer; edgepose fp32 / fp16 / int8
at 1 and 2 threads vs ONNX Runtime on the same ONNX files, on a 1-person and a crowd image,
end-to-end FPS and the ratio, all in one process. The whole bench is repeated `--runs`
times and min / median / max FPS reported per row (how stable the machine is).
Needs the host extra (`pip install -e .[convert]`) and the shared assets (EDGEPOSE_SHARED).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def shared_dir() -> Path:
    return Path(os.environ.get("EDGEPOSE_SHARED", REPO.parent / "shared")).resolve()


def prepare_models(work: Path, shared: Path, log=print):
    from convert.api import convert
    from quantization.quantize_api import quantize_model

    det_onnx = shared / "models/rtmdet-nano-person/rtmdet-nano-person_raw-heads.onnx"
    pose_onnx = shared / "reference/official/rtmpose-t_wholebody_256x192.onnx"
    det_dir, pose_dir, q_dir = work / "det", work / "pose", work / "int8"
    if not (det_dir / "rtmdet-nano-person_raw-heads.json").exists():
        convert(str(det_onnx), str(det_dir), check=False, log=log)
    if not (pose_dir / "rtmpose-t_wholebody_256x192.json").exists():
        convert(str(pose_onnx), str(pose_dir), check=False, log=log)
    calib = [str(p) for p in sorted((shared / "data").glob("calib_*")) if p.is_dir()]
    det_q = q_dir / "rtmdet-nano-person_raw-heads-mixed"
    pose_q = q_dir / "rtmpose-t_wholebody_256x192-int8"
    # The detector as the README recommends (depthwise convs float, the rest int8: within 1 AP
    # of fp32); a collapsed pure-INT8 detector would find other people and time other work.
    # The pose model is pure INT8; its speed does not depend on the clip values, so the slow
    # per-layer output-error refinement is skipped there.
    if not det_q.exists():
        quantize_model(str(det_dir), calib, method="kl", out_dir=str(q_dir), float_depthwise=True, log=log)
    if not pose_q.exists():
        quantize_model(str(pose_dir), calib, method="kl", out_dir=str(q_dir), det_model=str(det_dir),
                       output_error=False, bias_correction=False, log=log)
    return [str(det_dir), str(det_q)], [str(pose_dir), str(pose_q)], str(det_onnx), str(pose_onnx)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--precision", nargs="+", default=["fp32", "fp16", "int8"])
    ap.add_argument("--work", default=None, help="where converted models are kept (default: a temp folder)")
    ap.add_argument("-o", "--output", default="bench-table")
    args = ap.parse_args(argv)

    from edge_runtime.bench.report import write
    from edge_runtime.bench.run import bench

    shared = shared_dir()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="edgepose-bench-"))
    dets, poses, det_onnx, pose_onnx = prepare_models(work, shared)
    # One person and a crowd, from the shared real photos.
    images = [str(shared / "data/calib_mmpose_examples/human-pose.jpeg"),
              *sorted(str(p) for p in (shared / "data/calib_openpose_media").glob("*.jpg"))]
    reports = []
    for run in range(args.runs):
        print(f"\n=== run {run + 1}/{args.runs}")
        reports.append(bench(dets, poses, images, precisions=args.precision, threads=args.threads,
                             targets=(1, 6), seconds=args.seconds, det_onnx=det_onnx, pose_onnx=pose_onnx))
        write(reports[-1], os.path.join(args.output, f"run{run + 1}"))

    keys = [(r["precision"], r["threads"], r["scenario"]) for r in reports[0]["rows"]]
    lines = ["| precision | threads | image | persons | FPS min / median / max | ORT FPS median | "
             "x ORT (median) | outside ncnn % (median) |", "|---|---|---|---|---|---|---|---|"]
    summary = []
    for key in keys:
        rows = [next(r for r in rep["rows"] if (r["precision"], r["threads"], r["scenario"]) == key)
                for rep in reports]
        fps = [r["fps"] for r in rows]
        base = [r.get("baseline_fps") for r in rows if r.get("baseline_fps")]
        med, bmed = statistics.median(fps), (statistics.median(base) if base else None)
        outside = statistics.median(r["outside_ncnn_pct"] for r in rows)
        summary.append({"precision": key[0], "threads": key[1], "scenario": key[2], "persons": rows[0]["persons"],
                        "fps": fps, "baseline_fps": base, "ratio_median": med / bmed if bmed else None,
                        "outside_ncnn_pct_median": outside})
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {rows[0]['persons']:.0f} | "
                     f"{min(fps):.2f} / {med:.2f} / {max(fps):.2f} | "
                     f"{bmed:.2f} | {med / bmed:.2f} | {outside:.1f} |" if bmed else
                     f"| {key[0]} | {key[1]} | {key[2]} | {rows[0]['persons']:.0f} | "
                     f"{min(fps):.2f} / {med:.2f} / {max(fps):.2f} | - | - | {outside:.1f} |")
    table = "\n".join(lines)
    print("\n" + table)
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "table.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(args.output, "table.json"), "w") as f:
        json.dump({"device": reports[0]["device"], "rows": summary}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
