"""edgepose.runtime: what runs on the board (numpy + ncnn + OpenCV only, never torch/onnx/pnnx).

It imports only the core (`edgepose.errors`, `edgepose.model_meta`, ...), never the host layers.
The public classes are re-exported lazily by `edgepose` itself: `from edgepose import Wholebody`.
"""
