"""Bench results as a console table, JSON, Markdown and a plot, ready to paste into an issue."""
from __future__ import annotations

import json
from typing import Any, Dict, List, Union

from edgepose.files import Outputs

COLUMNS = [
    ("device", "device", "{}"), ("precision", "precision", "{}"), ("threads", "thr", "{}"), ("scenario", "image", "{}"),
    ("persons", "persons", "{:.1f}"), ("fps", "FPS", "{:.2f}"), ("fps_best", "best FPS", "{:.2f}"),
    ("fps_spread_pct", "spread %", "{:.0f}"),
    ("p50_ms", "p50 ms", "{:.1f}"),
    ("p90_ms", "p90 ms", "{:.1f}"), ("p99_ms", "p99 ms", "{:.1f}"),
    ("pose_ms_per_person", "pose ms/person", "{:.2f}"), ("upload_download_ms", "GPU up/down ms", "{:.2f}"),
    ("outside_ncnn_pct", "outside ncnn %", "{:.1f}"),
    ("gmac_per_frame", "GMAC/frame", "{:.3f}"), ("gmac_per_s", "GMAC/s", "{:.2f}"),
    ("peak_rss_mb", "peak RSS MB", "{:.0f}"),
    ("baseline_fps", "ORT FPS", "{:.2f}"), ("ratio_vs_baseline", "x ORT", "{:.2f}"),
]


def _cell(row: Dict[str, Any], key: str, fmt: str) -> str:
    value = row.get(key)
    if value is None:
        return "-"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def table_lines(rows: List[Dict[str, Any]]) -> List[str]:
    header = [title for _, title, _ in COLUMNS]
    body = [[_cell(r, key, fmt) for key, _, fmt in COLUMNS] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(b, widths)) for b in body]
    return lines


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
    out.append("| " + " | ".join(title for _, title, _ in COLUMNS) + " |")
    out.append("|" + "---|" * len(COLUMNS))
    for r in rows:
        out.append("| " + " | ".join(_cell(r, key, fmt) for key, _, fmt in COLUMNS) + " |")
    if any(r.get("upload_download_ms") is not None for r in rows):
        out += ["", "GPU up/down ms: per frame, the input uploads and output downloads of the detector and of "
                "every person's pose run on the Vulkan device, timed on a transfer net with the models' own "
                "tensor shapes (part of the ncnn time, not added to it). A device named llvmpipe is Mesa's "
                "software Vulkan (lavapipe) running on the CPU: its speed says nothing about a GPU's."]
    unstable = report.get("unstable_rows") or []
    if unstable:
        out += ["", "Rows where most slices (edgepose or ONNX Runtime) ran over 10% below the fastest, even "
                "after extra rounds, so the device was not quiet; their FPS understates it, compare best FPS: "
                + ", ".join(f"{p} x{t} {sc}" for p, t, sc in unstable) + "."]
    out += ["", "## Stage latency (ms, p50 / p90 / p99)", ""]
    stages = report.get("stage_names", [])
    out.append("| device | precision | thr | image | " + " | ".join(stages) + " |")
    out.append("|" + "---|" * (4 + len(stages)))
    for r in rows:
        cells = []
        for s in stages:
            st = r["stages_ms"].get(s)
            cells.append("-" if st is None else f"{st['p50']:.2f} / {st['p90']:.2f} / {st['p99']:.2f}")
        out.append(f"| {r.get('device', 'cpu')} | {r['precision']} | {r['threads']} | {r['scenario']} | "
                   + " | ".join(cells) + " |")
    out += ["", "Peak RSS MB: one configuration alone in a fresh process (Python, numpy, OpenCV and ncnn "
            "included), running the most crowded image. "
            f"The bench process itself, with every configuration loaded at once, peaked at "
            f"{report.get('peak_rss_mb', 0):.0f} MB. Model load: " + ", ".join(f"{k} {v:.2f} s" for k, v in report.get("load_s", {}).items()), ""]
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
    series: Dict[str, List] = {}
    for r in rows:
        series.setdefault(f"{r['precision']} x{r['threads']} {r.get('device', 'cpu')}", []).append((r["persons"], r["fps"]))
    for name, pts in series.items():
        pts.sort()
        ax1.plot([p for p, _ in pts], [f for _, f in pts], marker="o", label=f"edgepose {name}")
    base: Dict[str, List] = {}
    for r in rows:
        if r.get("baseline_fps"):
            base.setdefault(f"x{r['threads']}", {})[r["persons"]] = r["baseline_fps"]
    for name, pts in base.items():
        xs = sorted(pts)
        ax1.plot(xs, [pts[x] for x in xs], "k--", marker="s", label=f"ONNX Runtime {name}")
    ax1.set_xlabel("persons in frame")
    ax1.set_ylabel("end-to-end FPS")
    ax1.set_title("FPS vs persons")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    stages = [s for s in report.get("stage_names", []) if s != "total"]
    labels = [f"{r['precision']} x{r['threads']}\n{r['scenario']}" for r in rows]
    bottom = [0.0] * len(rows)
    for s in stages:
        vals = [r["stages_ms"].get(s, {}).get("mean", 0.0) for r in rows]
        ax2.bar(range(len(rows)), vals, bottom=bottom, label=s)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax2.set_xticks(range(len(rows)))
    ax2.set_xticklabels(labels, fontsize=6, rotation=60, ha="right")
    ax2.set_ylabel("mean ms per frame")
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
