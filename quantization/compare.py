"""FP32 vs FP16 vs INT8 (and mixed) variants of one model over one image set.

Every variant sees exactly the same inputs: for pose the same person crops (GT boxes by
default, the top-down protocol; detector boxes with `det`), for detectors the same images.
Variants run interleaved image by image, so the speed figures share the machine's load.
Measured per variant: COCO AP (when the set has labels), agreement with the FP32 variant
(no labels needed), and inference time (ms per crop / per image, pre/post-processing excluded).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from edgepose.runtime.image_input import as_bgr8, read_image

from edgepose.errors import EdgeposeError, InferenceError
from edgepose.model_meta import FORMAT, ModelMeta, find_model, model_files

from . import agreement
from .coco_eval import WHOLEBODY_FIELDS, evaluate_boxes, evaluate_keypoints

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# instance score = box score x mean of the keypoint scores above this (mmpose CocoMetric default)
KEYPOINT_SCORE_THR = 0.2
# detector boxes below this score are not given to the pose model (mmpose demo default)
DET_SCORE_THR = 0.3


# --------------------------------------------------------------------------- variants

@dataclass
class Variant:
    label: str          # shown in the report: fp32, fp16, int8, mixed, ...
    json_path: str
    run_precision: str  # what the runtime is asked for: fp32 | fp16 | int8
    meta: ModelMeta

    def describe(self) -> Dict[str, Any]:
        q = self.meta.quantization or {}
        floats = q.get("float_layers") or {}
        if not isinstance(floats, dict):  # a plain list of names: no reasons recorded
            floats = {name: "" for name in floats}
        return {"label": self.label, "model": self.json_path, "name": self.meta.name,
                "file_precision": self.meta.precision, "run_precision": self.run_precision,
                "method": q.get("method"), "float_layers": dict(sorted(floats.items())),
                "calibration_sha256": q.get("calibration_sha256")}


def _model_jsons(arg: str) -> List[str]:
    if os.path.isdir(arg):
        out = [full for full, _ in model_files(arg)]
        if not out:
            raise EdgeposeError(f"{arg}: folder holds no converted model (no {FORMAT} .json file)")
        return out
    return [find_model(arg)]


def resolve_variants(model_args: Sequence[str], fp16: bool = True) -> List[Variant]:
    """Model folders / .json / .param -> the variants to run, the fp32 reference first.

    An fp32 file also yields an "fp16" variant (the same file with ncnn fp16 storage and
    arithmetic) unless an fp16 file of the same model is given.
    """
    if not model_args:
        raise EdgeposeError("compare needs at least one model")
    seen, metas = set(), []
    for arg in model_args:
        for path in _model_jsons(arg):
            real = os.path.realpath(path)
            if real not in seen:
                seen.add(real)
                metas.append((path, ModelMeta.load(path)))
    tasks = {m.task for _, m in metas}
    if len(tasks) != 1:
        raise EdgeposeError(f"the models mix tasks ({', '.join(sorted(tasks))}); compare variants of one model")
    if metas[0][1].task == "pose":
        counts = {m.num_keypoints for _, m in metas}
        if len(counts) != 1:
            raise EdgeposeError(f"the pose models have different keypoint counts {sorted(counts)}; "
                                f"compare variants of one model")
    have_fp16_file = any(m.precision == "fp16" for _, m in metas)
    variants: List[Variant] = []
    for path, m in metas:
        if m.precision == "fp32":
            variants.append(Variant("fp32", path, "fp32", m))
            if fp16 and not have_fp16_file:
                variants.append(Variant("fp16", path, "fp16", m))
        elif m.precision == "fp16":
            variants.append(Variant("fp16", path, "fp16", m))
        elif m.precision in ("int8", "mixed"):
            variants.append(Variant(m.precision, path, "int8", m))
        else:
            raise EdgeposeError(f"{path}: unknown precision {m.precision!r}")
    if not any(v.label == "fp32" for v in variants):
        raise EdgeposeError("compare needs the fp32 model as the reference (give its folder or .json too)")
    # unique labels: int8 twice (two methods) -> int8-kl, int8-aciq
    counts: Dict[str, int] = {}
    for v in variants:
        counts[v.label] = counts.get(v.label, 0) + 1
    for v in variants:
        if counts[v.label] > 1:
            q = v.meta.quantization or {}
            v.label = f"{v.label}-{q.get('method') or v.meta.name}"
    labels = [v.label for v in variants]
    if len(set(labels)) != len(labels):
        for i, v in enumerate(variants):
            v.label = f"{v.label}#{i}"
    variants.sort(key=lambda v: (v.run_precision != "fp32" or v.meta.precision != "fp32",))
    return variants


# --------------------------------------------------------------------------- data

@dataclass
class ImageItem:
    image_id: Any
    path: str
    annotations: List[Dict[str, Any]] = field(default_factory=list)


@dataclass
class Dataset:
    images: List[ImageItem]
    gt_path: Optional[str]          # COCO annotation file, None for an unlabelled folder
    gt: Optional[Dict[str, Any]]

    @property
    def labelled(self) -> bool:
        return self.gt is not None

    @property
    def wholebody(self) -> bool:
        return bool(self.gt) and any("foot_kpts" in a for a in self.gt["annotations"])


def _is_coco_json(path: str) -> bool:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "images" in data and "annotations" in data


def _find_image(file_name: str, roots: Sequence[str]) -> Optional[str]:
    for root in roots:
        for sub in ("", "images", "val2017", "train2017", "image"):
            cand = os.path.join(root, sub, file_name)
            if os.path.isfile(cand):
                return cand
    return None


def load_dataset(data: str, max_images: Optional[int] = None) -> Dataset:
    """A COCO annotation .json (images found beside it), a folder holding one, or a folder of images."""
    if not os.path.exists(data):
        raise EdgeposeError(f"{data}: data not found (give a COCO .json or a folder)")
    gt_path = None
    if os.path.isfile(data):
        if not data.endswith(".json") or not _is_coco_json(data):
            raise EdgeposeError(f"{data}: not a COCO annotation file (needs 'images' and 'annotations')")
        gt_path = data
    else:
        cands = [os.path.join(r, f) for r, _, fs in os.walk(data) for f in sorted(fs) if f.endswith(".json")]
        cands = [c for c in sorted(cands) if _is_coco_json(c)]
        if len(cands) > 1:
            raise EdgeposeError(f"{data}: holds several COCO annotation files ({', '.join(cands[:4])}); "
                                f"give the one to use")
        gt_path = cands[0] if cands else None
    if gt_path is None:
        files = sorted(f for f in os.listdir(data) if f.lower().endswith(IMAGE_EXTS))
        if not files:
            raise EdgeposeError(f"{data}: no images and no COCO annotation file")
        items = [ImageItem(f, os.path.join(data, f)) for f in files]
        return Dataset(items[:max_images] if max_images else items, None, None)
    with open(gt_path) as f:
        gt = json.load(f)
    here = os.path.dirname(os.path.abspath(gt_path))
    roots = [here, os.path.dirname(here)] + ([data] if os.path.isdir(data) else [])
    by_image: Dict[Any, List[Dict[str, Any]]] = {}
    for a in gt["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    items, missing = [], []
    for im in sorted(gt["images"], key=lambda i: str(i["id"])):
        path = _find_image(im["file_name"], roots)
        if path is None:
            missing.append(im["file_name"])
            continue
        items.append(ImageItem(im["id"], path, by_image.get(im["id"], [])))
    if missing:
        raise EdgeposeError(f"{gt_path}: {len(missing)} image(s) not found beside it (e.g. {missing[0]}); "
                            f"looked in {', '.join(roots)} and their images/ or val2017/ folders")
    if max_images:
        items = items[:max_images]
        keep = {it.image_id for it in items}
        gt = dict(gt, images=[i for i in gt["images"] if i["id"] in keep],
                  annotations=[a for a in gt["annotations"] if a["image_id"] in keep])
    return Dataset(items, gt_path, gt)


def _labelled_keypoints(a: Dict[str, Any]) -> bool:
    fields = ["keypoints"] + [f for _, f, _ in WHOLEBODY_FIELDS if f in a and f != "keypoints"]
    return any(np.any(np.asarray(a.get(f) or [0], float)[2::3] > 0) for f in fields)


def gt_person_boxes(annotations: Sequence[Dict[str, Any]]) -> np.ndarray:
    """xyxy boxes of the non-crowd persons with labelled keypoints (the top-down GT-box protocol)."""
    boxes = [[x, y, x + w, y + h] for a in annotations if not a.get("iscrowd") and _labelled_keypoints(a)
             for x, y, w, h in [a["bbox"]]]
    return np.asarray(boxes, np.float32).reshape(-1, 4)


# --------------------------------------------------------------------------- timing

@dataclass
class _Timer:
    seconds: float = 0.0
    units: int = 0

    def ms_per_unit(self) -> Optional[float]:
        return 1000.0 * self.seconds / self.units if self.units else None


def _timed(timer: _Timer, units: int, fn: Callable, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    timer.seconds += time.perf_counter() - t0
    timer.units += units
    return out


def _progress(iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc=desc, unit="img")


# --------------------------------------------------------------------------- pose

def _pose_result(image_id: Any, kpts: np.ndarray, scores: np.ndarray, box_score: float,
                 wholebody_gt: bool, body_only: bool) -> Dict[str, Any]:
    valid = scores[scores > KEYPOINT_SCORE_THR]
    score = float(box_score) * (float(valid.mean()) if valid.size else 0.0)
    flat = np.concatenate([kpts, scores[:, None]], axis=1).astype(np.float64)
    r: Dict[str, Any] = {"image_id": image_id, "category_id": 1, "score": score}
    if body_only:
        r["keypoints"] = flat[:17].reshape(-1).tolist()
    elif wholebody_gt:
        start = 0
        for _, name, n in WHOLEBODY_FIELDS:
            r[name] = flat[start:start + n].reshape(-1).tolist()
            start += n
    else:
        r["keypoints"] = flat.reshape(-1).tolist()
    return r


def _pose_ap(dataset: Dataset, results: List[Dict[str, Any]], num_keypoints: int) -> Optional[Dict[str, Any]]:
    if not dataset.labelled:
        return None
    person = [c["id"] for c in dataset.gt.get("categories", []) if c.get("name") == "person"] or [1]
    for r in results:
        r["category_id"] = person[0]
    if num_keypoints == 133 and dataset.wholebody:
        return evaluate_keypoints(dataset.gt, results, kind="wholebody")
    # body-17 protocol: a 17-kp model, or the body part of a whole-body model on body-17 labels
    return {"body": evaluate_keypoints(dataset.gt, results, kind="coco17")}


def variant_device(v: Variant, device: str) -> str:
    """int8 variants run on the CPU whatever the device (ncnn's Vulkan int8 path is not validated)."""
    return "cpu" if v.run_precision == "int8" or v.meta.precision in ("int8", "mixed") else device


def _check_finite(variant: "Variant", image: str, *arrays: np.ndarray) -> None:
    """A NaN output would pass through argmax and mean() as a number; it is a failure."""
    bad = sum(int(np.count_nonzero(~np.isfinite(np.asarray(a, np.float64)))) for a in arrays)
    if bad:
        raise InferenceError(f"{variant.json_path}: {bad} NaN/Inf output values on {image}; "
                             f"this variant's results would be meaningless")


def compare_pose(variants: List[Variant], dataset: Dataset, det: Optional[str] = None,
                 threads: Optional[int] = None, progress: bool = True,
                 det_score: float = DET_SCORE_THR, device: str = "cpu") -> Dict[str, Any]:
    from edgepose.runtime.pose import PoseEstimator
    estimators = {v.label: PoseEstimator(v.json_path, threads=threads, precision=v.run_precision,
                                         device=variant_device(v, device))
                  for v in variants}
    ref = variants[0].label
    ref_est = estimators[ref]
    sizes = {e.input_size for e in estimators.values()}
    if len(sizes) != 1:
        raise EdgeposeError(f"the variants have different input sizes {sorted(sizes)}")
    detector = None
    if det:
        from edgepose.runtime.detector import Detector
        detector = Detector(det, threads=threads, precision="fp32", device=device)
    elif not dataset.labelled:
        raise EdgeposeError("unlabelled images need person boxes: give a detector with --det")
    k = ref_est.num_keypoints
    parts = (ref_est.meta.keypoints or {}).get("parts") or {}
    body_only = k == 133 and dataset.labelled and not dataset.wholebody
    timers = {v.label: _Timer() for v in variants}
    kpts: Dict[str, list] = {v.label: [] for v in variants}
    bins: Dict[str, list] = {v.label: [] for v in variants}
    results: Dict[str, list] = {v.label: [] for v in variants}
    all_boxes: list = []
    warmed = False
    for item in _progress(dataset.images, len(dataset.images), "compare pose", progress):
        image = as_bgr8(read_image(item.path))
        if detector is not None:
            boxes, box_scores = detector(image)
            keep = box_scores >= det_score
            boxes, box_scores = boxes[keep], box_scores[keep]
        else:
            boxes = gt_person_boxes(item.annotations)
            box_scores = np.ones(len(boxes), np.float32)
        if len(boxes) == 0:
            continue
        crops, centers, scales, runs = ref_est.preprocess(image, boxes)
        if not crops:
            continue
        if not warmed:  # first inference allocates; keep it out of the timings
            for est in estimators.values():
                est.inference(crops[:1])
            warmed = True
        all_boxes.append(boxes[runs])
        for v in variants:
            est = estimators[v.label]
            sx, sy = _timed(timers[v.label], len(crops), est.inference, crops)
            _check_finite(v, item.path, sx, sy)
            pts, sc = est.postprocess(sx, sy, centers, scales, runs)
            kpts[v.label].append(pts[runs])
            bins[v.label].append(agreement.simcc_bins(sx, sy))
            for i in np.flatnonzero(runs):
                results[v.label].append(_pose_result(item.image_id, pts[i], sc[i], float(box_scores[i]),
                                                     dataset.wholebody, body_only))
    for est in estimators.values():
        est.close()
    if not all_boxes:
        raise EdgeposeError("no person boxes in the data: nothing to compare")
    boxes_all = np.concatenate(all_boxes)
    ref_k = np.concatenate(kpts[ref])
    ref_b = np.concatenate(bins[ref])
    out_variants = []
    for v in variants:
        vk = np.concatenate(kpts[v.label])
        vb = np.concatenate(bins[v.label])
        entry = v.describe()
        entry["ap"] = _pose_ap(dataset, results[v.label], k)
        entry["agreement"] = None if v.label == ref else {
            "keypoints": agreement.keypoint_agreement(ref_k, vk, boxes_all, parts),
            "argmax": agreement.argmax_agreement(ref_b, vb, parts)}
        entry["errors_px"] = None if v.label == ref else agreement.keypoint_errors(ref_k, vk)
        entry["speed"] = {"ms_per_crop": timers[v.label].ms_per_unit(), "crops": timers[v.label].units,
                          "threads": estimators[v.label].model.threads,
                          "vs_fp32": _ratio(timers[v.label], timers[ref])}
        out_variants.append(entry)
    return {"task": "pose", "reference": ref, "boxes": "detector" if detector is not None else "ground truth",
            "detector": det, "det_score_threshold": det_score if detector is not None else None,
            "persons": int(len(boxes_all)), "images": len(dataset.images),
            "keypoints": k, "parts": {n: list(p) for n, p in parts.items()}, "variants": out_variants}


# --------------------------------------------------------------------------- detector

def compare_detector(variants: List[Variant], dataset: Dataset, threads: Optional[int] = None,
                     progress: bool = True, device: str = "cpu") -> Dict[str, Any]:
    from edgepose.runtime.detector import Detector
    # Box AP by the official protocol: every detection down to the config's test score threshold
    # (the metadata's detector.score_threshold), not only the pipeline's confident persons.
    thresholds = {v.label: ap_score_threshold(v.meta) for v in variants}
    detectors = {v.label: Detector(v.json_path, threads=threads, precision=v.run_precision,
                                   score_threshold=thresholds[v.label],
                                   device=variant_device(v, device)) for v in variants}
    ref = variants[0].label
    timers = {v.label: _Timer() for v in variants}
    dets: Dict[str, Dict[Any, tuple]] = {v.label: {} for v in variants}
    best: Dict[str, list] = {v.label: [] for v in variants}
    counts = {v.label: 0 for v in variants}
    warmed = False
    for item in _progress(dataset.images, len(dataset.images), "compare detector", progress):
        image = as_bgr8(read_image(item.path))
        if not warmed:
            for d in detectors.values():
                d(image)
            warmed = True
        for v in variants:
            boxes, scores = _timed(timers[v.label], 1, detectors[v.label], image)
            _check_finite(v, item.path, boxes, scores)
            dets[v.label][item.image_id] = (boxes, scores)
            counts[v.label] += len(boxes)
        ref_boxes = dets[ref][item.image_id][0]
        for v in variants:
            best[v.label].append(agreement.best_box_ious(ref_boxes, dets[v.label][item.image_id][0]))
    out_variants = []
    for v in variants:
        entry = v.describe()
        entry["ap"] = evaluate_boxes(dataset.gt, dets[v.label]) if dataset.labelled else None
        entry["agreement"] = None if v.label == ref else {"boxes": agreement.summarize_box_agreement(
            np.concatenate(best[v.label]) if best[v.label] else np.zeros(0), counts[ref], counts[v.label])}
        entry["boxes"] = counts[v.label]
        entry["speed"] = {"ms_per_image": timers[v.label].ms_per_unit(), "images": timers[v.label].units,
                          "threads": detectors[v.label].model.threads,
                          "vs_fp32": _ratio(timers[v.label], timers[ref])}
        entry["ap_score_threshold"] = thresholds[v.label]
        out_variants.append(entry)
    return {"task": "detect", "reference": ref, "images": len(dataset.images), "variants": out_variants,
            "ap_protocol": "COCO box AP over every detection at or above the config's test score threshold "
                           f"({', '.join(sorted({str(t) for t in thresholds.values()}))}), up to "
                           "the config's max_per_img per image; the pipeline's person threshold "
                           f"({DET_SCORE_THR}) is not applied"}


def ap_score_threshold(meta: ModelMeta) -> float:
    """The detector config's test score threshold (official box AP protocol)."""
    det = meta.detector or {}
    if "score_threshold" not in det:
        raise EdgeposeError(f"{meta.name}: metadata has no detector.score_threshold (re-convert the detector)")
    return float(det["score_threshold"])


def _ratio(timer: "_Timer", ref: "_Timer") -> Optional[float]:
    a, b = timer.ms_per_unit(), ref.ms_per_unit()
    return round(a / b, 4) if a is not None and b else None


# --------------------------------------------------------------------------- entry point

def compare(models: Sequence[str], data: str, out_dir: str, det: Optional[str] = None,
            threads: Optional[int] = None, max_images: Optional[int] = None, fp16: bool = True,
            plots: bool = True, progress: bool = True, det_score: float = DET_SCORE_THR,
            device: str = "cpu") -> Dict[str, Any]:
    """Run the variants, write report.md + report.json (+ PNG plots) into out_dir; return the report."""
    from . import report as report_mod
    outputs = report_mod.check_out_dir(out_dir)
    try:
        return _compare_into(outputs, models, data, det, threads, max_images, fp16, plots, progress, det_score,
                             device)
    except BaseException:
        outputs.rollback()
        raise


def _compare_into(outputs, models, data, det, threads, max_images, fp16, plots, progress, det_score, device):
    from . import report as report_mod
    variants = resolve_variants(models, fp16=fp16)
    dataset = load_dataset(data, max_images=max_images)
    if variants[0].meta.task == "pose":
        result = compare_pose(variants, dataset, det=det, threads=threads, progress=progress,
                              det_score=det_score, device=device)
    else:
        if det:
            raise EdgeposeError("--det is for pose models; the models given are detectors")
        if not dataset.labelled:
            raise EdgeposeError(f"{data}: detector AP needs a COCO annotation file")
        result = compare_detector(variants, dataset, threads=threads, progress=progress, device=device)
    result["data"] = dataset.gt_path or os.path.abspath(data)
    result["threads"] = threads
    result["device"] = {v.label: variant_device(v, device) for v in variants}
    return report_mod.write_report(result, outputs, plots=plots)
