"""edgepose board runtime: numpy + ncnn + OpenCV only (never torch/onnx/pnnx).

    from edge_runtime import Wholebody, PoseTracker
    keypoints, scores = Wholebody(det="models/rtmdet-nano", pose="models/dwpose-t")(image)
"""
from .errors import EdgeposeError
from .model_meta import ModelMeta, find_model

# The pipeline classes load OpenCV and ncnn; import them on first use so that
# `import edge_runtime` (and metadata tools) stay instant.
_LAZY = {
    "Body": "solutions", "Wholebody": "solutions", "Detector": "detector",
    "PoseEstimator": "pose", "PoseTracker": "pose_tracker",
}

__all__ = ["EdgeposeError", "ModelMeta", "find_model", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'edge_runtime' has no attribute {name!r}")
