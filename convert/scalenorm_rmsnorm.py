"""Rewrite the GAU block's ScaleNorm into ncnn's RMSNorm layer.

pnnx exports ScaleNorm, `g * x / max(||x||_2 * d**-0.5, eps)`, as five layers:
Split -> Reduction(L2) -> BinaryOp(* d**-0.5) -> Clip(min eps) -> BinaryOp(x / norm)
-> BinaryOp(* g). With fp16 arithmetic (ARMv8.2) the sum of squares overflows fp16
(65504) for ordinary activations, and keeping those layers fp32 through ncnn's
per-layer feature mask crashes ncnn's ARM fp16 path (heap corruption in the masked
Reduction, seen under qemu). ncnn's RMSNorm, `gamma * x / sqrt(mean(x^2) + eps')`,
is the same function: mean(x^2) = (||x|| * d**-0.5)^2, gamma = g on every channel,
and with eps' = eps^2 the two differ only where ||x|| * d**-0.5 is within a hair of
eps (then both divide by ~eps). Its fp16 kernels accumulate and scale in fp32 and
store fp16 only at the end, so it cannot overflow; it is also one layer instead of six.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

from edge_runtime.errors import EdgeposeError
from quantization.ncnn_io import Layer, NcnnModel, ParamDict, WeightBlob, blob_specs, RAW

REDUCTION_L2 = 8
BINARY_MUL, BINARY_DIV = 2, 3


def _producers(model: NcnnModel) -> Dict[str, Layer]:
    return {t: layer for layer in model.layers for t in layer.tops}


def _consumers(model: NcnnModel, blob: str) -> List[Layer]:
    return [layer for layer in model.layers if blob in layer.bottoms]


def _only(model: NcnnModel, blob: str, layer_type: str) -> Optional[Layer]:
    users = _consumers(model, blob)
    return users[0] if len(users) == 1 and users[0].type == layer_type else None


def _scalar_binary(layer: Optional[Layer], op: int) -> Optional[float]:
    if layer is None or len(layer.bottoms) != 1:
        return None
    p = layer.params
    if int(p.get(0, 0)) != op or int(p.get(1, 0)) != 1:  # 1=with_scalar
        return None
    return float(p.get(2, 0.0))


def find_scalenorms(model: NcnnModel) -> List[dict]:
    """Every ScaleNorm chain in the graph, as the layers and values of the rewrite."""
    producers = _producers(model)
    found = []
    for red in model.layers:
        p = red.params
        if red.type != "Reduction" or int(p.get(0, 0)) != REDUCTION_L2 or int(p.get(4, 0)) != 1:
            continue
        axes = p.get(3)
        if int(p.get(1, 0)) != 0 or not isinstance(axes, list) or axes != [1]:
            continue  # RMSNorm normalises the innermost axis of a 2-D blob only
        mul = _only(model, red.tops[0], "BinaryOp")
        scale = _scalar_binary(mul, BINARY_MUL)
        clip = _only(model, mul.tops[0], "Clip") if scale else None
        div = _only(model, clip.tops[0], "BinaryOp") if clip else None
        if div is None or int(div.params.get(0, 0)) != BINARY_DIV or len(div.bottoms) != 2 \
                or div.bottoms[1] != clip.tops[0]:
            continue
        gain = _scalar_binary(_only(model, div.tops[0], "BinaryOp"), BINARY_MUL)
        g_layer = _only(model, div.tops[0], "BinaryOp")
        split = producers.get(red.bottoms[0])
        if split is None or split.type != "Split" or div.bottoms[0] not in split.tops:
            continue
        d = 1.0 / (scale * scale)
        if abs(d - round(d)) > 1e-3 * d:
            continue
        found.append({"split": split, "chain": [red, mul, clip, div] + ([g_layer] if gain is not None else []),
                      "dim": int(round(d)), "eps": float(clip.params.get(0, 0.0)),
                      "gain": 1.0 if gain is None else gain,
                      "input": split.bottoms[0], "output": (g_layer if gain is not None else div).tops[0],
                      "split_outputs": [red.bottoms[0], div.bottoms[0]]})
    return found


def rewrite(model: NcnnModel) -> List[str]:
    """Replace every ScaleNorm chain by one RMSNorm layer; return the new layers' names.

    The model must have its weights attached (read with the .bin): RMSNorm carries gamma.
    """
    names = []
    for hit in find_scalenorms(model):
        split: Layer = hit["split"]
        chain: List[Layer] = hit["chain"]
        params = ParamDict()
        params.set(0, hit["dim"])
        params.set(1, hit["eps"] ** 2)
        params.set(2, 1)
        name = chain[0].name.replace("norm", "rmsnorm", 1) if "norm" in chain[0].name else chain[0].name + "_rms"
        gamma = np.full(hit["dim"], hit["gain"], dtype=np.float32)
        spec = blob_specs("RMSNorm", params, name)
        if [s[2] for s in spec] != [RAW]:
            raise EdgeposeError(f"{name}: unexpected RMSNorm weight layout {spec}")
        # ncnn gives every blob one consumer (pnnx's Splits fan them out). When the Split
        # fed only the norm's two branches it goes, and RMSNorm reads x itself; otherwise
        # the Split keeps its other outputs and RMSNorm takes the branch the Reduction had.
        remaining = [t for t in split.tops if t not in hit["split_outputs"]]
        source = hit["split_outputs"][0] if remaining else hit["input"]
        rms = Layer("RMSNorm", name, [source], [hit["output"]], params,
                    [WeightBlob.fp32("gamma", gamma, mode=RAW)])
        at = model.layers.index(chain[0])
        model.layers[at] = rms
        for layer in chain[1:]:
            model.layers.remove(layer)
        if remaining:
            split.tops = remaining + [source]
        else:
            model.layers.remove(split)
        names.append(name)
    if names:
        used = {b for layer in model.layers for b in layer.tops}
        model.blob_count = len(used)
    return names
