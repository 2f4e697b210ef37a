"""Keep the ScaleNorm layers of the GAU block out of fp16 arithmetic on ARMv8.2 devices.

ScaleNorm computes ||x||_2 over the feature axis: in fp16 arithmetic the sum of squares
exceeds the fp16 range (65504) for ordinary activations and the division that follows
returns zeros (the known "RTMPose ncnn FP16 gives NaN on Android"). ncnn lets a layer opt
out through its feature mask (layer param 31, read by Layer::load_param; net.cpp masks the
options per layer): bit 0 disables fp16 arithmetic, bit 1 fp16 storage/packed.
Only bit 0 is set: the layers still take and give fp16-stored blobs but compute in fp32,
which is all the overflow needs. Setting bit 1 as well makes ncnn 1.0.20261020 abort on
ARMv8.2 with fp16 arithmetic on ("pool allocator get wild", heap corruption; seen under
qemu -cpu cortex-a76 in both the Python wheel and our static build).
"""
from __future__ import annotations

from typing import List

from edgepose.ncnn_io import Layer, NcnnModel

FEATMASK_KEY = 31
NO_FP16_ARITHMETIC = 1 << 0
NO_FP16_STORAGE = 1 << 1
FP32_FEATMASK = NO_FP16_ARITHMETIC

REDUCTION_L2 = 8


def consumers(model: NcnnModel, blob: str) -> List[Layer]:
    return [l for l in model.layers if blob in l.bottoms]


def scalenorm_layers(model: NcnnModel) -> List[Layer]:
    """Each L2 Reduction plus the elementwise chain that turns it into x / norm."""
    chosen: List[Layer] = []
    for layer in model.layers:
        if layer.type != "Reduction" or layer.params.get(0) != REDUCTION_L2:
            continue
        chosen.append(layer)
        frontier = list(layer.tops)
        while frontier:
            blob = frontier.pop()
            for c in consumers(model, blob):
                if c.type not in ("BinaryOp", "Clip", "UnaryOp") or any(c is l for l in chosen):
                    continue
                chosen.append(c)
                # A two-input BinaryOp is the division by the norm: the chain ends there,
                # its output is O(1) again and safe in fp16.
                if len(c.bottoms) == 1:
                    frontier.extend(c.tops)
    return chosen


def _mask(layer: Layer) -> None:
    layer.params.set(FEATMASK_KEY, int(layer.params.get(FEATMASK_KEY, 0)) | FP32_FEATMASK)


def apply_fp32_mask(model: NcnnModel) -> List[str]:
    """Write the fp32 feature mask on the ScaleNorm layers; return their names."""
    layers = scalenorm_layers(model)
    for layer in layers:
        _mask(layer)
    return [l.name for l in layers]


def mask_layers(model: NcnnModel, names: List[str]) -> None:
    """Write the fp32 feature mask on the named layers (e.g. a stem fed raw 0..255 pixels)."""
    wanted = set(names)
    for layer in model.layers:
        if layer.name in wanted:
            _mask(layer)
