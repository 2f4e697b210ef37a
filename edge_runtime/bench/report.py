"""Bench results as a console table, JSON, Markdown and a plot, ready to paste into an issue."""
from __future__ import annotations

import json
from typing import Any, Dict, List, Union

from edgepose.files import Outputs

COLUMNS = [
    ("device", "device", "{}"), ("precision", "precision", "{}"), ("setting", "setting", "{}"), ("scenario", "image", "{}"),
    ("persons", "persons", "{:.1f}"), ("fps", "FPS", "{:.2f}"), ("fps_best", "best FPS", "{:.2f}"),
    ("fps_spread_pct", "spread %", "{:.0f}"),
    ("p50_ms", "p50 ms", "{:.1f}"),
    ("p90_ms", "p90 ms", "{:.1f}"), ("p99_ms", "p99 ms", "{:.1f}"),
    ("pose_ms_per_person", "pose ms/person", "{:.2f}"), ("upload_download_ms", "GPU up/down ms", "{:.2f}"),
    ("outside_ncnn_pct", "outside ncnn %", "{:.1f}"),
    ("gmac_per_frame", "GMAC/frame", "{:.3f}"), ("gmac_per_s", "GMAC/s", "{:.2f}"),
    ("peak_rss_mb", "peak RSS MB", "{:.0f}"),
    ("infer_p50_ms", "det+pose ms", "{:.1f}"), ("infer_fps", "det+pose FPS", "{:.2f}"),
    ("baseline_threads", "ORT thr", "{}"), ("baseline_infer_fps", "ORT det+pose FPS", "{:.2f}"),
    ("ratio_infer_vs_baseline", "x ORT", "{:.2f}"),
    ("loaded_p50_ms", "loaded p50 ms", "{:.1f}"), ("loaded_p99_ms", "loaded p99 ms", "{:.1f}"),
]
BEST_COLUMNS = [("precision", "precision", "{}"), ("scenario", "image", "{}"), ("setting", "edgepose best", "{}"),
                ("infer_p50_ms", "det+pose ms", "{:.1f}"), ("infer_fps", "det+pose FPS", "{:.2f}"),
                ("baseline_threads", "ORT best thr", "{}"), ("baseline_infer_p50_ms", "ORT det+pose ms", "{:.1f}"),
                ("baseline_infer_fps", "ORT det+pose FPS", "{:.2f}"), ("ratio", "x ORT", "{:.2f}")]
BASELINE_COLUMNS = [("threads", "ORT thr", "{}"), ("scenario", "image", "{}"), ("infer_fps", "det+pose FPS", "{:.2f}"),
                    ("fps", "FPS", "{:.2f}"), ("loaded_p50_ms", "loaded p50 ms", "{:.1f}"),
                    ("loaded_p99_ms", "loaded p99 ms", "{:.1f}")]


def _cell(row: Dict[str, Any], key: str, fmt: str) -> str:
    value = row.get(key)
    if value is None:
        return "-"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def table_lines(rows: List[Dict[str, Any]], columns=None) -> List[str]:
    columns = columns or COLUMNS
    header = [title for _, title, _ in columns]
    body = [[_cell(r, key, fmt) for key, _, fmt in columns] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(b, widths)) for b in body]
    return lines


def _md_table(rows, columns) -> List[str]:
    out = ["| " + " | ".join(title for _, title, _ in columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(_cell(r, key, fmt) for key, _, fmt in columns) + " |" for r in rows]
    return out


def frame_parts(row: Dict[str, Any], stage_names: List[str]) -> Dict[str, float]:
    """Mean ms per frame of the stages that do not contain one another (the ncnn parts sit
    inside detect/pose, `infer` sums detect..decode_keypoints), plus `other` (the frame's rest):
    they add up to the mean frame time."""
    skip = {"total", "infer", "detect_ncnn", "pose_ncnn"}
    parts = {s: row["stages_ms"].get(s, {}).get("mean", 0.0) for s in stage_names if s not in skip}
    total = row["stages_ms"].get("total", {}).get("mean", 0.0)
    parts["other"] = max(0.0, total - sum(parts.values()))
    return parts


def _frequency(mhz) -> str:
    mhz = mhz or {}
    cur, lo, hi = (mhz.get(k) for k in ("scaling_cur_freq", "cpuinfo_min_freq", "cpuinfo_max_freq"))
    if cur is None and hi is None:
        return "n/a"
    span = f" (range {lo:.0f}-{hi:.0f} MHz)" if lo is not None and hi is not None else ""
    return (f"{cur:.0f} MHz" if cur is not None else "current n/a") + span


def markdown(report: Dict[str, Any]) -> str:
    rows = report["rows"]
    dev = report["device"]
    out = ["# edgepose bench", "",
           f"- device: {dev.get('cpu_model')} ({dev.get('machine')}), {dev.get('cores')} cores, "
           f"features: {', '.join(dev.get('cpu_features') or []) or 'n/a'}",
           f"- board: {dev.get('board') or 'n/a'}; governor: {dev.get('governor') or 'n/a'}; "
           f"frequency: {_frequency(dev.get('frequency_mhz'))}; temperature: "
           f"{', '.join(f'{k} {v:.0f} C' for k, v in (dev.get('temperature_c') or {}).items()) or 'n/a'}",
           f"- ncnn {dev.get('ncnn', {}).get('version')}, Python {dev.get('python')}",
           f"- models: detector `{report['models']['det']}`, pose `{report['models']['pose']}`",
           f"- baseline: {report.get('baseline_name') or 'none'}",
           f"- run: warm-up {report['settings']['warmup']} frames, then "
           f"{report['settings'].get('seconds') or report['settings'].get('frames')} "
           f"{'s' if report['settings'].get('seconds') else 'frames'} per row in "
           f"{report['settings'].get('rounds', 1)} interleaved slices (+{report['settings'].get('extra_rounds_used', 0)} "
           f"extra rounds for rows the device slowed); FPS is the median slice, best FPS "
           f"the fastest, spread % the slices' (max - min) / median; det every "
           f"{report['settings']['det_every']} frame(s)", ""]
    out.insert(7, f"- {report.get('schedule', {}).get('text', 'schedule: n/a')}")
    if (report.get("load") or {}).get("busy_processes"):
        out.insert(8, f"- loaded p50/p99: one more slice of {report['load']['seconds']} s per default row and ONNX "
                      f"Runtime at the most threads, with {report['load']['busy_processes']} busy processes competing")
    out += ["x ORT compares detection + pose (det+pose: edgepose's detect, crop, pose, decode keypoints; the "
            "baseline's detect and pose, which crops and decodes too): image decoding, tracking and drawing are "
            "timed for edgepose (stage table) and left out of the ratio for both.", ""]
    out += _md_table(rows, COLUMNS)
    if any(r.get("upload_download_ms") is not None for r in rows):
        out += ["", "GPU up/down ms: per frame, the input uploads and output downloads of the detector and of "
                "every person's pose run on the Vulkan device, timed on a transfer net with the models' own "
                "tensor shapes (part of the ncnn time, not added to it). A device named llvmpipe is Mesa's "
                "software Vulkan (lavapipe) running on the CPU: its speed says nothing about a GPU's."]
    if report.get("best"):
        out += ["", "## Best setting of each (fastest edgepose setting vs fastest ONNX Runtime thread count)", ""]
        out += _md_table(report["best"], BEST_COLUMNS)
    if report.get("baseline_rows"):
        out += ["", "## ONNX Runtime rows", ""]
        out += _md_table(report["baseline_rows"], BASELINE_COLUMNS)
    unstable = report.get("unstable_rows") or []
    if unstable:
        out += ["", "Rows where most slices (edgepose or ONNX Runtime) ran over 10% below the fastest, even "
                "after extra rounds, so the device was not quiet; their FPS understates it, compare best FPS: "
                + ", ".join(f"{p} x{t} {sc}" for p, t, sc in unstable) + "."]
    out += ["", "## Stage latency (ms, p50 / p90 / p99)", ""]
    stages = report.get("stage_names", [])
    out.append("| device | precision | setting | image | " + " | ".join(stages) + " |")
    out.append("|" + "---|" * (4 + len(stages)))
    for r in rows:
        cells = []
        for s in stages:
            st = r["stages_ms"].get(s)
            cells.append("-" if st is None else f"{st['p50']:.2f} / {st['p90']:.2f} / {st['p99']:.2f}")
        out.append(f"| {r.get('device', 'cpu')} | {r['precision']} | {r.get('setting', r['threads'])} | {r['scenario']} | "
                   + " | ".join(cells) + " |")
    out += ["", "Peak RSS MB: one configuration alone in a fresh process (Python, numpy, OpenCV and ncnn "
            "included), running the most crowded image. "
            f"The bench process itself, with every configuration loaded at once, peaked at "
            f"{report.get('peak_rss_mb', 0):.0f} MB. Model load: "
            + ", ".join(f"{k} {v:.2f} s" for k, v in report.get("load_s", {}).items()), ""]
    return "\n".join(out)


def plot(report: Dict[str, Any], path: str) -> bool:
    """FPS vs persons per precision/threads, and the stage breakdown, saved to `path` (a .png).
    False when matplotlib is absent."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = report["rows"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    # Only the measured points: no line between two person counts (nothing was measured there).
    series: Dict[str, List] = {}
    for r in rows:
        name = f"{r['precision']} {r.get('setting', r['threads'])}" + ("" if r.get("device", "cpu") == "cpu" else " gpu")
        series.setdefault(name, []).append((r["persons"], r["fps"]))
    for name, pts in series.items():
        pts.sort()
        ax1.plot([p for p, _ in pts], [f for _, f in pts], marker="o", linestyle="none", label=f"edgepose {name}")
    for b in report.get("baseline_rows") or []:
        persons = next((r["persons"] for r in rows if r["scenario"] == b["scenario"]), None)
        if persons is not None and b.get("fps"):
            ax1.plot([persons], [b["fps"]], "ks", fillstyle="none", label=f"ONNX Runtime x{b['threads']}")
    handles, names = ax1.get_legend_handles_labels()
    unique = dict(zip(names, handles))
    ax1.set_xlabel("persons in frame")
    ax1.set_ylabel("end-to-end FPS")
    ax1.set_title("FPS vs persons (measured points)")
    ax1.grid(alpha=0.3)
    ax1.legend(unique.values(), unique.keys(), fontsize=8)
    # Stages that do not contain one another, so each bar is the mean frame time.
    labels = [f"{r['precision']} {r.get('setting', r['threads'])}\n{r['scenario']}" for r in rows]
    parts = [frame_parts(r, report.get("stage_names", [])) for r in rows]
    bottom = [0.0] * len(rows)
    for s in (parts[0] if parts else {}):
        vals = [p.get(s, 0.0) for p in parts]
        ax2.bar(range(len(rows)), vals, bottom=bottom, label=s)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax2.set_xticks(range(len(rows)))
    ax2.set_xticklabels(labels, fontsize=6, rotation=60, ha="right")
    ax2.set_ylabel("mean ms per frame (bar = frame time)")
    ax2.set_title("stage breakdown")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
    return True


REPORT_FILES = {"json": "bench.json", "markdown": "bench.md", "plot": "bench.png"}


def open_output(out_dir: str) -> Outputs:
    """The report folder, checked before the (long) benchmark: writable, and no bench.* there
    that edgepose did not write."""
    outputs = Outputs(out_dir, "report folder")
    try:
        outputs.claim(*REPORT_FILES.values())
    except BaseException:
        outputs.rollback()
        raise
    return outputs


def write(report: Dict[str, Any], out: Union[str, Outputs]) -> Dict[str, str]:
    """bench.json, bench.md and bench.png (with matplotlib) into `out` (a folder or an open
    Outputs), put in place together."""
    outputs = open_output(out) if isinstance(out, str) else out
    try:
        outputs.write(REPORT_FILES["json"], json.dumps(report, indent=1) + "\n")
        outputs.write(REPORT_FILES["markdown"], markdown(report) + "\n")
        drew = plot(report, outputs.stage(REPORT_FILES["plot"], suffix=".png"))
        if not drew:
            outputs.discard(REPORT_FILES["plot"])
        outputs.commit()
    except BaseException:
        outputs.rollback()
        raise
    return {k: outputs.path(n) for k, n in REPORT_FILES.items() if drew or k != "plot"}
