"""Keep chosen layers' weights in fp32 inside an otherwise fp16 `.ncnn.bin`.

A detector fed raw 0..255 pixels (YOLOX) sums ~100 products of +-20 in its stem
convolution that cancel to values near zero; fp16 weight rounding (5e-4 relative) moves
those sums by ~0.2 and the error grows through the network (the whole output is wrong).
pnnx writes all weights in one precision, so the model is converted twice and the
stem layers' weight blobs are taken from the fp32 file (edgepose.ncnn_io reads
both bins layer by layer).
"""
from __future__ import annotations

from typing import List, Sequence

from edgepose.errors import EdgeposeError
from edgepose.ncnn_io import WEIGHTLESS, NcnnModel, attach_weights

from .fp16_mask import consumers


def mix_fp32_layers(model: NcnnModel, bin16: bytes, bin32: bytes, names: Sequence[str], origin: str) -> bytes:
    """The fp16 bin of `model` with the weight blobs of `names` replaced by their fp32 versions."""
    present = {l.name for l in model.layers}
    missing = [n for n in names if n not in present]
    if missing:
        raise EdgeposeError(f"{origin}: layers {missing} not in the param file")
    if not names:
        return bin16
    m16, m32 = model.copy(), model.copy()
    attach_weights(m16, bin16, origin + " (fp16 weights)")
    attach_weights(m32, bin32, origin + " (fp32 weights)")
    wanted = set(names)
    for l16, l32 in zip(m16.layers, m32.layers):
        if l16.name in wanted:
            l16.blobs = l32.blobs
    return m16.bin_bytes()


def input_stem_layers(model: NcnnModel, input_blob: str = "in0") -> List[str]:
    """The convolution(s) that see raw pixels: the first one after the input, and the one
    after it when the first is a space-to-depth (2x2, stride 2) rewrite of a Focus stem."""
    chain: List[str] = []
    blob = input_blob
    for _ in range(8):
        after = consumers(model, blob)
        if len(after) != 1:
            break
        layer = after[0]
        p = layer.params
        if layer.type == "Convolution":
            chain.append(layer.name)
            is_space_to_depth = p.get(1) == 2 and p.get(3, 1) == 2 and p.get(5, 0) == 0
            if not is_space_to_depth:
                break
        elif layer.type not in WEIGHTLESS:
            break
        blob = layer.tops[0]
    return chain
