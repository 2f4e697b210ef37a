"""Our COCO evaluator against the official numbers, the official tools (when installed) and crafted cases."""
import contextlib
import copy
import io
import json
import os
import warnings

import numpy as np
import pytest

from edgepose.errors import EdgeposeError
from edgepose.quantization.coco_eval import WHOLEBODY_PARTS, evaluate_boxes, evaluate_keypoints

WB_FIELDS = ["keypoints", "foot_kpts", "face_kpts", "lefthand_kpts", "righthand_kpts"]


@pytest.fixture(scope="module")
def wb(shared):
    d = shared / "data" / "coco_wholebody_val_gt" / "annotations"
    return {"gt": str(d / "coco_wholebody_example_gt.json"),
            "pred": str(d / "coco_wholebody_example_pred.json"),
            "reference": str(d / "REFERENCE_xtcocotools_eval_example_pred_vs_gt.json")}


@pytest.fixture(scope="module")
def merged(shared):
    return str(shared / "data" / "coco_kp17_val2017_merged" / "person_keypoints_val2017_merged.json")


def _gt_as_results(gt_path, fields):
    gt = json.load(open(gt_path))
    out = []
    for a in gt["annotations"]:
        if a.get("iscrowd") or not any(np.any(np.array(a[f])[2::3] > 0) for f in fields):
            continue  # nothing a model would output for it
        r = {"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0}
        for f in fields:
            k = np.array(a[f], float).reshape(-1, 3)
            k[:, 2] = (k[:, 2] > 0).astype(float)  # labelled -> score 1, unlabelled -> 0
            r[f] = k.reshape(-1).tolist()
        out.append(r)
    return out


# ---------------------------------------------------------------- official reference numbers

def test_wholebody_reproduces_published_reference(wb):
    ref = json.load(open(wb["reference"]))
    ours = evaluate_keypoints(wb["gt"], wb["pred"], kind="wholebody")
    assert set(ours) == set(WHOLEBODY_PARTS)
    for part in WHOLEBODY_PARTS:
        # the reference is rounded to 4 decimals: agreement to 1e-4 means within half a unit
        assert abs(ours[part]["AP"] - ref[part]["AP"]) <= 0.5e-4 + 1e-12, part
        assert abs(ours[part]["AR"] - ref[part]["AR"]) <= 0.5e-4 + 1e-12, part


def test_readme_figures_match_reference_file(wb, shared):
    # PROVENANCE.txt states the same numbers; the file we compare with must agree with it
    text = (shared / "data" / "coco_wholebody_val_gt" / "PROVENANCE.txt").read_text()
    ref = json.load(open(wb["reference"]))
    for part, label in [("wholebody", "wholebody AP"), ("body", "body"), ("foot", "foot"),
                        ("face", "face"), ("lefthand", "lhand"), ("righthand", "rhand")]:
        assert f"{label} {ref[part]['AP']:.4f}" in text, part


def test_inputs_not_modified(wb):
    preds = json.load(open(wb["pred"]))
    before = copy.deepcopy(preds)
    evaluate_keypoints(wb["gt"], preds, kind="wholebody")
    assert preds == before


def test_single_133_array_equals_split_format(wb):
    preds = json.load(open(wb["pred"]))
    joined = [{"image_id": p["image_id"], "category_id": 1, "score": p["score"],
               "keypoints": sum((p[f] for f in WB_FIELDS), [])} for p in preds]
    a = evaluate_keypoints(wb["gt"], preds, kind="wholebody")
    b = evaluate_keypoints(wb["gt"], joined, kind="wholebody")
    # same except the parts whose official per-part scores are gone in the joined form
    assert a["body"] == b["body"] and a["wholebody"] == b["wholebody"]


# ---------------------------------------------------------------- live against the official tools

def _reference_missing(tool: str, error: Exception):
    # CI installs the reference tools (.ci/run), so there a missing one is a failure; on a
    # user's machine without them these comparisons have nothing to compare against.
    if os.environ.get("CI"):
        pytest.fail(f"{tool} is not usable ({error}); .ci/run installs it")
    pytest.skip(f"{tool} not usable here ({error}); reference-only comparison")


def _import_xtcocotools():
    try:
        from xtcocotools.coco import COCO
        from xtcocotools.cocoeval import COCOeval
    except (ImportError, ValueError) as e:  # ValueError: binary built against another numpy
        _reference_missing("xtcocotools", e)
    return COCO, COCOeval


def _import_pycocotools():
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except (ImportError, ValueError) as e:
        _reference_missing("pycocotools", e)
    return COCO, COCOeval


KP_KEYS = ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]
BOX_KEYS = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


def _noisy_wholebody(preds, rng, sd, drop_scores):
    out = copy.deepcopy(preds)
    for q in out:
        for f in WB_FIELDS:
            a = np.array(q[f], float).reshape(-1, 3)
            a[:, :2] += rng.normal(0, sd, a[:, :2].shape)
            a[rng.random(len(a)) < 0.2, 2] = 0
            q[f] = a.reshape(-1).tolist()
        q["score"] = float(rng.random())
        if drop_scores:
            for k in [k for k in q if k.endswith("_score")]:
                del q[k]
    return out


def test_wholebody_equals_xtcocotools_live(wb, shared):
    COCO, COCOeval = _import_xtcocotools()
    from edgepose.keypoint_sets import get_keypoint_set
    sigmas = np.array(get_keypoint_set("coco_wholebody133")["sigmas"])
    cuts = np.cumsum([0, 17, 6, 68, 21, 21])
    rng = np.random.default_rng(1)
    base = json.load(open(wb["pred"]))
    for preds in [base, _noisy_wholebody(base, rng, 4, False), _noisy_wholebody(base, rng, 8, True)]:
        ours = evaluate_keypoints(wb["gt"], preds, kind="wholebody")
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "'foot_score' not found, use 'score' instead"
            gt = COCO(wb["gt"])
            dt = gt.loadRes(copy.deepcopy(preds))
            for i, part in enumerate(WHOLEBODY_PARTS):
                s = sigmas if part == "wholebody" else sigmas[cuts[i]:cuts[i + 1]]
                ev = COCOeval(gt, dt, "keypoints_" + part, s, use_area=True)
                ev.params.useSegm = None
                ev.evaluate(); ev.accumulate(); ev.summarize()
                for j, k in enumerate(KP_KEYS):
                    assert ours[part][k] == pytest.approx(ev.stats[j], abs=1e-12), (part, k)


def _perturbed_merged(gt, rng, sd, extra):
    kps, boxes = [], []
    for a in gt["annotations"]:
        k = np.array(a["keypoints"], float).reshape(-1, 3)
        k[:, :2] += rng.normal(0, sd, k[:, :2].shape)
        k[:, 2] = 1
        kps.append({"image_id": a["image_id"], "category_id": 1, "keypoints": k.reshape(-1).tolist(),
                    "score": float(rng.random())})
        b = np.array(a["bbox"], float) + rng.normal(0, sd, 4)
        boxes.append({"image_id": a["image_id"], "category_id": 1, "bbox": b.tolist(),
                      "score": float(rng.random())})
    for _ in range(extra):  # false positives
        im = gt["images"][rng.integers(len(gt["images"]))]
        k = np.c_[rng.random(17) * im["width"], rng.random(17) * im["height"], np.ones(17)]
        kps.append({"image_id": im["id"], "category_id": 1, "keypoints": k.reshape(-1).tolist(),
                    "score": float(rng.random())})
        x, y = rng.random(2) * 300
        boxes.append({"image_id": im["id"], "category_id": 1,
                      "bbox": [x, y, rng.random() * 200 + 1, rng.random() * 200 + 1], "score": float(rng.random())})
    return kps, boxes


def test_body17_and_boxes_equal_pycocotools_live(merged):
    COCO, COCOeval = _import_pycocotools()
    gt_json = json.load(open(merged))
    rng = np.random.default_rng(2)
    for sd, extra in [(2, 0), (6, 40)]:
        kps, boxes = _perturbed_merged(gt_json, rng, sd, extra)
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO(merged)
            ev = COCOeval(gt, gt.loadRes(copy.deepcopy(kps)), "keypoints")
            ev.evaluate(); ev.accumulate(); ev.summarize()
            kp_ref = ev.stats
            ev = COCOeval(gt, gt.loadRes(copy.deepcopy(boxes)), "bbox")
            ev.params.catIds = [1]
            ev.evaluate(); ev.accumulate(); ev.summarize()
            box_ref = ev.stats
        ours = evaluate_keypoints(merged, kps, kind="coco17")
        assert [ours[k] for k in KP_KEYS] == pytest.approx(list(kp_ref), abs=1e-12)
        ours = evaluate_boxes(merged, boxes)
        assert [ours[k] for k in BOX_KEYS] == pytest.approx(list(box_ref), abs=1e-12)


def _with_boxes(preds, rng, fields):
    """Each prediction gets a `bbox` around its keypoints, padded by a random margin, so its
    box area differs from its keypoint extent (the official tools then use the box)."""
    out = copy.deepcopy(preds)
    for q in out:
        pts = np.concatenate([np.array(q[f], float).reshape(-1, 3)[:, :2] for f in fields if q.get(f)])
        lo, hi = pts.min(0), pts.max(0)
        pad = (hi - lo) * rng.uniform(0.05, 0.6, 2) + 1
        q["bbox"] = [float(lo[0] - pad[0]), float(lo[1] - pad[1]),
                     float(hi[0] - lo[0] + 2 * pad[0]), float(hi[1] - lo[1] + 2 * pad[1])]
    return out


def test_keypoint_results_with_bbox_take_area_from_box_like_both_tools(merged, wb):
    rng = np.random.default_rng(3)
    COCO, COCOeval = _import_pycocotools()
    kps, _ = _perturbed_merged(json.load(open(merged)), rng, 6, 40)
    kps = _with_boxes(kps, rng, ["keypoints"])
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(merged)
        ev = COCOeval(gt, gt.loadRes(copy.deepcopy(kps)), "keypoints")
        ev.evaluate(); ev.accumulate(); ev.summarize()
    ours = evaluate_keypoints(merged, kps, kind="coco17")
    assert [ours[k] for k in KP_KEYS] == pytest.approx(list(ev.stats), abs=1e-12)
    without = evaluate_keypoints(merged, [{k: v for k, v in d.items() if k != "bbox"} for d in kps], kind="coco17")
    assert (without["APm"], without["APl"]) != (ours["APm"], ours["APl"])   # the rule matters here

    XCOCO, XCOCOeval = _import_xtcocotools()
    from edgepose.keypoint_sets import get_keypoint_set
    sigmas = np.array(get_keypoint_set("coco_wholebody133")["sigmas"])
    preds = _with_boxes(_noisy_wholebody(json.load(open(wb["pred"])), rng, 4, False), rng, WB_FIELDS)
    ours = evaluate_keypoints(wb["gt"], preds, kind="wholebody")
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gt = XCOCO(wb["gt"])
        dt = gt.loadRes(copy.deepcopy(preds))
        ev = XCOCOeval(gt, dt, "keypoints_wholebody", sigmas, use_area=True)
        ev.params.useSegm = None
        ev.evaluate(); ev.accumulate(); ev.summarize()
    assert [ours["wholebody"][k] for k in KP_KEYS] == pytest.approx(list(ev.stats), abs=1e-12)


# ---------------------------------------------------------------- crafted cases

def test_perfect_wholebody_predictions_score_one(wb):
    res = evaluate_keypoints(wb["gt"], _gt_as_results(wb["gt"], WB_FIELDS), kind="wholebody")
    for part in WHOLEBODY_PARTS:
        assert res[part]["AP"] == pytest.approx(1.0), part
        assert res[part]["AR"] == pytest.approx(1.0), part


def test_perfect_body17_and_boxes_score_one(merged):
    res = evaluate_keypoints(merged, _gt_as_results(merged, ["keypoints"]), kind="coco17")
    assert res["AP"] == pytest.approx(1.0) and res["AR"] == pytest.approx(1.0)
    gt = json.load(open(merged))
    dets = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 1.0}
            for a in gt["annotations"]]
    box = evaluate_boxes(merged, dets)
    assert box["AP"] == pytest.approx(1.0) and box["AP50"] == 1.0 and box["AR100"] == pytest.approx(1.0)


def test_shifted_predictions_lower_ap_monotonically(merged):
    gt = json.load(open(merged))
    perfect = _gt_as_results(merged, ["keypoints"])
    aps, box_aps = [], []
    for shift in [0, 2, 5, 10, 20]:
        res = copy.deepcopy(perfect)
        for r in res:
            k = np.array(r["keypoints"]).reshape(-1, 3)
            k[:, 0] += shift
            r["keypoints"] = k.reshape(-1).tolist()
        aps.append(evaluate_keypoints(merged, res, kind="coco17")["AP"])
        dets = [{"image_id": a["image_id"], "bbox": [a["bbox"][0] + shift * 2, *a["bbox"][1:]], "score": 1.0}
                for a in gt["annotations"]]
        box_aps.append(evaluate_boxes(merged, dets)["AP"])
    assert aps[0] == pytest.approx(1.0) and box_aps[0] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(aps, aps[1:])), aps
    assert all(a > b for a, b in zip(box_aps, box_aps[1:])), box_aps


def test_missing_parts(wb):
    res = _gt_as_results(wb["gt"], WB_FIELDS)
    for r in res:  # the model found no left hands: every left-hand score is zero
        k = np.array(r["lefthand_kpts"]).reshape(-1, 3)
        k[:, 2] = 0
        r["lefthand_kpts"] = k.reshape(-1).tolist()
    out = evaluate_keypoints(wb["gt"], res, kind="wholebody")
    assert out["lefthand"]["AP"] == 0.0 and out["lefthand"]["AR"] == 0.0
    for part in ("body", "foot", "face", "righthand"):
        assert out[part]["AP"] == pytest.approx(1.0), part
    # GT persons without a labelled part are ignored for that part, not counted as misses:
    gt = json.load(open(wb["gt"]))
    n_lh = sum(np.count_nonzero(np.array(a["lefthand_kpts"])[2::3] > 0) > 0 for a in gt["annotations"])
    assert 0 < n_lh < len(gt["annotations"])  # the data has unlabelled left hands
    assert evaluate_keypoints(wb["gt"], _gt_as_results(wb["gt"], WB_FIELDS), kind="wholebody")["lefthand"]["AP"] \
        == pytest.approx(1.0)


def _crafted_gt(tmp_path, with_crowd):
    anns = [{"id": 1, "image_id": 7, "category_id": 1, "iscrowd": 0, "area": 100.0 * 200 * 0.6,
             "bbox": [10, 10, 100, 200], "num_keypoints": 17,
             "keypoints": sum(([10 + 5 * i, 20 + 10 * i, 2] for i in range(17)), [])}]
    if with_crowd:
        anns.append({"id": 2, "image_id": 7, "category_id": 1, "iscrowd": 1, "area": 300.0 * 300,
                     "bbox": [300, 50, 300, 300], "num_keypoints": 0, "keypoints": [0] * 51})
    gt = {"images": [{"id": 7, "width": 640, "height": 480}],
          "categories": [{"id": 1, "name": "person"}], "annotations": anns}
    path = tmp_path / f"gt_{with_crowd}.json"
    path.write_text(json.dumps(gt))
    return str(path), anns[0]


@pytest.mark.parametrize("with_crowd,expected", [(True, 1.0), (False, 0.5)])
def test_crowd_region_ignores_detections_inside(tmp_path, with_crowd, expected):
    gt_path, person = _crafted_gt(tmp_path, with_crowd)
    inside = sum(([350 + 10 * i, 100 + 10 * i, 1] for i in range(17)), [])
    kps = [{"image_id": 7, "category_id": 1, "keypoints": inside, "score": 0.95},
           {"image_id": 7, "category_id": 1, "keypoints": person["keypoints"], "score": 0.9}]
    assert evaluate_keypoints(gt_path, kps, "coco17")["AP"] == pytest.approx(expected)
    boxes = [{"image_id": 7, "bbox": [350, 100, 100, 150], "score": 0.95},
             {"image_id": 7, "bbox": person["bbox"], "score": 0.9}]
    assert evaluate_boxes(gt_path, boxes)["AP"] == pytest.approx(expected)


def test_keypoint_max_detections_is_20(tmp_path):
    gt_path, person = _crafted_gt(tmp_path, False)
    far = sum(([600, 400, 1] for _ in range(17)), [])

    def run(n_false):
        res = [{"image_id": 7, "keypoints": far, "score": 0.9} for _ in range(n_false)]
        res.append({"image_id": 7, "keypoints": person["keypoints"], "score": 0.5})
        return evaluate_keypoints(gt_path, res, "coco17")

    assert run(19)["AP"] == pytest.approx(1 / 20)  # the true match is the 20th
    assert run(20)["AP"] == 0.0                    # the true match is the 21st: cut off


def test_box_mapping_input_equals_result_list(merged):
    gt = json.load(open(merged))
    rng = np.random.default_rng(3)
    listed, mapping = [], {}
    for a in gt["annotations"]:
        x, y, w, h = np.array(a["bbox"]) + rng.normal(0, 3, 4)
        s = float(rng.random())
        listed.append({"image_id": a["image_id"], "category_id": 1, "bbox": [x, y, w, h], "score": s})
        b, sc = mapping.setdefault(a["image_id"], ([], []))
        b.append([x, y, x + w, y + h]); sc.append(s)
    assert evaluate_boxes(merged, listed)["AP"] == pytest.approx(evaluate_boxes(merged, mapping)["AP"], abs=1e-12)


def test_bad_inputs_raise_clear_errors(tmp_path, merged, wb):
    with pytest.raises(EdgeposeError, match="not found"):
        evaluate_boxes(str(tmp_path / "missing.json"), [])
    with pytest.raises(EdgeposeError, match="image ids not in the ground truth"):
        evaluate_boxes(merged, [{"image_id": -5, "bbox": [0, 0, 1, 1], "score": 1}])
    with pytest.raises(EdgeposeError, match="17 keypoints"):
        evaluate_keypoints(merged, [{"image_id": gt_first_image(merged), "keypoints": [1, 2, 3], "score": 1}])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(EdgeposeError, match="cannot read"):
        evaluate_keypoints(str(bad), [])
    with pytest.raises(EdgeposeError, match="kind"):
        evaluate_keypoints(wb["gt"], [], kind="hands")


def gt_first_image(path):
    return json.load(open(path))["images"][0]["id"]
