"""Upload/download time of one inference on a Vulkan device, as its own bench stage.

The Python binding hands ncnn CPU Mats only (ncnn uploads the input and downloads each extracted
output inside `extract`), so the copy cannot be timed inside a real inference. Instead a transfer
net with the model's own tensor shapes, device and options is timed: the input is uploaded and
cropped to one value on the device (upload + a 1-element download), each output shape is held on
the device by a MemoryData layer and extracted (its download). What it measures is the traffic of
one inference plus ncnn's per-submit overhead; it is part of the detect/pose ncnn time, not extra.
"""
from __future__ import annotations

import statistics
import time
from typing import List, Tuple

import numpy as np

REPEATS = 15


def _shape_param(shape: Tuple[int, ...]) -> str:
    # ncnn shape params: 0=w 1=h 2=c, from a (c, h, w) / (h, w) / (w,) numpy shape
    dims = list(reversed(shape))
    return " ".join(f"{k}={v}" for k, v in zip((0, 1, 2), dims))


def transfer_param(input_shape: Tuple[int, ...], output_shapes: List[Tuple[int, ...]]) -> str:
    layers = [f"Input in 0 1 in {_shape_param(input_shape)}",
              "Crop up 1 1 in up 3=1 4=1 5=1"]
    layers += [f"MemoryData out{i} 0 1 out{i} {_shape_param(s)}" for i, s in enumerate(output_shapes)]
    return "7767517\n" + f"{len(layers)} {len(layers)}\n" + "\n".join(layers) + "\n"


def transfer_ms(model, repeats: int = REPEATS) -> float:
    """Median ms to move `model`'s input to its GPU and its outputs back (0 on the CPU)."""
    if model.gpu is None:
        return 0.0
    ncnn = model._ncnn
    w, h = model.input_size
    pixels = np.zeros((h, w, 3), np.uint8)
    outputs = model.run(model.mat_from_bgr(pixels))
    shapes = [tuple(v.shape) for v in outputs.values()]
    net = ncnn.Net()
    src = model.net.opt
    opt = net.opt
    for flag in ("use_fp16_storage", "use_fp16_packed", "use_fp16_arithmetic", "num_threads"):
        setattr(opt, flag, getattr(src, flag))
    opt.use_vulkan_compute = True
    net.set_vulkan_device(model.gpu.index)
    if net.load_param_mem(transfer_param((3, h, w), shapes)) != 0:
        raise RuntimeError("transfer net did not load")
    net.load_model_mem(np.zeros(sum(int(np.prod(s)) for s in shapes), np.float32).tobytes())
    mat = model.mat_from_bgr(pixels)
    times = []
    for i in range(repeats + 2):
        ex = net.create_extractor()
        t0 = time.perf_counter()
        ex.input("in", mat)
        ex.extract("up")
        for k in range(len(shapes)):
            ex.extract(f"out{k}")
        dt = time.perf_counter() - t0
        ex.clear()
        if i >= 2:  # the first runs build pipelines and allocators
            times.append(dt)
    net.clear()
    return 1000.0 * statistics.median(times)
