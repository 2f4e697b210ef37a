"""Keypoint sets as the official dataset meta files define them."""
import pytest

from edgepose.errors import EdgeposeError
from edgepose.keypoint_sets import get_keypoint_set, list_keypoint_sets

COCO_SIGMAS = [0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
               0.107, 0.107, 0.087, 0.087, 0.089, 0.089]


def test_sets_are_consistent():
    assert {"coco17", "coco_wholebody133", "halpe26", "hand21", "face106"} <= set(list_keypoint_sets())
    for name in list_keypoint_sets():
        kp = get_keypoint_set(name)
        n = kp["num_keypoints"]
        assert len(kp["names"]) == len(set(kp["names"])) == n, name
        assert all(0 <= i < n and 0 <= j < n and i != j for i, j in kp["skeleton"]), name
        flat = [i for pair in kp["flip_pairs"] for i in pair]
        assert len(flat) == len(set(flat)) and all(0 <= i < n for i in flat), name
        if kp["sigmas"] is not None:
            assert len(kp["sigmas"]) == n and all(0 < s < 0.2 for s in kp["sigmas"]), name
        covered = sorted(i for a, b in kp["parts"].values() for i in range(a, b))
        assert covered == list(range(n)), name


def test_coco_and_wholebody_official_values():
    coco = get_keypoint_set("coco17")
    assert coco["sigmas"] == COCO_SIGMAS
    assert coco["names"][:3] == ["nose", "left_eye", "right_eye"]
    assert [1, 2] in coco["flip_pairs"] and [15, 16] in coco["flip_pairs"]
    wb = get_keypoint_set("coco_wholebody133")
    assert wb["parts"] == {"body": [0, 17], "foot": [17, 23], "face": [23, 91],
                           "left_hand": [91, 112], "right_hand": [112, 133]}
    assert wb["sigmas"][:17] == COCO_SIGMAS
    assert wb["sigmas"][17:23] == [0.068, 0.066, 0.066, 0.092, 0.094, 0.094]
    assert wb["names"][:17] == coco["names"]
    assert wb["sigmas"][91:112] == wb["sigmas"][112:133] == get_keypoint_set("hand21")["sigmas"]
    assert wb["sigmas"][23:91] == get_keypoint_set("face68")["sigmas"]
    # left and right hands swap as wholes under a horizontal flip
    pairs = {tuple(p) for p in wb["flip_pairs"]}
    assert all((91 + k, 112 + k) in pairs for k in range(21))
    for i, j in wb["flip_pairs"][:8]:
        a, b = wb["names"][i], wb["names"][j]
        assert a.replace("left", "right") == b


def test_aliases_copies_and_unknown():
    kp = get_keypoint_set("coco")
    kp["names"].append("extra")
    assert len(get_keypoint_set("coco17")["names"]) == 17
    assert get_keypoint_set("wholebody")["num_keypoints"] == 133
    assert get_keypoint_set("face106")["sigmas"] is None  # the official face meta has no OKS sigmas
    with pytest.raises(EdgeposeError, match="unknown keypoint set 'mpii'"):
        get_keypoint_set("mpii")
