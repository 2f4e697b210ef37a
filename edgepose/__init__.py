"""edgepose: RTMPose / DWPose / RTMW from PyTorch to phones and boards through ncnn.

    from edgepose import Wholebody, PoseTracker
    keypoints, scores = Wholebody(det="models/rtmdet-nano", pose="models/dwpose-t")(image)

Layers: `edgepose.runtime` (the board: numpy + ncnn + OpenCV), `edgepose.convert` and
`edgepose.quantization` (the host toolchain). This module holds only what all of them share
and imports the runtime lazily, so `import edgepose` is instant and never loads torch.
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any, List

from .openmp import prefer_short_spin
from .errors import (BadArgumentError, BadImageError, BadModelError, EdgeposeError, InferenceError,
                     ModelNotFoundError)

__version__ = "0.1.0"

# Idle OpenMP threads spin briefly, then sleep (edgepose/openmp.py has the measurements). ncnn's libgomp
# reads this once, when it loads, so it is set here, before any edgepose module can import ncnn.
prefer_short_spin()

_LAZY = {
    "Body": "edgepose.runtime.solutions",
    "Wholebody": "edgepose.runtime.solutions",
    "Poses": "edgepose.runtime.solutions",
    "Detector": "edgepose.runtime.detector",
    "PoseEstimator": "edgepose.runtime.pose",
    "PoseTracker": "edgepose.runtime.pose_tracker",
    "TrackedPoses": "edgepose.runtime.pose_tracker",
    "draw_mmpose": "edgepose.runtime.draw",
    "draw_openpose": "edgepose.runtime.draw",
    "ModelMeta": "edgepose.model_meta",
    "find_model": "edgepose.model_meta",
}

__all__ = ["EdgeposeError", "ModelNotFoundError", "BadModelError", "BadImageError", "BadArgumentError",
           "InferenceError", "__version__", *_LAZY]

# Names for type checkers; at run time __getattr__ loads them on first use. The `X as X` form marks
# them re-exported (mypy --strict does not read the starred __all__ above).
if TYPE_CHECKING:
    from .model_meta import ModelMeta as ModelMeta, find_model as find_model
    from .runtime.detector import Detector as Detector
    from .runtime.draw import draw_mmpose as draw_mmpose, draw_openpose as draw_openpose
    from .runtime.pose import PoseEstimator as PoseEstimator
    from .runtime.pose_tracker import PoseTracker as PoseTracker, TrackedPoses as TrackedPoses
    from .runtime.solutions import Body as Body, Poses as Poses, Wholebody as Wholebody


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'edgepose' has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(__all__)
