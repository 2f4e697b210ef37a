"""The `edgepose compare` report: report.json, report.md and PNG plots in one folder.

Every file is staged under a temporary name (edgepose.files.Outputs) and all are renamed into
place at the end, so an interrupted or failed run never leaves a report that looks whole.
"""
from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Optional, Union

import numpy as np

from edgepose.errors import EdgeposeError
from edgepose.files import Outputs

REPORT_FORMAT = "edgepose-compare/1"
OUR_FILES = ("report.json", "report.md", "ap_per_part.png", "box_ap.png", "agreement_per_part.png",
             "keypoint_error_hist.png", "speed.png")
# keypoint error bands (pixels) for the histogram: fp16 sits in the first bands, int8 further right
ERROR_BANDS = [0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, math.inf]


def check_out_dir(out_dir: str) -> Outputs:
    """The report folder, checked before any model runs: writable, and none of the report's
    files there unless edgepose wrote them (its manifest)."""
    outputs = Outputs(out_dir, "report folder")
    try:
        outputs.claim(*OUR_FILES)
    except BaseException:
        outputs.rollback()
        raise
    return outputs


def _clean(obj: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def error_histogram(errors: np.ndarray) -> Dict[str, Any]:
    e = np.asarray(errors, np.float64).reshape(-1)
    counts = [int(np.count_nonzero((e >= lo) & (e < hi))) for lo, hi in zip(ERROR_BANDS[:-1], ERROR_BANDS[1:])]
    return {"bands_px": [b if math.isfinite(b) else None for b in ERROR_BANDS], "counts": counts,
            "median_px": float(np.median(e)) if e.size else None,
            "p95_px": float(np.percentile(e, 95)) if e.size else None,
            "max_px": float(e.max()) if e.size else None}


# --------------------------------------------------------------------------- plots

def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, out: Outputs, name: str) -> str:
    fig.savefig(out.stage(name, suffix=".png"), format="png", dpi=110, bbox_inches="tight")
    return name


def _grouped_bars(ax, groups: List[str], series: Dict[str, List[Optional[float]]], fmt: str = "{:.3f}",
                  label_zero: bool = True):
    n = max(1, len(series))
    width = 0.8 / n
    x = np.arange(len(groups))
    for i, (label, values) in enumerate(series.items()):
        vals = [v if v is not None and v >= 0 else 0.0 for v in values]
        bars = ax.bar(x + (i - (n - 1) / 2) * width, vals, width, label=label)
        for b, v in zip(bars, values):
            if v is not None and (label_zero or v > 0):
                ax.annotate(fmt.format(v), (b.get_x() + b.get_width() / 2, b.get_height()),
                            ha="center", va="bottom", fontsize=7, rotation=90 if n >= 3 else 0)
    ax.set_xticks(x)
    ax.set_xticklabels(groups)
    ax.legend(fontsize=8, loc="upper center", ncol=n, frameon=False)


def _plot_pose(report: Dict[str, Any], errors: Dict[str, np.ndarray], out_dir: Outputs) -> Dict[str, str]:
    plt = _plt()
    out = {}
    variants = report["variants"]
    if variants and variants[0]["ap"]:
        parts = list(variants[0]["ap"])
        fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(parts) * max(1, len(variants)) / 2), 4))
        _grouped_bars(ax, parts, {v["label"]: [v["ap"][p]["AP"] for p in parts] for v in variants})
        ax.set_ylabel("COCO AP (OKS .50:.95)")
        ax.set_ylim(0, 1.2)
        ax.set_title(f"AP per body part and precision ({report['boxes']} boxes)")
        out["ap_per_part"] = _save(fig, out_dir, "ap_per_part.png")
        plt.close(fig)
    others = [v for v in variants if v["agreement"]]
    if others:
        parts = list(others[0]["agreement"]["argmax"])
        fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(parts)), 4))
        _grouped_bars(ax, parts, {v["label"]: [v["agreement"]["argmax"][p]["argmax_within_one"] for p in parts]
                                  for v in others})
        ax.set_ylabel("share of keypoints")
        ax.set_ylim(0, 1.2)
        ax.set_title(f"SimCC argmax within one bin of {report['reference']}, per part")
        out["agreement_per_part"] = _save(fig, out_dir, "agreement_per_part.png")
        plt.close(fig)

        fig, ax = plt.subplots(figsize=(8, 4))
        bands = [f"<{b:g}" for b in ERROR_BANDS[1:-1]] + [f">={ERROR_BANDS[-2]:g}"]
        series = {}
        for v in others:
            h = error_histogram(errors[v["label"]])
            total = max(1, sum(h["counts"]))
            series[v["label"]] = [c / total for c in h["counts"]]
        _grouped_bars(ax, bands, series, fmt="{:.1%}", label_zero=False)
        ax.set_xlabel(f"keypoint distance to {report['reference']} (pixels)")
        ax.set_ylabel("share of keypoints")
        ax.set_ylim(0, 1.2)
        ax.set_title(f"Keypoint error vs {report['reference']} ({report['persons']} persons)")
        out["keypoint_error_hist"] = _save(fig, out_dir, "keypoint_error_hist.png")
        plt.close(fig)
    out["speed"] = _plot_speed(report, "ms_per_crop", "ms per person crop", out_dir)
    return out


def _plot_speed(report: Dict[str, Any], key: str, label: str, out_dir: Outputs) -> str:
    plt = _plt()
    variants = report["variants"]
    fig, ax = plt.subplots(figsize=(max(5.5, 1.2 * len(variants)), 3.5))
    vals = [v["speed"][key] or 0.0 for v in variants]
    bars = ax.bar([v["label"] for v in variants], vals, color="tab:gray")
    for b, v in zip(bars, vals):
        ax.annotate(f"{v:.1f}", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel(label)
    threads = report.get("threads")
    ax.set_title(f"Inference time per precision ({threads or 'default'} thread{'' if threads == 1 else 's'}, same run)")
    name = _save(fig, out_dir, "speed.png")
    plt.close(fig)
    return name


def _plot_detector(report: Dict[str, Any], out_dir: Outputs) -> Dict[str, str]:
    plt = _plt()
    out = {}
    variants = report["variants"]
    if variants and variants[0]["ap"]:
        keys = ["AP", "AP50", "AP75", "APm", "APl"]
        fig, ax = plt.subplots(figsize=(7, 4))
        _grouped_bars(ax, keys, {v["label"]: [v["ap"][k] for k in keys] for v in variants})
        ax.set_ylabel("person box AP")
        ax.set_ylim(0, 1.2)
        ax.set_title("Detector box AP per precision")
        out["box_ap"] = _save(fig, out_dir, "box_ap.png")
        plt.close(fig)
    out["speed"] = _plot_speed(report, "ms_per_image", "ms per image", out_dir)
    return out


# --------------------------------------------------------------------------- markdown

def _f(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _variant_cells(v: Dict[str, Any]) -> List[str]:
    return [v["label"], v["file_precision"], v["run_precision"], v.get("method") or "-",
            str(len(v.get("float_layers") or [])) if v["file_precision"] in ("int8", "mixed") else "-"]


def _markdown(report: Dict[str, Any], plots: Dict[str, str]) -> str:
    lines = [f"# edgepose compare: {report['variants'][0]['name']}", ""]
    lines.append(f"- data: `{report['data']}` ({report['images']} images)")
    lines.append(f"- reference for agreement: **{report['reference']}**; threads: {report.get('threads') or 'default'}"
                 + (f"; devices: {', '.join(f'{k} {v}' for k, v in report['device'].items())}"
                    if report.get("device") else ""))
    if report["task"] == "pose":
        lines.append(f"- persons: {report['persons']} ({report['boxes']} boxes), keypoints: {report['keypoints']}")
    lines.append("- speed: model inference only, variants interleaved image by image in this run")
    lines.append("")
    head = ["variant", "file", "runs as", "method", "float layers"]
    variants = report["variants"]
    if report["task"] == "pose":
        parts = list(variants[0]["ap"]) if variants[0]["ap"] else []
        cols = head + [f"AP {p}" for p in parts] + ["argmax exact", "argmax ±1", "mean px err", "PCK@0.05",
                                                    "ms/crop"]
        lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for v in variants:
            ag = v["agreement"]
            row = _variant_cells(v) + [_f(v["ap"][p]["AP"]) for p in parts]
            row += ([_f(ag["argmax"]["all"]["argmax_exact"]), _f(ag["argmax"]["all"]["argmax_within_one"]),
                     _f(ag["keypoints"]["all"]["mean_px_error"], 3), _f(ag["keypoints"]["all"]["pck@0.05"])]
                    if ag else ["(ref)"] * 4)
            row.append(_f(v["speed"]["ms_per_crop"], 2))
            lines.append("| " + " | ".join(row) + " |")
        if parts and all(v["ap"][p]["AP"] == 0 for v in variants for p in parts):
            lines += ["", "AP is 0 for every variant: the keypoints do not match the labels at all "
                      "(untrained or random-weight model?); the agreement figures still compare the variants."]
        others = [v for v in variants if v["agreement"]]
        if others:
            lines += ["", "## Agreement with the reference per part", ""]
            pnames = list(others[0]["agreement"]["argmax"])
            cols = ["variant", "part", "argmax exact", "argmax ±1", "mean px err", "PCK@0.05", "keypoints"]
            lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            for v in others:
                for p in pnames:
                    a, k = v["agreement"]["argmax"][p], v["agreement"]["keypoints"][p]
                    lines.append("| " + " | ".join([v["label"], p, _f(a["argmax_exact"]), _f(a["argmax_within_one"]),
                                                    _f(k["mean_px_error"], 3), _f(k["pck@0.05"]),
                                                    str(a["count"])]) + " |")
            lines += ["", "## Keypoint error vs the reference (pixels)", ""]
            lines += ["| variant | median | p95 | max |", "|---|---|---|---|"]
            for v in others:
                h = v["error_histogram"]
                lines.append(f"| {v['label']} | {_f(h['median_px'], 3)} | {_f(h['p95_px'], 3)} | {_f(h['max_px'], 3)} |")
    else:
        keys = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR100"]
        cols = head + keys + ["mean best IoU", "matched@.5", "boxes", "ms/image"]
        lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for v in variants:
            ag = (v["agreement"] or {}).get("boxes")
            row = _variant_cells(v) + [_f(v["ap"][k]) if v["ap"] else "-" for k in keys]
            row += [_f(ag["mean_best_iou"]), _f(ag["matched@0.5"])] if ag else ["(ref)", "(ref)"]
            row += [str(v.get("boxes", "-")), _f(v["speed"]["ms_per_image"], 2)]
            lines.append("| " + " | ".join(row) + " |")
    floats = [v for v in variants if v.get("float_layers")]
    if floats:
        lines += ["", "## Layers kept in float", ""]
        for v in floats:
            lines.append(f"- **{v['label']}** ({len(v['float_layers'])} layers)")
            for name, why in v["float_layers"].items():
                lines.append(f"  - `{name}`" + (f": {why}" if why else ""))
    if plots:
        lines += ["", "## Plots", ""]
        for key, name in plots.items():
            lines.append(f"![{key}]({name})")
    lines.append("")
    return "\n".join(lines)


def write_report(result: Dict[str, Any], out_dir: Union[str, Outputs], plots: bool = True) -> Dict[str, Any]:
    """Write report.json, report.md and the plots (put in place together); return the JSON-able
    report. `out_dir`: a folder, or the Outputs check_out_dir opened before the work."""
    out = check_out_dir(out_dir) if isinstance(out_dir, str) else out_dir
    try:
        report = _write_report(result, out, plots)
        out.commit(order=[n for n in OUR_FILES if n != "report.json"])   # report.json last
    except BaseException:
        out.rollback()
        raise
    return report


def _write_report(result: Dict[str, Any], out: Outputs, plots: bool) -> Dict[str, Any]:
    errors: Dict[str, np.ndarray] = {}
    for v in result["variants"]:
        err = v.pop("errors_px", None)
        if err is not None:
            errors[v["label"]] = err
            v["error_histogram"] = error_histogram(err)
    report = _clean(dict(result, format=REPORT_FORMAT))
    plot_files: Dict[str, str] = {}
    if plots:
        try:
            if report["task"] == "pose":
                plot_files = _plot_pose(report, errors, out)
            else:
                plot_files = _plot_detector(report, out)
        except ImportError:
            raise EdgeposeError("plots need matplotlib: pip install matplotlib (or pass --no-plots)") from None
    report["plots"] = plot_files
    out.write("report.md", _markdown(report, plot_files))
    out.write("report.json", json.dumps(report, indent=1) + "\n")
    return report
