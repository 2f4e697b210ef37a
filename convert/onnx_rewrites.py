"""Exact rewrites of ONNX patterns that pnnx/ncnn cannot run as they are.

YOLOX's Focus stem slices the image with step 2 (x[..., ::2, ::2] and the three other
phases) and concatenates the four phases on channels. ncnn has no strided slice, so
pnnx leaves `Tensor.slice` layers ncnn cannot load. A 2x2 stride-2 convolution with
one-hot weights gives the same tensor exactly (each output is 1.0 * x plus zeros).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np
import onnx
from onnx import helper, numpy_helper

BIG_END = 2 ** 30


def constant_value(model: onnx.ModelProto, name: str) -> Optional[np.ndarray]:
    """The value of an initializer or Constant node output, None for a computed tensor."""
    for init in model.graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            for a in node.attribute:
                if a.name == "value":
                    return numpy_helper.to_array(a.t)
    return None


def _slice_spec(model, node) -> Optional[Dict[int, int]]:
    """{axis: start} of a step-2, open-ended Slice (opset >= 10 form), else None."""
    if node.op_type != "Slice" or len(node.input) < 5:
        return None
    starts, ends, axes, steps = (constant_value(model, n) for n in node.input[1:5])
    if any(v is None for v in (starts, ends, axes, steps)):
        return None
    if not (np.all(steps == 2) and np.all(ends >= BIG_END) and np.all(np.isin(starts, (0, 1)))):
        return None
    return {int(a): int(s) for a, s in zip(axes, starts)}


def _phase_of(model, producer, tensor: str) -> Optional[Tuple[str, int, int, List]]:
    """Follow one or two step-2 Slices back to their source: (source, row, col, nodes)."""
    spec: Dict[int, int] = {}
    nodes = []
    name = tensor
    for _ in range(2):
        node = producer.get(name)
        s = _slice_spec(model, node) if node is not None else None
        if s is None:
            break
        if set(s) & set(spec):
            return None
        spec.update(s)
        nodes.append(node)
        name = node.input[0]
    if set(spec) != {2, 3}:
        return None
    return name, spec[2], spec[3], nodes


def focus_slices_to_conv(model: onnx.ModelProto, input_name: str, channels: int, height: int,
                         width: int) -> Tuple[onnx.ModelProto, int]:
    """Replace Concat(step-2 phase slices of the graph input) by one Conv; return (model, count)."""
    if height % 2 or width % 2:
        return model, 0
    producer = {o: n for n in model.graph.node for o in n.output}
    replaced = 0
    for concat in list(model.graph.node):
        if concat.op_type != "Concat" or helper.get_attribute_value(concat.attribute[0]) != 1:
            continue
        phases = [_phase_of(model, producer, t) for t in concat.input]
        if not phases or any(p is None or p[0] != input_name for p in phases):
            continue
        weight = np.zeros((channels * len(phases), channels, 2, 2), np.float32)
        for k, (_, row, col, _) in enumerate(phases):
            for c in range(channels):
                weight[k * channels + c, c, row, col] = 1.0
        w_name = concat.name + "_phase_weight"
        model.graph.initializer.append(numpy_helper.from_array(weight, w_name))
        conv = helper.make_node("Conv", [input_name, w_name], list(concat.output), name=concat.name + "_as_conv",
                                kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0])
        dead = {id(n) for p in phases for n in p[3]} | {id(concat)}
        keep = []
        for n in model.graph.node:
            if id(n) == id(concat):
                keep.append(conv)
            elif id(n) not in dead:
                keep.append(n)
        del model.graph.node[:]
        model.graph.node.extend(keep)
        replaced += 1
    return model, replaced
