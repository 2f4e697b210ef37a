"""Every number of the top-down pre/post-processing rules, in one place.

The C++ core (android_demo/core) mirrors these values; change them together.
Each value is the one the official OpenMMLab test pipelines use.
"""
from typing import Dict, List, TypedDict

# Pose (RTMPose / DWPose / RTMW, mmpose 1.x TopdownAffine + SimCCLabel)
BBOX_PADDING = 1.25          # box (w, h) is multiplied by this before the aspect fix
DEFAULT_SIMCC_SPLIT_RATIO = 2.0
WARP_BORDER_VALUE = 0        # cv2.warpAffine constant border, raw pixel value (exact with folded normalisation)
MIN_BOX_SIZE = 1.0           # boxes narrower/shorter than this (pixels) are not run: keypoints at the centre, score 0

# Detectors
LETTERBOX_PAD_VALUE = 114    # raw pixel value of the padding right/bottom of the resized image
MAX_DETECTIONS = 100         # kept after NMS (mmdet max_per_img)
NMS_PRE = 1000               # candidates kept by score before NMS (mmdet nms_pre)


class DetectorDefaults(TypedDict):
    strides: List[int]
    score_threshold: float
    nms_iou: float
    person_class: int


# family -> defaults. score_threshold is the pipeline's person threshold (rtmlib / mmpose demos
# use 0.3); evaluations pass their own (e.g. 0.05 for AP).
DETECTOR_DEFAULTS: Dict[str, DetectorDefaults] = {
    "rtmdet": {"strides": [8, 16, 32], "score_threshold": 0.3, "nms_iou": 0.6, "person_class": 0},
    "yolox": {"strides": [8, 16, 32], "score_threshold": 0.3, "nms_iou": 0.45, "person_class": 0},
}
