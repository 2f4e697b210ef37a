"""One bench run: every precision x thread count x scenario, plus the ONNX Runtime baseline."""
from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any, Dict, List, Optional, Sequence

from ..detector import Detector
from ..errors import EdgeposeError
from ..model_meta import ModelMeta, find_model
from . import device_info
from .gmac import gmac
from .pipeline import NCNN_STAGES, STAGES, load_pipeline, run_pipeline
from .scenarios import Scenario, pick
from .timing import peak_rss_mb


def resolve(paths: Sequence[str], precision: str, task: str) -> Optional[str]:
    """The model file for a precision among the folders/files given (fp16 may use fp32 files)."""
    for p in paths:
        try:
            return find_model(p, precision, task)
        except EdgeposeError:
            continue
    return None


def onnx_source(meta_path: str) -> Optional[str]:
    src = ModelMeta.load(meta_path).source or {}
    path = src.get("file")
    return path if path and str(path).endswith(".onnx") and os.path.isfile(path) else None


def bench(det_paths: Sequence[str], pose_paths: Sequence[str], images: Sequence[str],
          precisions: Sequence[str] = ("fp32",), threads: Sequence[int] = (1,), targets=(1, 3, 6),
          seconds: Optional[float] = 5.0, frames: Optional[int] = None, warmup: int = 3, det_every: int = 1,
          baseline: bool = True, det_onnx: Optional[str] = None, pose_onnx: Optional[str] = None,
          concurrency: int = 1, log=print) -> Dict[str, Any]:
    det32 = resolve(det_paths, "fp32", "detect")
    pose32 = resolve(pose_paths, "fp32", "pose")
    if det32 is None or pose32 is None:
        raise EdgeposeError("bench needs an fp32 detector and pose model (converted folders): "
                            f"--det {list(det_paths)} --pose {list(pose_paths)}")
    scenarios: List[Scenario] = pick(images, Detector(det32, threads=max(threads), precision="fp32"), targets)
    log("scenarios: " + ", ".join(f"{s.label} (detected {s.detected})" for s in scenarios))

    gmacs: Dict[str, float] = {}
    rows: List[Dict[str, Any]] = []
    load_s: Dict[str, float] = {}
    for precision in precisions:
        pose_path = resolve(pose_paths, precision, "pose")
        if pose_path is None:
            log(f"skip {precision}: no {precision} pose model among {list(pose_paths)}")
            continue
        # An int8 row may pair the int8 pose model with a mixed-precision detector (the
        # recommended INT8 detector keeps its depthwise convolutions float).
        det_path = (resolve(det_paths, precision, "detect")
                    or (resolve(det_paths, "mixed", "detect") if precision == "int8" else None) or det32)
        for key in (det_path, pose_path):
            if key not in gmacs:
                gmacs[key] = gmac(key)
        for n_threads in threads:
            det, pose, load = load_pipeline(det_path, pose_path, precision, n_threads, concurrency)
            load_s[f"{precision} x{n_threads}"] = load
            for sc in scenarios:
                default_cap = det.max_detections
                if sc.cap is not None:
                    det.max_detections = sc.cap
                try:
                    res = run_pipeline(det, pose, sc.encoded, load, warmup=warmup, frames=frames,
                                       seconds=seconds, det_every=det_every)
                finally:
                    det.max_detections = default_cap
                frame_gmac = gmacs[det_path] / det_every + res.persons * gmacs[pose_path]
                total = res.stages_ms["total"]
                row = {
                    "precision": precision, "threads": n_threads, "scenario": sc.label,
                    "det_model": det_path, "pose_model": pose_path,
                    "persons": res.persons, "fps": res.fps, "p50_ms": total["p50"], "p90_ms": total["p90"],
                    "p99_ms": total["p99"], "pose_ms_per_person": res.pose_ms_per_person,
                    "outside_ncnn_pct": 100.0 * res.outside_ncnn_fraction, "gmac_per_frame": frame_gmac,
                    "gmac_per_s": frame_gmac * res.fps, "frames": res.frames, "stages_ms": res.stages_ms,
                }
                rows.append(row)
                log(f"{precision:>5} x{n_threads} {sc.label:<32} {res.fps:7.2f} FPS  "
                    f"p50 {total['p50']:.1f} ms  outside ncnn {row['outside_ncnn_pct']:.1f}%")
            det.model.net.clear()
            pose.close()

    baseline_name = None
    if baseline:
        det_onnx = det_onnx or onnx_source(det32)
        pose_onnx = pose_onnx or onnx_source(pose32)
        if not det_onnx or not pose_onnx:
            log("baseline skipped: the ONNX files are unknown (pass --det-onnx and --pose-onnx)")
        else:
            from .ort_baseline import make_baseline, run_baseline

            det_meta, pose_meta = ModelMeta.load(det32), ModelMeta.load(pose32)
            ref = Detector(det32, precision="fp32")
            for n_threads in threads:
                baseline_name, detect, pose_fn = make_baseline(det_onnx, pose_onnx, det_meta, pose_meta, n_threads,
                                                               ref.score_threshold, ref.nms_iou)
                for sc in scenarios:
                    capped = detect if sc.cap is None else _capped(detect, sc.cap)
                    res = run_baseline(capped, pose_fn, sc.encoded, warmup=warmup, frames=frames, seconds=seconds)
                    log(f"  ORT x{n_threads} {sc.label:<32} {res['fps']:7.2f} FPS ({baseline_name})")
                    for row in rows:
                        if row["threads"] == n_threads and row["scenario"] == sc.label:
                            row["baseline_fps"] = res["fps"]
                            row["ratio_vs_baseline"] = row["fps"] / res["fps"] if res["fps"] else None
                            row["baseline_stages_ms"] = res["stages_ms"]
    return {
        "device": device_info.collect(),
        "models": {"det": det32, "pose": pose32, "gmac": gmacs},
        "settings": {"precisions": list(precisions), "threads": list(threads), "seconds": seconds,
                     "frames": frames, "warmup": warmup, "det_every": det_every, "concurrency": concurrency},
        "scenarios": [{k: v for k, v in asdict(s).items() if k != "encoded"} for s in scenarios],
        "baseline_name": baseline_name,
        "stage_names": STAGES + NCNN_STAGES,
        "rows": rows,
        "load_s": load_s,
        "peak_rss_mb": peak_rss_mb(),
    }


def _capped(detect, cap: int):
    def run(image):
        boxes, scores = detect(image)
        if scores is not None and len(scores) > cap:
            order = (-scores).argsort(kind="stable")[:cap]
            return boxes[order], scores[order]
        return boxes[:cap], (None if scores is None else scores[:cap])
    return run
