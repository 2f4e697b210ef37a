"""One bench run: every precision x thread count x scenario, plus the ONNX Runtime baseline.

Rows are measured in rounds: each round gives every row (ncnn and ONNX Runtime alike) one
slice of its time budget, in alternating order. A row's FPS is the median of its slices,
so a stretch when the device is busy or throttling (on a shared VM a core can slow
down for ten seconds at a time) costs one slice of every row instead of a whole row,
and each ratio compares numbers taken in the same minutes.
"""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..detector import Detector
from edgepose.errors import EdgeposeError
from edgepose.model_meta import ModelMeta, find_model
from . import device_info
from .gmac import gmac
from .gpu_transfer import transfer_ms
from .pipeline import NCNN_STAGES, STAGES, load_pipeline, pipeline_row, pipeline_runner
from .scenarios import Scenario, pick
from .timing import Slice, median_is_quiet, peak_rss_mb, split_budget

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


@dataclass
class _Group:
    """Rows sharing loaded models (one ncnn precision x threads, or ONNX Runtime x threads).
    `open()` loads them and returns {scenario label: run(warmup, frames, seconds) -> Slice}."""
    name: str
    open: Callable[[], Dict[str, Callable[..., Slice]]]
    close: Callable[[], None]
    weight_bytes: int = 0
    runners: Optional[Dict[str, Callable[..., Slice]]] = None
    slices: Dict[str, List[Slice]] = field(default_factory=dict)
    load_s: List[float] = field(default_factory=list)
    held: Dict[str, Any] = field(default_factory=dict)  # what open() loaded, its load time, name


def _capped_detector(det: Detector, cap: Optional[int], run):
    """A scenario may keep only the top `cap` detections (a '3 persons' row on a 5-person photo)."""
    if cap is None:
        return run

    def capped(*args, **kwargs):
        default = det.max_detections
        det.max_detections = cap
        try:
            return run(*args, **kwargs)
        finally:
            det.max_detections = default
    return capped


def setting_name(threads: Optional[int], concurrency: Optional[int]) -> str:
    """"default" (the schedule's choice), "x2" (2 threads, one person at a time), "x1 c2"."""
    if threads is None and concurrency is None:
        return "default"
    name = f"x{threads}" if threads is not None else "x?"
    return name + (f" c{concurrency}" if concurrency not in (None, 1) else "")


def _ncnn_group(precision: str, n_threads: Optional[int], det_path: str, pose_path: str,
                scenarios: List[Scenario], det_every: int, concurrency: Optional[int],
                device: str = "cpu") -> _Group:
    held: Dict[str, Any] = {}

    def open_():
        det, pose, held["load_s"] = load_pipeline(det_path, pose_path, precision, n_threads, concurrency,
                                                            device=device)
        held["det"], held["pose"], held["plan"] = det, pose, pose.plan
        if device != "cpu" and "transfer_ms" not in held:  # once per group: the shapes do not change
            held["transfer_ms"] = {"detect": transfer_ms(det.model), "pose": transfer_ms(pose.model)}
            held["device_name"] = pose.model.gpu.name
        return {sc.label: _capped_detector(det, sc.cap, pipeline_runner(det, pose, sc.encoded, det_every))
                for sc in scenarios}

    def close():
        if "det" in held:
            held.pop("det").model.net.clear()
            held.pop("pose").close()

    return _Group(f"{precision} {setting_name(n_threads, concurrency)}" + ("" if device == "cpu" else f" {device}"),
                  open_, close,
                  weight_bytes=sum(_bin_size(p) for p in (det_path, pose_path)), held=held)


def _ort_group(n_threads: int, det_onnx: str, pose_onnx: str, det32: str, pose32: str,
               scenarios: List[Scenario], ref: Detector, as_shipped: bool = False) -> _Group:
    from .ort_baseline import baseline_runner, make_baseline  # onnxruntime only when a baseline runs

    held: Dict[str, Any] = {}

    def open_():
        t0 = time.perf_counter()
        name, detect, pose_fn = make_baseline(det_onnx, pose_onnx, ModelMeta.load(det32), ModelMeta.load(pose32),
                                              n_threads, ref.score_threshold, ref.nms_iou, as_shipped=as_shipped)
        held["load_s"], held["name"] = time.perf_counter() - t0, name
        return {sc.label: baseline_runner(detect if sc.cap is None else _capped(detect, sc.cap), pose_fn, sc.encoded)
                for sc in scenarios}

    return _Group(f"ORT x{n_threads}", open_, lambda: None,
                  weight_bytes=sum(os.path.getsize(p) for p in (det_onnx, pose_onnx)), held=held)


def _bin_size(meta_path: str) -> int:
    meta = ModelMeta.load(meta_path)
    path = meta.bin_path(meta_path)
    return os.path.getsize(path) if os.path.isfile(path) else 0


def _keep_all_loaded(groups: List[_Group]) -> bool:
    """Whether every group's models fit in memory at once (weights plus ncnn's repacked
    copies and workspaces, taken as 4x the files). Else each round loads and frees them."""
    try:
        with open("/proc/meminfo") as f:
            avail_kb = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return True
    return 4 * sum(g.weight_bytes for g in groups) < avail_kb * 1024 // 2


def bench(det_paths: Sequence[str], pose_paths: Sequence[str], images: Sequence[str],
          precisions: Sequence[str] = ("fp32",), threads: Sequence[int] = (1,), targets=(1, 3, 6),
          seconds: Optional[float] = 5.0, frames: Optional[int] = None, warmup: int = 3, det_every: int = 1,
          baseline: bool = True, det_onnx: Optional[str] = None, pose_onnx: Optional[str] = None,
          concurrency: Optional[int] = 1, rounds: int = 5, extra_rounds: Optional[int] = None, memory: bool = True,
          settings: Optional[Sequence[Tuple[Optional[int], Optional[int]]]] = None, load: int = 0,
          load_seconds: Optional[float] = None, devices: Sequence[str] = ("cpu",), baseline_as_shipped: bool = False,
          log=print) -> Dict[str, Any]:
    """`seconds` (or `frames`) is each row's budget, split over `rounds` slices; a row
    whose median slice is not a quiet one gets up to `extra_rounds` more (default: `rounds`).

    settings: edgepose (threads, concurrency) pairs to run, (None, None) = the schedule's
    default; default: each of `threads` with `concurrency`. ONNX Runtime runs at each of
    `threads`. load: after the rounds, every default row and ONNX Runtime at the most threads
    run one more slice (`load_seconds`, default the row budget) with `load` busy processes."""
    if rounds < 1:
        raise EdgeposeError(f"rounds must be at least 1, got {rounds}")
    if extra_rounds is None:  # a frame budget is a promise of exactly that many frames
        extra_rounds = 0 if frames is not None else rounds
    if extra_rounds < 0:
        raise EdgeposeError(f"extra rounds must be 0 or more, got {extra_rounds}")
    det32 = resolve(det_paths, "fp32", "detect")
    pose32 = resolve(pose_paths, "fp32", "pose")
    if det32 is None or pose32 is None:
        raise EdgeposeError("bench needs an fp32 detector and pose model (converted folders): "
                            f"--det {list(det_paths)} --pose {list(pose_paths)}")
    ref = Detector(det32, threads=max(threads), precision="fp32")
    scenarios: List[Scenario] = pick(images, ref, targets)
    log("scenarios: " + ", ".join(f"{s.label} (detected {s.detected})" for s in scenarios))

    gmacs: Dict[str, float] = {}
    groups: List[_Group] = []
    described: Dict[str, Dict[str, Any]] = {}
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
        if precision in ("int8", "mixed"):
            gpu_devices = [d for d in devices if d != "cpu"]
            if gpu_devices:
                log(f"skip {precision} on {', '.join(gpu_devices)}: int8 models run on the CPU only")
        for device in devices:
            if device != "cpu" and precision in ("int8", "mixed"):
                continue
            for n_threads, conc in (settings if settings is not None else [(t, concurrency) for t in threads]):
                g = _ncnn_group(precision, n_threads, det_path, pose_path, scenarios, det_every, conc, device)
                described[g.name] = {"precision": precision, "setting": setting_name(n_threads, conc),
                                     "threads": n_threads if n_threads is not None else "auto",
                                     "concurrency": conc if conc is not None else "auto",
                                     "det_model": det_path, "pose_model": pose_path, "device": device}
                groups.append(g)
    if not groups:
        raise EdgeposeError(f"no pose model for any of the precisions {list(precisions)} among {list(pose_paths)}")

    ort_groups: Dict[int, _Group] = {}
    if baseline:
        det_onnx = det_onnx or onnx_source(det32)
        pose_onnx = pose_onnx or onnx_source(pose32)
        if not det_onnx or not pose_onnx:
            log("baseline skipped: the ONNX files are unknown (pass --det-onnx and --pose-onnx)")
        else:
            for n_threads in threads:
                ort_groups[n_threads] = _ort_group(n_threads, det_onnx, pose_onnx, det32, pose32, scenarios, ref,
                                                   baseline_as_shipped)
    everything = groups + list(ort_groups.values())

    keep = _keep_all_loaded(everything)
    if not keep:
        log("models do not all fit in memory at once: each round loads and frees them")
    budgets = split_budget(rounds, frames, seconds)
    slice_frames, slice_seconds = budgets[0]
    # Planned rounds: every row. Extra rounds: only the rows whose slices were mostly slowed.
    plan = [(r, None) for r in range(len(budgets))] + [(len(budgets) + r, "extra") for r in range(extra_rounds)]
    extra_used = 0
    for r, kind in plan:
        todo = {g.name: [sc for sc in scenarios if kind is None or not median_is_quiet(g.slices[sc.label])]
                for g in everything}
        if not any(todo.values()):
            break
        if kind is not None:
            extra_used += 1
            log(f"extra round {extra_used}: the device was busy during " + ", ".join(
                f"{name} {sc.label}" for name, scs in todo.items() for sc in scs))
        f_budget, s_budget = budgets[r] if r < len(budgets) else (slice_frames, slice_seconds)
        # Alternate the order so no row always runs right after the same neighbour.
        for g in (everything if r % 2 == 0 else everything[::-1]):
            if not todo[g.name]:
                continue
            if g.runners is None:
                g.runners = g.open()
                g.load_s.append(g.held["load_s"])
            for sc in todo[g.name]:
                g.slices.setdefault(sc.label, []).append(
                    g.runners[sc.label](warmup if r == 0 else min(warmup, 1), f_budget, s_budget))
            if not keep:
                g.close()
                g.runners = None
        if kind is None:
            log(f"round {r + 1}/{len(budgets)} done")
    for g in everything:
        g.close()
        g.runners = None

    loaded: Dict[Tuple[str, str], Any] = {}
    if load > 0:
        from .load import busy_processes

        budget = load_seconds or (seconds or 5.0)
        top = max(threads)
        targets_loaded = [g for g in groups if described[g.name]["setting"] == "default"]
        targets_loaded += [ort_groups[top]] if top in ort_groups else []
        for g in targets_loaded:
            g.runners = g.open()
            for sc in scenarios:
                g.runners[sc.label](warmup, None, 1.0)   # settle before the load starts
                with busy_processes(load, budget + 30.0):
                    loaded[(g.name, sc.label)] = g.runners[sc.label](1, None, budget)
            g.close()
            g.runners = None
            log(f"under load ({load} busy processes): {g.name} measured")

    # Memory per configuration, each in a fresh process, after the timing so it cannot disturb it.
    mem: Dict[str, Dict[str, Any]] = {}
    if memory:
        from .memory import measure_in_child

        crowd = max(scenarios, key=lambda sc: sc.detected).path
        for g in groups:
            d = described[g.name]
            if d["device"] != "cpu":  # GPU memory is not in the process's RSS: no like-for-like figure
                continue
            mem[g.name] = measure_in_child(d["det_model"], d["pose_model"], d["precision"],
                                           None if d["threads"] == "auto" else d["threads"], crowd,
                                           concurrency=None if d["concurrency"] == "auto" else d["concurrency"])
            log(f"memory {g.name}: peak RSS {_mb(mem[g.name]['peak_rss_mb'])} "
                f"(pipeline {_mb(mem[g.name]['pipeline_mb'])} over the imports)")
    baselines: Dict[tuple, Dict[str, Any]] = {}
    if ort_groups:
        from .ort_baseline import baseline_row

        baselines = {(t, sc.label): baseline_row(g.slices[sc.label])
                     for t, g in ort_groups.items() for sc in scenarios}
    cores = os.cpu_count() or 1
    rows: List[Dict[str, Any]] = []
    for g in groups:
        d = described[g.name]
        for sc in scenarios:
            res = pipeline_row(g.slices[sc.label])
            frame_gmac = gmacs[d["det_model"]] / det_every + res["persons"] * gmacs[d["pose_model"]]
            total = res["stages_ms"]["total"]
            row = {**d, "scenario": sc.label, "persons": res["persons"], "fps": res["fps"],
                   "fps_best": res["fps_best"], "fps_slices": res["fps_slices"], "fps_mean": res["fps_mean"],
                   "fps_spread_pct": res["fps_spread_pct"], "median_quiet": res["median_quiet"],
                   "slices": len(res["fps_slices"]), "p50_ms": total["p50"], "p90_ms": total["p90"],
                   "p99_ms": total["p99"], "pose_ms_per_person": res["pose_ms_per_person"],
                   "outside_ncnn_pct": 100.0 * res["outside_ncnn_fraction"], "gmac_per_frame": frame_gmac,
                   "gmac_per_s": frame_gmac * res["fps"], "frames": res["frames"], "stages_ms": res["stages_ms"],
                   "peak_rss_mb": mem.get(g.name, {}).get("peak_rss_mb"),
                   "pipeline_mb": mem.get(g.name, {}).get("pipeline_mb")}
            if d["device"] != "cpu":
                tr = g.held["transfer_ms"]
                row["device"] = f"{d['device']} {g.held['device_name']}"
                row["upload_download_ms"] = tr["detect"] / det_every + res["persons"] * tr["pose"]
                row["upload_download_ms_per_model"] = dict(tr)
            else:
                row["device"] = "cpu"
            row.update({"infer_fps": res["infer_fps"], "infer_fps_best": res["infer_fps_best"],
                        "infer_p50_ms": res["stages_ms"]["infer"]["p50"]})
            # The default row is compared with ONNX Runtime on as many threads as it may use.
            b_threads = d["threads"] if d["threads"] != "auto" else min(threads, key=lambda t: abs(t - cores))
            b = baselines.get((b_threads, sc.label))
            _add_loaded(row, loaded.get((g.name, sc.label)), total["p50"])
            if b is not None:
                row.update({"baseline_threads": b_threads, "baseline_infer_fps": b["infer_fps"],
                            "baseline_infer_fps_best": b["infer_fps_best"],
                            "ratio_infer_vs_baseline": row["infer_fps"] / b["infer_fps"] if b["infer_fps"] else None,
                            "baseline_fps": b["fps"], "baseline_fps_best": b["fps_best"],
                            "baseline_fps_slices": b["fps_slices"],
                            "baseline_fps_spread_pct": b["fps_spread_pct"],
                            "baseline_median_quiet": b["median_quiet"],
                            "ratio_vs_baseline": row["fps"] / b["fps"] if b["fps"] else None,
                            "ratio_best_vs_baseline": row["fps_best"] / b["fps_best"] if b["fps_best"] else None,
                            "baseline_stages_ms": b["stages_ms"]})
            rows.append(row)
            log(f"{d['precision']:>5} {d['setting']:<8} {d['device']:<5} {sc.label:<32} {row['fps']:7.2f} FPS  "
                f"det+pose {row['infer_p50_ms']:.1f} ms  outside ncnn {row['outside_ncnn_pct']:.1f}%"
                + (f"  x{row['ratio_infer_vs_baseline']:.2f} ORT x{b_threads} (det+pose)"
                   if row.get("ratio_infer_vs_baseline") else ""))
    unstable = [r for r in rows if not (r["median_quiet"] and r.get("baseline_median_quiet", True))]
    for r in unstable:
        log(f"note: {r['precision']} x{r['threads']} {r['scenario']}: most slices ran over 10% below the "
            f"fastest (edgepose {r['fps_spread_pct']:.0f}% spread, ONNX Runtime "
            f"{r.get('baseline_fps_spread_pct', float('nan')):.0f}%): the device was not quiet (other load, "
            f"throttling); compare best FPS, or run again")
    baseline_name = next((g.held.get("name") for g in ort_groups.values()), None)
    baseline_rows = [{"threads": t, "scenario": sc.label, **{k: v for k, v in baselines[(t, sc.label)].items()
                                                               if k != "stages_ms"},
                      "stages_ms": baselines[(t, sc.label)]["stages_ms"]}
                     for t in ort_groups for sc in scenarios]
    for br in baseline_rows:
        _add_loaded(br, loaded.get((ort_groups[br["threads"]].name, br["scenario"])), br["stages_ms"]["total"]["p50"])
    from ..schedule import default_plan
    schedule = default_plan()
    return {
        "device": device_info.collect(),
        "models": {"det": det32, "pose": pose32, "gmac": gmacs},
        "settings": {"precisions": list(precisions), "threads": list(threads), "devices": list(devices),
                     "seconds": seconds,
                     "frames": frames, "warmup": warmup, "det_every": det_every, "concurrency": concurrency,
                     "rounds": len(budgets), "extra_rounds_allowed": extra_rounds, "extra_rounds_used": extra_used,
                     "all_models_loaded_at_once": keep, "memory_measured": memory},
        "scenarios": [{k: v for k, v in asdict(s).items() if k != "encoded"} for s in scenarios],
        "baseline_name": baseline_name,
        "stage_names": STAGES + NCNN_STAGES + ["infer"],
        "rows": rows,
        "baseline_rows": baseline_rows,
        "best": best_pairs(rows, baseline_rows),
        "schedule": {"default": schedule.as_dict(), "text": schedule.describe()},
        "load": {"busy_processes": load, "seconds": (load_seconds or seconds) if load else None},
        "unstable_rows": [(r["precision"], r["threads"], r["scenario"]) for r in unstable],
        "load_s": {g.name: statistics.median(g.load_s) for g in everything if g.load_s},
        "peak_rss_mb": peak_rss_mb(),  # the bench process itself, every configuration loaded at once
    }


def _add_loaded(row: Dict[str, Any], sl: Optional[Slice], quiet_p50: float) -> None:
    """p50/p99 of the frame under competing load, and p99 over the quiet p50."""
    if sl is None or not sl.frames:
        return
    from .timing import summarize
    st = summarize([f["total"] for f in sl.frames])
    row.update({"loaded_p50_ms": st["p50"], "loaded_p99_ms": st["p99"], "loaded_frames": len(sl.frames),
                "loaded_p99_over_quiet_p50": st["p99"] / quiet_p50 if quiet_p50 else None})


def best_pairs(rows: List[Dict[str, Any]], baseline_rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Per precision and image: edgepose at its fastest setting against ONNX Runtime at its
    fastest thread count (detection + pose FPS, median slices)."""
    out = []
    for key in dict.fromkeys((r["precision"], r["scenario"]) for r in rows):
        mine = [r for r in rows if (r["precision"], r["scenario"]) == key]
        ours = max(mine, key=lambda r: r.get("infer_fps") or 0.0)
        theirs = [b for b in baseline_rows if b["scenario"] == key[1]]
        best_b = max(theirs, key=lambda b: b.get("infer_fps") or 0.0) if theirs else None
        out.append({"precision": key[0], "scenario": key[1], "setting": ours["setting"],
                    "infer_fps": ours.get("infer_fps"), "infer_p50_ms": ours.get("infer_p50_ms"),
                    "baseline_threads": best_b["threads"] if best_b else None,
                    "baseline_infer_fps": best_b.get("infer_fps") if best_b else None,
                    "baseline_infer_p50_ms": best_b["stages_ms"]["infer"]["p50"] if best_b else None,
                    "ratio": (ours["infer_fps"] / best_b["infer_fps"]) if best_b and best_b.get("infer_fps")
                    else None})
    return out


def _mb(value) -> str:
    return "n/a" if value is None else f"{value:.0f} MB"


def _capped(detect, cap: int):
    def run(image):
        boxes, scores = detect(image)
        if scores is not None and len(scores) > cap:
            order = (-scores).argsort(kind="stable")[:cap]
            return boxes[order], scores[order]
        return boxes[:cap], (None if scores is None else scores[:cap])
    return run
