"""Reproduce the issue-5 table with one command:

    python benchmarks/bench_table.py [--runs 3] [--seconds 5] [-o bench-table]

RTMDet-nano person (shared, real weights) + the reference whole-body RTMPose-t, converted
here to ncnn fp32 and quantized to int8 with our own quantizer; edgepose fp32 / fp16 / int8
at 1 and 2 threads vs ONNX Runtime on the same ONNX files, on a 1-person and a crowd image,
end-to-end FPS and the ratio, all in one process. Within a run every row (ONNX Runtime
too) is measured in `--rounds` interleaved slices and its FPS is the median slice; the
whole bench is repeated `--runs` times and min / median / max of the runs' FPS reported
per row (how well repeated runs agree).
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

from edgepose.runtime.bench.timing import spread_pct  # noqa: E402  (numpy only; the repo is on the path now)


def shared_dir() -> Path:
    return Path(os.environ.get("EDGEPOSE_SHARED", REPO.parent / "shared")).resolve()


def prepare_models(work: Path, shared: Path, quantize: bool = True, log=print):
    from edgepose.convert.api import convert
    from edgepose.quantization.quantize_api import quantize_model

    det_onnx = shared / "models/rtmdet-nano-person/rtmdet-nano-person_raw-heads.onnx"
    pose_onnx = shared / "reference/official/rtmpose-t_wholebody_256x192.onnx"
    det_dir, pose_dir, q_dir = work / "det", work / "pose", work / "int8"
    if not (det_dir / "rtmdet-nano-person_raw-heads.json").exists():
        convert(str(det_onnx), str(det_dir), check=False, log=log)
    if not (pose_dir / "rtmpose-t_wholebody_256x192.json").exists():
        convert(str(pose_onnx), str(pose_dir), check=False, log=log)
    calib = [str(p) for p in sorted((shared / "data").glob("calib_*")) if p.is_dir()]
    # Both quantized as the README recommends: `edgepose quantize` defaults (each layer int8 only where
    # it is faster here and the accuracy budget holds). Their folders are -int8 or -mixed by what was chosen.
    if not quantize:
        return [str(det_dir)], [str(pose_dir)], str(det_onnx), str(pose_onnx)
    found = {p.name: p for p in q_dir.glob("*") if p.is_dir()} if q_dir.is_dir() else {}
    det_q = next((found[n] for n in found if n.startswith("rtmdet-nano-person_raw-heads-")), None)
    pose_q = next((found[n] for n in found if n.startswith("rtmpose-t_wholebody_256x192-")), None)
    if det_q is None:
        det_q = Path(quantize_model(str(det_dir), calib, out_dir=str(q_dir), log=log)).parent
    if pose_q is None:
        pose_q = Path(quantize_model(str(pose_dir), calib, out_dir=str(q_dir), det_model=str(det_dir), log=log)).parent
    return [str(det_dir), str(det_q)], [str(pose_dir), str(pose_q)], str(det_onnx), str(pose_onnx)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds per row and run")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved slices per row and run")
    ap.add_argument("--extra-rounds", type=int, default=None,
                    help="more slices for rows the device slowed (default: --rounds)")
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--precision", nargs="+", default=["fp32", "fp16", "int8"])
    ap.add_argument("--work", default=None, help="where converted models are kept (default: a temp folder)")
    ap.add_argument("-o", "--output", default="bench-table")
    args = ap.parse_args(argv)

    from edgepose.runtime.bench.report import write
    from edgepose.runtime.bench.run import bench

    shared = shared_dir()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="edgepose-bench-"))
    dets, poses, det_onnx, pose_onnx = prepare_models(work, shared, quantize="int8" in args.precision)
    # One person and a crowd, from the shared real photos.
    images = [str(shared / "data/calib_mmpose_examples/human-pose.jpeg"),
              *sorted(str(p) for p in (shared / "data/calib_openpose_media").glob("*.jpg"))]
    reports = []
    for run in range(args.runs):
        print(f"\n=== run {run + 1}/{args.runs}")
        reports.append(bench(dets, poses, images, precisions=args.precision, threads=args.threads,
                             targets=(1, 6), seconds=args.seconds, det_onnx=det_onnx, pose_onnx=pose_onnx,
                             rounds=args.rounds, extra_rounds=args.extra_rounds))
        write(reports[-1], os.path.join(args.output, f"run{run + 1}"))

    keys = [(r["precision"], r["threads"], r["scenario"]) for r in reports[0]["rows"]]
    lines = ["| precision | threads | image | persons | FPS min / median / max | best-slice FPS min / median / max | "
             "ORT FPS min / median / max | ORT best-slice min / median / max | x ORT | x ORT (best slice) | "
             "runs agree within (FPS / best slice) | outside ncnn % |", "|---" * 12 + "|"]
    summary = []
    for key in keys:
        rows = [next(r for r in rep["rows"] if (r["precision"], r["threads"], r["scenario"]) == key)
                for rep in reports]
        col = {name: [r[name] for r in rows if r.get(name)]
               for name in ("fps", "fps_best", "baseline_fps", "baseline_fps_best")}
        med = {name: statistics.median(v) if v else None for name, v in col.items()}
        outside = statistics.median(r["outside_ncnn_pct"] for r in rows)
        agree = max(_spread(col["fps"]), _spread(col["baseline_fps"]))
        agree_best = max(_spread(col["fps_best"]), _spread(col["baseline_fps_best"]))
        summary.append({"precision": key[0], "threads": key[1], "scenario": key[2], "persons": rows[0]["persons"],
                        **{name: v for name, v in col.items()},
                        "ratio_median": _ratio(med["fps"], med["baseline_fps"]),
                        "ratio_best_median": _ratio(med["fps_best"], med["baseline_fps_best"]),
                        "runs_agree_within_pct": agree, "runs_agree_within_pct_best": agree_best,
                        "outside_ncnn_pct_median": outside})
        cells = [_three(col[name]) for name in ("fps", "fps_best", "baseline_fps", "baseline_fps_best")]
        ratios = [_fmt(summary[-1][k]) for k in ("ratio_median", "ratio_best_median")]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {rows[0]['persons']:.0f} | " + " | ".join(cells + ratios)
                     + f" | {agree:.1f}% / {agree_best:.1f}% | {outside:.1f} |")
    for field, what in (("runs_agree_within_pct", "FPS (median slice)"),
                        ("runs_agree_within_pct_best", "best-slice FPS")):
        worst = max(summary, key=lambda r: r[field])
        lines += ["", f"{what}: repeated runs agree within {worst[field]:.1f}% (max - min over the median; "
                      f"worst row {worst['precision']} x{worst['threads']} {worst['scenario']}, "
                      f"edgepose or ONNX Runtime)."]
    table = "\n".join(lines)
    print("\n" + table)
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "table.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(args.output, "table.json"), "w") as f:
        json.dump({"device": reports[0]["device"], "rows": summary}, f, indent=1)
    return 0


def _spread(values) -> float:
    """How far apart the repeated runs are; 0 for a missing column (no baseline)."""
    return spread_pct(values) if values else 0.0


def _three(values) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}" if values else "-"


def _ratio(a, b):
    return a / b if a and b else None


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    sys.exit(main())
