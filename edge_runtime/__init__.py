"""edgepose board runtime: numpy + ncnn + OpenCV only (never torch/onnx/pnnx)."""
from .errors import EdgeposeError
from .model_meta import ModelMeta, find_model

__all__ = ["EdgeposeError", "ModelMeta", "find_model"]
