"""Fold mean/std and the channel swap into the graph, so the runtime feeds raw BGR pixels.

A per-channel affine (a 1x1 convolution 3->3 holding the channel permutation and 1/std,
bias -mean/std) is put in front of the original first layer. The stem convolution then
pads the *normalised* image with zeros exactly as the original graph does, so borders
stay exact (folding 1/std into the stem weights would pad raw pixels with zero, which
is -mean/std in normalised space: wrong on every border pixel).
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgepose.errors import EdgeposeError

FOLD_NODE = "edgepose_input_affine"


def affine_params(mean: Sequence[float], std: Sequence[float], model_order: str,
                  feed_order: str = "bgr") -> Tuple[np.ndarray, np.ndarray]:
    """Weight [3,3,1,1] and bias [3] mapping raw `feed_order` pixels to the normalised
    `model_order` tensor: out[o] = (in[perm[o]] - mean[o]) / std[o]."""
    model_order, feed_order = model_order.lower(), feed_order.lower()
    if sorted(model_order) != sorted(feed_order) or len(model_order) != 3:
        raise EdgeposeError(f"cannot map {feed_order} pixels to a {model_order} model")
    if any(float(s) == 0.0 for s in std):
        raise EdgeposeError(f"normalisation std {list(std)} has a zero")
    perm = [feed_order.index(c) for c in model_order]
    weight = np.zeros((3, 3, 1, 1), np.float32)
    bias = np.zeros(3, np.float32)
    for o in range(3):
        weight[o, perm[o], 0, 0] = np.float32(1.0 / float(std[o]))
        bias[o] = np.float32(-float(mean[o]) / float(std[o]))
    return weight, bias


def is_identity(weight: np.ndarray, bias: np.ndarray) -> bool:
    return bool(np.array_equal(weight[:, :, 0, 0], np.eye(3, dtype=np.float32)) and not bias.any())


def fold_into_onnx(model: onnx.ModelProto, input_name: str, mean: Sequence[float], std: Sequence[float],
                   model_order: str, feed_order: str = "bgr") -> onnx.ModelProto:
    """Return a copy of `model` whose input `input_name` takes raw pixels in `feed_order`."""
    weight, bias = affine_params(mean, std, model_order, feed_order)
    folded = onnx.ModelProto()
    folded.CopyFrom(model)
    if is_identity(weight, bias):
        return folded
    inner = input_name + "_normalised"
    for node in folded.graph.node:
        for i, name in enumerate(node.input):
            if name == input_name:
                node.input[i] = inner
    for out in folded.graph.output:
        if out.name == input_name:
            raise EdgeposeError(f"graph input {input_name!r} is also an output; nothing to fold into")
    w_name, b_name = FOLD_NODE + ".weight", FOLD_NODE + ".bias"
    folded.graph.initializer.extend([numpy_helper.from_array(weight, w_name),
                                     numpy_helper.from_array(bias, b_name)])
    conv = helper.make_node("Conv", [input_name, w_name, b_name], [inner], name=FOLD_NODE,
                            kernel_shape=[1, 1], strides=[1, 1], pads=[0, 0, 0, 0])
    folded.graph.node.insert(0, conv)
    return folded


def raw_pixels_from_normalised(x: np.ndarray, mean: Sequence[float], std: Sequence[float],
                               model_order: str, feed_order: str = "bgr") -> np.ndarray:
    """Invert the official preprocessing: normalised [N,3,H,W] in `model_order` -> raw pixels
    in `feed_order` (float; reference inputs are not integers after the inversion)."""
    model_order, feed_order = model_order.lower(), feed_order.lower()
    m = np.asarray(mean, np.float64).reshape(1, 3, 1, 1)
    s = np.asarray(std, np.float64).reshape(1, 3, 1, 1)
    pix = x.astype(np.float64) * s + m
    perm = [model_order.index(c) for c in feed_order]
    return pix[:, perm].astype(np.float32)


def normalise_pixels(pix: np.ndarray, mean: Sequence[float], std: Sequence[float],
                     model_order: str, feed_order: str = "bgr") -> np.ndarray:
    """Official preprocessing of raw [N,3,H,W] `feed_order` pixels: what the source model expects."""
    model_order, feed_order = model_order.lower(), feed_order.lower()
    perm = [feed_order.index(c) for c in model_order]
    m = np.asarray(mean, np.float32).reshape(1, 3, 1, 1)
    s = np.asarray(std, np.float32).reshape(1, 3, 1, 1)
    return ((pix[:, perm].astype(np.float32) - m) / s).astype(np.float32)

