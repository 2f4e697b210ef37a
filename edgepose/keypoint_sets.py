"""Keypoint sets (names, skeleton, flip pairs, OKS sigmas, body-part ranges).

The data lives in `data/keypoint_sets.json`, taken from the official OpenMMLab
dataset meta files, so the board runtime, the evaluator and the drawing code
all agree on one definition. Stdlib only: this runs on boards.
"""
from __future__ import annotations

import copy
import json
import os
from functools import lru_cache
from typing import Any, Dict, List, Optional

from .errors import EdgeposeError

DATA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "keypoint_sets.json")

# Names users and configs also use for the same sets.
ALIASES = {
    "coco": "coco17",
    "body17": "coco17",
    "coco_wholebody": "coco_wholebody133",
    "wholebody": "coco_wholebody133",
    "wholebody133": "coco_wholebody133",
    "halpe": "halpe26",
    "hand": "hand21",
    "coco_wholebody_hand": "hand21",
    "face": "face106",
    "lapa": "face106",
}

# Keypoint count -> set, for sources (checkpoints, ONNX files) that do not name their set.
SET_BY_COUNT = {17: "coco17", 26: "halpe26", 133: "coco_wholebody133", 21: "hand21", 106: "face106",
                68: "face68"}


@lru_cache(maxsize=1)
def _all_sets() -> Dict[str, Dict[str, Any]]:
    try:
        with open(DATA_FILE) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise EdgeposeError(f"{DATA_FILE}: cannot read keypoint sets ({e}); reinstall edgepose") from None
    return data["sets"]


def set_name_for_count(num_keypoints: int) -> Optional[str]:
    return SET_BY_COUNT.get(int(num_keypoints))


def list_keypoint_sets() -> List[str]:
    return sorted(_all_sets())


def get_keypoint_set(name: str) -> Dict[str, Any]:
    """Return a fresh copy of one set: keys name, dataset, num_keypoints, names, skeleton
    ([i, j] index pairs), flip_pairs, sigmas (None where the official data has none,
    e.g. face106), parts ({part: [start, stop)}), keypoint_colors, skeleton_colors."""
    sets = _all_sets()
    key = ALIASES.get(name, name)
    if key not in sets:
        raise EdgeposeError(f"unknown keypoint set {name!r}; known: {', '.join(sorted(sets))}")
    return copy.deepcopy(sets[key])
