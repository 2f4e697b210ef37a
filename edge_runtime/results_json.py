"""Pose results as JSON: COCO keypoint results, and OpenPose JSON for ControlNet users.

COCO (one file per run, a list; what `pycocotools`' loadRes reads): one entry
per person per frame/image:
    {"image_id": frame index, "category_id": 1, "keypoints": [x, y, score, ...],
     "score": mean keypoint score * box score, "bbox": [x, y, w, h],
     "track_id": id (video), "file_name": source image (folders)}

OpenPose (one file per frame, `<stem>_<frame:012d>_keypoints.json`, as OpenPose
writes them): {"version": 1.3, "canvas_width", "canvas_height", "people": [
{"person_id": [track id or -1], "pose_keypoints_2d": 18 x (x, y, c) in OpenPose
order with the neck as mid-shoulders, "face_keypoints_2d": 68 x 3,
"hand_left_keypoints_2d": 21 x 3, "hand_right_keypoints_2d": 21 x 3}]}.
Pixel coordinates; face/hands empty for models without them. Keypoints below the
threshold are written as 0, 0, 0, as OpenPose does for undetected points.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from .draw import WHOLEBODY_FACE, WHOLEBODY_HANDS, openpose_body18


def _r(v: float) -> float:
    v = float(v)
    return round(v, 2) if np.isfinite(v) else 0.0


def coco_results(image_id: int, boxes, box_scores, keypoints, scores, track_ids=None,
                 file_name: Optional[str] = None) -> List[Dict[str, Any]]:
    out = []
    keypoints = np.asarray(keypoints, np.float32)
    scores = np.asarray(scores, np.float32)
    for n in range(len(keypoints)):
        kp = np.concatenate([keypoints[n], scores[n][:, None]], axis=1).reshape(-1)
        b = np.asarray(boxes[n], np.float32) if boxes is not None else np.zeros(4, np.float32)
        bs = float(box_scores[n]) if box_scores is not None else 1.0
        entry = {
            "image_id": int(image_id),
            "category_id": 1,
            "keypoints": [_r(v) for v in kp],
            "score": _r(float(scores[n].mean()) * bs) if scores.shape[1] else 0.0,
            "bbox": [_r(b[0]), _r(b[1]), _r(b[2] - b[0]), _r(b[3] - b[1])],
        }
        if track_ids is not None:
            entry["track_id"] = int(track_ids[n])
        if file_name is not None:
            entry["file_name"] = file_name
        out.append(entry)
    return out


def _flat(kp, sc, threshold) -> List[float]:
    out = []
    for (x, y), s in zip(kp, sc):
        if s > threshold and np.isfinite(x) and np.isfinite(y):
            out += [_r(x), _r(y), _r(s)]
        else:
            out += [0.0, 0.0, 0.0]
    return out


def openpose_frame(keypoints, scores, width: int, height: int, track_ids=None,
                   threshold: float = 0.3) -> Dict[str, Any]:
    keypoints = np.asarray(keypoints, np.float32)
    scores = np.asarray(scores, np.float32)
    people = []
    if keypoints.ndim == 3 and len(keypoints) and keypoints.shape[1] >= 17:
        body, bsc = openpose_body18(keypoints, scores)
        whole = keypoints.shape[1] >= 133
        for n in range(len(keypoints)):
            person = {"person_id": [int(track_ids[n]) if track_ids is not None else -1],
                      "pose_keypoints_2d": _flat(body[n], bsc[n], threshold),
                      "face_keypoints_2d": [], "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": []}
            if whole:
                f0, f1 = WHOLEBODY_FACE
                (l0, l1), (r0, r1) = WHOLEBODY_HANDS
                person["face_keypoints_2d"] = _flat(keypoints[n, f0:f1], scores[n, f0:f1], threshold)
                person["hand_left_keypoints_2d"] = _flat(keypoints[n, l0:l1], scores[n, l0:l1], threshold)
                person["hand_right_keypoints_2d"] = _flat(keypoints[n, r0:r1], scores[n, r0:r1], threshold)
            people.append(person)
    return {"version": 1.3, "canvas_width": int(width), "canvas_height": int(height), "people": people}
