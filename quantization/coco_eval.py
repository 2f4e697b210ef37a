"""COCO box AP, COCO keypoint AP (body 17) and COCO-WholeBody AP per part, numpy only.

Reproduces the official evaluators' semantics, number for number:
- boxes: pycocotools `COCOeval(iouType="bbox")` (person category, maxDets 1/10/100,
  areas small/medium/large, crowd boxes matched by intersection over detection area);
- body 17: pycocotools `COCOeval(iouType="keypoints")` (OKS with the COCO sigmas and the
  GT segment area, maxDets 20, areas medium/large, GT with no labelled keypoint or
  `iscrowd` ignored, detections outside the area range ignored when unmatched);
- whole-body: xtcocotools `COCOeval(iouType="keypoints_<part>", sigmas, use_area=True)`
  per part as mmpose's CocoWholeBodyMetric runs it (a GT is ignored for a part when that
  part has no labelled keypoint; a prediction whose part scores are all zero is dropped;
  per-part scores `<part>_score` are used when present, else `score`).
A prediction's area (for APm/APl) is taken as both tools' loadRes take it: from its `bbox`
(w * h) when the first prediction carries one, else from the extent of its body keypoints.
Both use 10 thresholds .50:.05:.95 and the 101-point interpolated precision.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from edgepose.errors import EdgeposeError

# Same expressions as the official Params, so that thresholds compare bit-identically.
IOU_THRESHOLDS = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)

BOX_AREAS = {"all": (0 ** 2, 1e5 ** 2), "small": (0 ** 2, 32 ** 2),
             "medium": (32 ** 2, 96 ** 2), "large": (96 ** 2, 1e5 ** 2)}
KEYPOINT_AREAS = {"all": (0 ** 2, 1e5 ** 2), "medium": (32 ** 2, 96 ** 2), "large": (96 ** 2, 1e5 ** 2)}

# COCO-WholeBody result/GT fields, in the order the 133 keypoints are concatenated.
WHOLEBODY_FIELDS = (("body", "keypoints", 17), ("foot", "foot_kpts", 6), ("face", "face_kpts", 68),
                    ("lefthand", "lefthand_kpts", 21), ("righthand", "righthand_kpts", 21))
WHOLEBODY_PARTS = ("body", "foot", "face", "lefthand", "righthand", "wholebody")

Json = Union[str, Mapping[str, Any]]


# --------------------------------------------------------------------------- input

def _load_json(source: Any, what: str) -> Any:
    if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__"):
        try:
            with open(source) as f:
                return json.load(f)
        except FileNotFoundError:
            raise EdgeposeError(f"{source}: {what} file not found") from None
        except (OSError, ValueError) as e:
            raise EdgeposeError(f"{source}: cannot read {what} JSON ({e})") from None
    return source


def _load_gt(gt: Json) -> Dict[str, Any]:
    data = _load_json(gt, "ground-truth")
    origin = gt if isinstance(gt, str) else "<ground truth>"
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise EdgeposeError(f"{origin}: not a COCO annotation file (needs 'images' and 'annotations')")
    data = dict(data)
    data["_origin"] = str(origin)
    return data


def _person_category(gt: Dict[str, Any]) -> int:
    cats = gt.get("categories") or []
    for c in cats:
        if c.get("name") == "person":
            return int(c["id"])
    if len(cats) == 1:
        return int(cats[0]["id"])
    raise EdgeposeError(f"{gt['_origin']}: no 'person' category in the annotation file")


def _results_list(results: Any, origin: str) -> List[Dict[str, Any]]:
    data = _load_json(results, "results")
    if not isinstance(data, list):
        raise EdgeposeError(f"{origin}: results must be a list of COCO result objects")
    return data


def _group(items: Sequence[Dict[str, Any]]) -> Dict[int, List[Dict[str, Any]]]:
    out: Dict[int, List[Dict[str, Any]]] = {}
    for it in items:
        out.setdefault(it["image_id"], []).append(it)
    return out


def _check_image_ids(results: Sequence[Dict[str, Any]], image_ids: set, origin: str) -> None:
    unknown = sorted({r.get("image_id") for r in results} - image_ids, key=str)
    if unknown:
        raise EdgeposeError(f"{origin}: results for image ids not in the ground truth: "
                            f"{unknown[:5]}{' ...' if len(unknown) > 5 else ''}")


# --------------------------------------------------------------------------- matching

@dataclass
class _ImageEval:
    """One image's matches at one area range (what the official evaluateImg returns)."""
    dt_scores: np.ndarray   # (D,) sorted descending, truncated to maxDet
    dt_matched: np.ndarray  # (T, D) bool
    dt_ignore: np.ndarray   # (T, D) bool
    gt_ignore: np.ndarray   # (G,) bool


def _match_image(ious: np.ndarray, gt_ignore: np.ndarray, gt_crowd: np.ndarray, gt_area: np.ndarray,
                 dt_score: np.ndarray, dt_area: np.ndarray, area_rng: Tuple[float, float],
                 max_det: int) -> Optional[_ImageEval]:
    """Greedy matching as the official evaluateImg. `ious` is (D, G) with detections in
    descending-score order (stable), already truncated to the largest maxDet."""
    G, D0 = len(gt_ignore), len(dt_score)
    if G == 0 and D0 == 0:
        return None
    g_ign = gt_ignore | (gt_area < area_rng[0]) | (gt_area > area_rng[1])
    gtind = np.argsort(g_ign.astype(np.int64), kind="mergesort")
    g_ign = g_ign[gtind]
    crowd = gt_crowd[gtind]
    dtind = np.argsort(-dt_score, kind="mergesort")[:max_det]
    scores = dt_score[dtind]
    d_area = dt_area[dtind]
    D = len(dtind)
    T = len(IOU_THRESHOLDS)
    gtm = np.zeros((T, G), bool)
    dtm = np.zeros((T, D), bool)
    dt_ign = np.zeros((T, D), bool)
    if ious.size:
        iou = ious[dtind][:, gtind]
        for t, thr in enumerate(IOU_THRESHOLDS):
            for d in range(D):
                best = min(thr, 1 - 1e-10)
                m = -1
                for g in range(G):
                    if gtm[t, g] and not crowd[g]:
                        continue
                    # ignored GTs are sorted last: a match to a real GT is never traded for one
                    if m > -1 and not g_ign[m] and g_ign[g]:
                        break
                    if iou[d, g] < best:
                        continue
                    best = iou[d, g]
                    m = g
                if m == -1:
                    continue
                dt_ign[t, d] = g_ign[m]
                dtm[t, d] = True
                gtm[t, m] = True
    outside = (d_area < area_rng[0]) | (d_area > area_rng[1])
    dt_ign = dt_ign | (~dtm & outside[None, :])
    return _ImageEval(scores, dtm, dt_ign, g_ign)


def _accumulate(evals: Sequence[Optional[_ImageEval]], max_det: int) -> Tuple[np.ndarray, np.ndarray]:
    """Precision (T, R) at the 101 recall points and recall (T,), -1 where undefined."""
    T, R = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)
    precision = -np.ones((T, R))
    recall = -np.ones(T)
    E = [e for e in evals if e is not None]
    if not E:
        return precision, recall
    scores = np.concatenate([e.dt_scores[:max_det] for e in E])
    order = np.argsort(-scores, kind="mergesort")
    dtm = np.concatenate([e.dt_matched[:, :max_det] for e in E], axis=1)[:, order]
    dt_ign = np.concatenate([e.dt_ignore[:, :max_det] for e in E], axis=1)[:, order]
    gt_ign = np.concatenate([e.gt_ignore for e in E])
    npig = np.count_nonzero(~gt_ign)
    if npig == 0:
        return precision, recall
    tp_sum = np.cumsum(dtm & ~dt_ign, axis=1).astype(np.float64)
    fp_sum = np.cumsum(~dtm & ~dt_ign, axis=1).astype(np.float64)
    for t in range(T):
        tp, fp = tp_sum[t], fp_sum[t]
        nd = len(tp)
        rc = tp / npig
        pr = tp / (fp + tp + np.spacing(1))
        recall[t] = rc[-1] if nd else 0
        # precision envelope: monotonically non-increasing from the right
        pr = np.maximum.accumulate(pr[::-1])[::-1] if nd else pr
        inds = np.searchsorted(rc, RECALL_THRESHOLDS, side="left")
        q = np.zeros(R)
        # recall points beyond the last detection's recall keep precision 0
        valid = inds < nd
        q[valid] = pr[inds[valid]]
        precision[t] = q
    return precision, recall


def _mean_valid(x: np.ndarray) -> float:
    v = x[x > -1]
    return float(np.mean(v)) if v.size else -1.0


# --------------------------------------------------------------------------- engine

@dataclass
class _Prepared:
    """Per image: GT fields and detections (sorted, truncated) with their IoU/OKS matrix."""
    ious: np.ndarray
    gt_ignore: np.ndarray
    gt_crowd: np.ndarray
    gt_area: np.ndarray
    dt_score: np.ndarray
    dt_area: np.ndarray


def _run(images: Sequence[_Prepared], areas: Mapping[str, Tuple[float, float]],
         max_dets: Sequence[int]) -> Dict[str, Any]:
    """Precision/recall for every area range and maxDet (evaluate + accumulate)."""
    prec: Dict[Tuple[str, int], np.ndarray] = {}
    rec: Dict[Tuple[str, int], np.ndarray] = {}
    for label, rng in areas.items():
        per_image = [_match_image(im.ious, im.gt_ignore, im.gt_crowd, im.gt_area, im.dt_score,
                                  im.dt_area, rng, max_dets[-1]) for im in images]
        for md in max_dets:
            prec[label, md], rec[label, md] = _accumulate(per_image, md)
    return {"precision": prec, "recall": rec}


def _prepare_sorted(dts: List[Dict[str, Any]], score_key: str, max_det: int) -> List[Dict[str, Any]]:
    order = np.argsort([-float(d[score_key]) for d in dts], kind="mergesort")
    return [dts[i] for i in order][:max_det]


def _box_ious(dt_boxes: np.ndarray, gt_boxes: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """(D, G) IoU of xywh boxes; a crowd GT counts intersection over the detection's area."""
    if len(dt_boxes) == 0 or len(gt_boxes) == 0:
        return np.zeros((len(dt_boxes), len(gt_boxes)))
    d, g = dt_boxes[:, None, :], gt_boxes[None, :, :]
    w = np.minimum(d[..., 0] + d[..., 2], g[..., 0] + g[..., 2]) - np.maximum(d[..., 0], g[..., 0])
    h = np.minimum(d[..., 1] + d[..., 3], g[..., 1] + g[..., 3]) - np.maximum(d[..., 1], g[..., 1])
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    da = d[..., 2] * d[..., 3]
    ga = g[..., 2] * g[..., 3]
    union = np.where(crowd[None, :], da, da + ga - inter)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(inter > 0, inter / union, 0.0)
    return out


def _oks(dt_kpts: np.ndarray, gt_kpts: np.ndarray, gt_boxes: np.ndarray, gt_areas: np.ndarray,
         sigmas: np.ndarray) -> np.ndarray:
    """(D, G) object keypoint similarity. dt_kpts (D, K, 3), gt_kpts (G, K, 3)."""
    D, G = len(dt_kpts), len(gt_kpts)
    out = np.zeros((D, G))
    if D == 0 or G == 0:
        return out
    var = (sigmas * 2) ** 2
    xd, yd = dt_kpts[..., 0], dt_kpts[..., 1]
    for j in range(G):
        xg, yg, vg = gt_kpts[j, :, 0], gt_kpts[j, :, 1], gt_kpts[j, :, 2]
        visible = vg > 0
        if visible.any():
            dx = xd - xg
            dy = yd - yg
        else:
            # unlabelled GT: distance to a box twice the GT box (as the official code)
            bx, by, bw, bh = gt_boxes[j]
            x0, x1, y0, y1 = bx - bw, bx + bw * 2, by - bh, by + bh * 2
            dx = np.maximum(0, x0 - xd) + np.maximum(0, xd - x1)
            dy = np.maximum(0, y0 - yd) + np.maximum(0, yd - y1)
        e = (dx ** 2 + dy ** 2) / var / (gt_areas[j] + np.spacing(1)) / 2
        if visible.any():
            e = e[:, visible]
        out[:, j] = np.sum(np.exp(-e), axis=1) / e.shape[1]
    return out


def _gt_area(ann: Dict[str, Any], origin: str) -> float:
    if "area" not in ann:
        raise EdgeposeError(f"{origin}: annotation {ann.get('id')} has no 'area' (COCO AP needs the "
                            f"segment area of every person)")
    return float(ann["area"])


def _gt_bbox(ann: Dict[str, Any], origin: str) -> List[float]:
    bb = ann.get("bbox")
    if not isinstance(bb, (list, tuple)) or len(bb) != 4:
        raise EdgeposeError(f"{origin}: annotation {ann.get('id')} has no valid 'bbox' [x, y, w, h]")
    return [float(v) for v in bb]


# --------------------------------------------------------------------------- boxes

def _detections_as_results(detections: Any, person: int) -> List[Dict[str, Any]]:
    """Accept COCO result dicts or {image_id: (boxes_xyxy (N,4), scores (N,))}."""
    if isinstance(detections, Mapping):
        out = []
        for image_id, (boxes, scores) in detections.items():
            boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
            scores = np.asarray(scores, np.float64).reshape(-1)
            if len(boxes) != len(scores):
                raise EdgeposeError(f"image {image_id}: {len(boxes)} boxes but {len(scores)} scores")
            for b, s in zip(boxes, scores):
                out.append({"image_id": image_id, "category_id": person,
                            "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "score": float(s)})
        return out
    return _results_list(detections, "<detections>")


def evaluate_boxes(gt_json_path: Json, detections: Any) -> Dict[str, float]:
    """Person box AP as pycocotools COCOeval(iouType='bbox') with catIds=[person].

    `detections`: a list of COCO result dicts (image_id, bbox [x,y,w,h], score,
    optional category_id, default person), a path to such a JSON file, or a mapping
    image_id -> (boxes xyxy (N,4), scores (N,)).
    Returns AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl (-1 where undefined).
    """
    gt = _load_gt(gt_json_path)
    person = _person_category(gt)
    dets = _detections_as_results(detections, person)
    image_ids = {im["id"] for im in gt["images"]}
    _check_image_ids(dets, image_ids, "<detections>")
    for d in dets:
        if "bbox" not in d or "score" not in d or len(d["bbox"]) != 4:
            raise EdgeposeError(f"detection for image {d.get('image_id')} lacks 'bbox' [x,y,w,h] or 'score'")
    dets = [d for d in dets if d.get("category_id", person) == person]
    gts = [a for a in gt["annotations"] if a.get("category_id") == person]
    gt_by_img, dt_by_img = _group(gts), _group(dets)
    max_dets = [1, 10, 100]
    images = []
    for image_id in sorted(image_ids, key=lambda v: (str(type(v)), v)):
        g = gt_by_img.get(image_id, [])
        d = _prepare_sorted(dt_by_img.get(image_id, []), "score", max_dets[-1])
        crowd = np.array([bool(a.get("iscrowd", 0)) for a in g], bool)
        gboxes = np.array([_gt_bbox(a, gt["_origin"]) for a in g], np.float64).reshape(-1, 4)
        dboxes = np.array([[float(v) for v in x["bbox"]] for x in d], np.float64).reshape(-1, 4)
        images.append(_Prepared(
            ious=_box_ious(dboxes, gboxes, crowd) if len(g) and len(d) else np.zeros((0, 0)),
            gt_ignore=crowd.copy(), gt_crowd=crowd,
            gt_area=np.array([_gt_area(a, gt["_origin"]) for a in g], np.float64),
            dt_score=np.array([float(x["score"]) for x in d], np.float64),
            dt_area=dboxes[:, 2] * dboxes[:, 3]))
    r = _run(images, BOX_AREAS, max_dets)
    P, Rc = r["precision"], r["recall"]
    i50, i75 = 0, 5  # indices of .50 and .75 in IOU_THRESHOLDS
    return {
        "AP": _mean_valid(P["all", 100]),
        "AP50": _mean_valid(P["all", 100][i50]),
        "AP75": _mean_valid(P["all", 100][i75]),
        "APs": _mean_valid(P["small", 100]),
        "APm": _mean_valid(P["medium", 100]),
        "APl": _mean_valid(P["large", 100]),
        "AR1": _mean_valid(Rc["all", 1]),
        "AR10": _mean_valid(Rc["all", 10]),
        "AR100": _mean_valid(Rc["all", 100]),
        "ARs": _mean_valid(Rc["small", 100]),
        "ARm": _mean_valid(Rc["medium", 100]),
        "ARl": _mean_valid(Rc["large", 100]),
    }


# --------------------------------------------------------------------------- keypoints

def _kpt_array(values: Any, k: int, what: str) -> np.ndarray:
    arr = np.asarray(values, np.float64).reshape(-1)
    if arr.size != 3 * k:
        raise EdgeposeError(f"{what}: expected {k} keypoints ({3 * k} values x,y,v), got {arr.size} values")
    return arr.reshape(k, 3)


def _split_wholebody(item: Dict[str, Any], what: str) -> Dict[str, np.ndarray]:
    """Part name -> (k, 3) array; accepts the split official format or one 133-long 'keypoints'."""
    kp = item.get("keypoints")
    if kp is None:
        raise EdgeposeError(f"{what}: no 'keypoints'")
    total = sum(n for _, _, n in WHOLEBODY_FIELDS)
    if len(kp) == 3 * total and "foot_kpts" not in item:
        arr = _kpt_array(kp, total, what)
        out, start = {}, 0
        for part, _, n in WHOLEBODY_FIELDS:
            out[part] = arr[start:start + n]
            start += n
        return out
    return {part: _kpt_array(item.get(field) if item.get(field) is not None else [], n, f"{what} {field}")
            for part, field, n in WHOLEBODY_FIELDS}


def _result_area(body: np.ndarray, result: Dict[str, Any], from_box: bool) -> float:
    """A detection's area for the APm/APl ranges, as both official loadRes compute it: when the
    first result carries a non-empty `bbox`, every result's area is its box's w * h; otherwise
    the extent of all its body keypoints, whatever their score."""
    if from_box:
        bb = result.get("bbox")
        if not (isinstance(bb, (list, tuple)) and len(bb) == 4):
            raise EdgeposeError(f"result for image {result.get('image_id')} has no 'bbox' [x, y, w, h] "
                                f"while the first result has one (COCO then takes every area from the box)")
        return float(bb[2]) * float(bb[3])
    x, y = body[:, 0], body[:, 1]
    return float((x.max() - x.min()) * (y.max() - y.min()))


def _areas_from_boxes(results: Sequence[Dict[str, Any]]) -> bool:
    first = results[0] if results else {}
    return bool(isinstance(first, dict) and first.get("bbox"))


def _keypoint_summary(r: Dict[str, Any]) -> Dict[str, float]:
    P, Rc = r["precision"], r["recall"]
    return {
        "AP": _mean_valid(P["all", 20]),
        "AP50": _mean_valid(P["all", 20][0]),
        "AP75": _mean_valid(P["all", 20][5]),
        "APm": _mean_valid(P["medium", 20]),
        "APl": _mean_valid(P["large", 20]),
        "AR": _mean_valid(Rc["all", 20]),
        "AR50": _mean_valid(Rc["all", 20][0:1]),
        "AR75": _mean_valid(Rc["all", 20][5:6]),
        "ARm": _mean_valid(Rc["medium", 20]),
        "ARl": _mean_valid(Rc["large", 20]),
    }


def _sigmas(kind: str) -> np.ndarray:
    from edgepose.keypoint_sets import get_keypoint_set
    name = "coco17" if kind == "coco17" else "coco_wholebody133"
    return np.asarray(get_keypoint_set(name)["sigmas"], np.float64)


def _evaluate_part(gt: Dict[str, Any], gts: List[Dict[str, Any]], dts: List[Dict[str, Any]],
                   sigmas: np.ndarray, kpts_of, score_of, gt_labelled, drop_unscored: bool) -> Dict[str, float]:
    """One OKS evaluation. kpts_of(item) -> (K,3); score_of(dt) -> float;
    gt_labelled(ann, kpts) -> bool (False makes the GT ignored)."""
    image_ids = sorted({im["id"] for im in gt["images"]}, key=lambda v: (str(type(v)), v))
    gt_by_img = _group(gts)
    kept = []
    for d in dts:
        k = kpts_of(d)
        if drop_unscored and np.count_nonzero(k[:, 2] > 0) == 0:
            continue
        kept.append((d, k, score_of(d)))
    dt_by_img: Dict[Any, list] = {}
    for entry in kept:
        dt_by_img.setdefault(entry[0]["image_id"], []).append(entry)
    max_det = 20
    images = []
    for image_id in image_ids:
        g = gt_by_img.get(image_id, [])
        dl = dt_by_img.get(image_id, [])
        order = np.argsort([-s for _, _, s in dl], kind="mergesort")[:max_det]
        dl = [dl[i] for i in order]
        g_k = np.array([kpts_of(a) for a in g], np.float64).reshape(len(g), len(sigmas), 3)
        d_k = np.array([k for _, k, _ in dl], np.float64).reshape(len(dl), len(sigmas), 3)
        crowd = np.array([bool(a.get("iscrowd", 0)) for a in g], bool)
        labelled = np.array([gt_labelled(a, k) for a, k in zip(g, g_k)], bool)
        g_area = np.array([_gt_area(a, gt["_origin"]) for a in g], np.float64)
        g_box = np.array([_gt_bbox(a, gt["_origin"]) for a in g], np.float64).reshape(-1, 4)
        images.append(_Prepared(
            ious=_oks(d_k, g_k, g_box, g_area, sigmas) if len(g) and len(dl) else np.zeros((0, 0)),
            gt_ignore=crowd | ~labelled, gt_crowd=crowd, gt_area=g_area,
            dt_score=np.array([s for _, _, s in dl], np.float64),
            dt_area=np.array([d["_area"] for d, _, _ in dl], np.float64)))
    return _keypoint_summary(_run(images, KEYPOINT_AREAS, [max_det]))


def evaluate_keypoints(gt_json_path: Json, results: Any, kind: str = "coco17",
                       sigmas: Optional[Sequence[float]] = None) -> Dict[str, Any]:
    """COCO keypoint AP.

    kind="coco17": pycocotools semantics; returns {AP, AP50, AP75, APm, APl, AR, AR50, AR75, ARm, ARl}.
    kind="wholebody": xtcocotools/mmpose semantics; returns {part: {AP, ...}} for
    body, foot, face, lefthand, righthand, wholebody.
    `results`: list of COCO keypoint result dicts (image_id, keypoints [x,y,score]*K, score;
    whole-body either split as keypoints/foot_kpts/face_kpts/lefthand_kpts/righthand_kpts or
    one 133-keypoint 'keypoints'), or a path to such a JSON file.
    """
    if kind not in ("coco17", "wholebody"):
        raise EdgeposeError(f"unknown keypoint evaluation kind {kind!r} (coco17 or wholebody)")
    gt = _load_gt(gt_json_path)
    person = _person_category(gt)
    res = _results_list(results, str(results) if isinstance(results, str) else "<results>")
    _check_image_ids(res, {im["id"] for im in gt["images"]}, "<results>")
    all_sigmas = np.asarray(sigmas, np.float64) if sigmas is not None else _sigmas(kind)
    gts = [a for a in gt["annotations"] if a.get("category_id") == person]
    # Copies: the input lists are not modified.
    dts = [dict(d) for d in res if d.get("category_id", person) == person]
    from_box = _areas_from_boxes(res)
    for d in dts:
        if "score" not in d:
            raise EdgeposeError(f"result for image {d.get('image_id')} has no 'score'")

    if kind == "coco17":
        k = len(all_sigmas)
        for d in dts:
            d["_k"] = _kpt_array(d.get("keypoints", []), k, f"result for image {d.get('image_id')}")
            d["_area"] = _result_area(d["_k"], d, from_box)
        for a in gts:
            a_k = a.get("keypoints")
            if a_k is None:
                raise EdgeposeError(f"{gt['_origin']}: annotation {a.get('id')} has no 'keypoints'")
        cache = {id(a): _kpt_array(a["keypoints"], k, f"{gt['_origin']}: annotation {a.get('id')}")
                 for a in gts}
        return _evaluate_part(
            gt, gts, dts, all_sigmas,
            kpts_of=lambda x: x["_k"] if "_k" in x else cache[id(x)],
            score_of=lambda d: float(d["score"]),
            # pycocotools ignores a GT by its num_keypoints field
            gt_labelled=lambda a, kk: int(a.get("num_keypoints", np.count_nonzero(kk[:, 2] > 0))) != 0,
            drop_unscored=False)

    if len(all_sigmas) != 133:
        raise EdgeposeError(f"whole-body evaluation needs 133 sigmas, got {len(all_sigmas)}")
    for d in dts:
        d["_parts"] = _split_wholebody(d, f"result for image {d.get('image_id')}")
        d["_area"] = _result_area(d["_parts"]["body"], d, from_box)
    gt_parts = {id(a): _split_wholebody(a, f"{gt['_origin']}: annotation {a.get('id')}") for a in gts}
    cuts = np.cumsum([0] + [n for _, _, n in WHOLEBODY_FIELDS])
    out: Dict[str, Any] = {}
    for i, part in enumerate(WHOLEBODY_PARTS):
        if part == "wholebody":
            def kpts_of(x, _p=None):
                parts = x["_parts"] if "_parts" in x else gt_parts[id(x)]
                return np.concatenate([parts[p] for p, _, _ in WHOLEBODY_FIELDS])
            part_sigmas = all_sigmas
        else:
            def kpts_of(x, _p=part):
                return (x["_parts"] if "_parts" in x else gt_parts[id(x)])[_p]
            part_sigmas = all_sigmas[cuts[i]:cuts[i + 1]]
        # xtcocotools scores body by 'score' and every other part by '<part>_score' when present
        key = "score" if part == "body" else f"{part}_score"
        out[part] = _evaluate_part(
            gt, gts, dts, part_sigmas, kpts_of,
            score_of=lambda d, _key=key: float(d.get(_key, d["score"])),
            gt_labelled=lambda a, kk: np.count_nonzero(kk[:, 2] > 0) > 0,
            drop_unscored=True)
    return out
