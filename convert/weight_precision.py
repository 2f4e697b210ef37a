"""Keep chosen layers' weights in fp32 inside an otherwise fp16 `.ncnn.bin`.

A detector fed raw 0..255 pixels (YOLOX) sums ~100 products of +-20 in its stem
convolution that cancel to values near zero; fp16 weight rounding (5e-4 relative) moves
those sums by ~0.2 and the error grows through the network (the whole output is wrong).
pnnx writes all weights in one precision, so the model is converted twice and the
stem layers' blobs are taken from the fp32 file.

Bin layout (ncnn ModelBin): per layer in param order, each blob either "tagged"
(uint32 tag + data: 0 = fp32, 0x01306B47 = fp16 padded to 4 bytes) or raw fp32.
Only the layers up to the last kept one are walked; they must be of a kind read here.
"""
from __future__ import annotations

import struct
from typing import Dict, List, Sequence, Tuple

from edge_runtime.errors import EdgeposeError

from .ncnn_param import ParamFile, ParamLayer

TAG_FP32 = 0
TAG_FP16 = 0x01306B47
TAG_INT8 = 0x000D4B38

# Layers without anything in the .bin (as pnnx writes them).
WEIGHTLESS = {"Input", "Split", "Concat", "Slice", "Swish", "Sigmoid", "ReLU", "Clip", "HardSigmoid",
              "HardSwish", "BinaryOp", "UnaryOp", "Pooling", "Interp", "Reshape", "Permute", "Crop",
              "Flatten", "Squeeze", "ExpandDims", "Softmax", "Reduction", "Eltwise", "Padding", "Mish",
              "TanH", "ELU", "GELU", "Dropout", "Noop", "ShuffleChannel", "PixelShuffle", "Reorg"}


def _tagged_size(data: bytes, offset: int, count: int, origin: str) -> int:
    (tag,) = struct.unpack_from("<I", data, offset)
    if tag == TAG_FP32:
        body = count * 4
    elif tag == TAG_FP16:
        body = (count * 2 + 3) // 4 * 4
    elif tag == TAG_INT8:
        body = (count + 3) // 4 * 4
    else:
        raise EdgeposeError(f"{origin}: unknown weight tag 0x{tag:08x} at byte {offset}")
    return 4 + body


def _layer_size(layer: ParamLayer, data: bytes, offset: int, origin: str) -> int:
    """Bytes this layer occupies in the bin starting at `offset`."""
    t = layer.type
    if t in WEIGHTLESS:
        return 0
    if t in ("Convolution", "ConvolutionDepthWise", "Deconvolution", "DeconvolutionDepthWise"):
        if layer.get(19, "0") != "0":           # dynamic weights come from a blob
            return 0
        size = _tagged_size(data, offset, int(layer.get(6)), origin)
        if layer.get(5, "0") != "0":
            size += 4 * int(layer.get(0))
        if layer.get(8, "0") != "0":
            raise EdgeposeError(f"{origin}: layer {layer.name} is int8; cannot re-mix its precision")
        return size
    if t == "InnerProduct":
        size = _tagged_size(data, offset, int(layer.get(2)), origin)
        if layer.get(1, "0") != "0":
            size += 4 * int(layer.get(0))
        return size
    if t == "MemoryData":
        n = 1
        for key in (0, 1, 11, 2):
            n *= max(1, int(layer.get(key, "0")))
        return 4 * n
    raise EdgeposeError(f"{origin}: cannot walk layer {layer.name} ({t}) in the weight file to keep "
                        f"layers in fp32")


def _layer_spans(param: ParamFile, data: bytes, upto: int, origin: str) -> List[Tuple[int, int]]:
    spans, offset = [], 0
    for layer in param.layers[:upto + 1]:
        size = _layer_size(layer, data, offset, origin)
        spans.append((offset, offset + size))
        offset += size
    return spans


def mix_fp32_layers(param: ParamFile, bin16: bytes, bin32: bytes, names: Sequence[str], origin: str) -> bytes:
    """The fp16 bin with the blobs of `names` replaced by their fp32 versions."""
    index: Dict[str, int] = {l.name: i for i, l in enumerate(param.layers)}
    missing = [n for n in names if n not in index]
    if missing:
        raise EdgeposeError(f"{origin}: layers {missing} not in the param file")
    if not names:
        return bin16
    last = max(index[n] for n in names)
    spans16 = _layer_spans(param, bin16, last, origin)
    spans32 = _layer_spans(param, bin32, last, origin)
    keep = {index[n] for n in names}
    parts = []
    for i in range(last + 1):
        (a16, b16), (a32, b32) = spans16[i], spans32[i]
        parts.append(bin32[a32:b32] if i in keep else bin16[a16:b16])
    parts.append(bin16[spans16[last][1]:])
    return b"".join(parts)


def input_stem_layers(param: ParamFile, input_blob: str = "in0") -> List[str]:
    """The convolution(s) that see raw pixels: the first one after the input, and the one
    after it when the first is a space-to-depth (2x2, stride 2) rewrite of a Focus stem."""
    chain: List[str] = []
    blob = input_blob
    for _ in range(8):
        consumers = param.consumers(blob)
        if len(consumers) != 1:
            break
        layer = consumers[0]
        if layer.type == "Convolution":
            chain.append(layer.name)
            is_space_to_depth = layer.get(1) == "2" and layer.get(3, "1") == "2" and layer.get(5, "0") == "0"
            if not is_space_to_depth:
                break
        elif layer.type not in WEIGHTLESS:
            break
        blob = layer.tops[0]
    return chain
