"""Keep chosen layers in fp32 on devices with fp16 arithmetic (ncnn's per-layer feature mask).

ncnn lets a layer opt out of fp16 through its feature mask (layer param 31, read by
Layer::load_param; net.cpp masks the options per layer): bit 0 disables fp16
arithmetic, bit 1 disables fp16 storage/packed. The GAU block's ScaleNorms are
rewritten into RMSNorm (scalenorm_rmsnorm.py), which is fp16-safe by itself; the
mask is what stays for an L2-norm chain that rewrite does not recognise, and for
stems fed raw 0..255 pixels (YOLOX).
"""
from __future__ import annotations

from typing import List

from quantization.ncnn_io import Layer, NcnnModel

FEATMASK_KEY = 31
NO_FP16_ARITHMETIC = 1 << 0
NO_FP16_STORAGE = 1 << 1
FP32_FEATMASK = NO_FP16_ARITHMETIC | NO_FP16_STORAGE

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
