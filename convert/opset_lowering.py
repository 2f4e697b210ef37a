"""Bring ONNX graphs of opset >= 18 (torch's dynamo exporter) to opset 17 for pnnx, or refuse.

From opset 18 the Reduce* ops take `axes` as an input. pnnx reads that form as a
reduction over every axis: the model converts without a word and is wrong. Split takes
`num_outputs`, Pad an `axes` input, Resize new attributes. onnx's version converter
has no 18 -> 17 adapter for Split, so the few ops whose meaning changed are rewritten
here into their opset-17 form; everything else between 17 and the file's opset only
widened its type lists. Anything we cannot express at opset 17 is refused by name.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgepose.errors import EdgeposeError

TARGET_OPSET = 17
AXES_AS_INPUT_SINCE_18 = {"ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
                          "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare"}
RESIZE_ATTRS_SINCE_18 = {"antialias": 0, "axes": None, "keep_aspect_ratio_policy": b"stretch"}


def default_opset(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return imp.version
    return 0


def _constants(model: onnx.ModelProto) -> Dict[str, np.ndarray]:
    out = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            out[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return out


def _attr(node, name):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return None


def _drop_attr(node, name) -> None:
    keep = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend(keep)


def _refuse(origin: str, opset: int, node, why: str) -> EdgeposeError:
    return EdgeposeError(
        f"{origin}: opset {opset} node {node.name or node.op_type} ({node.op_type}) {why}; pnnx reads "
        f"opset <= {TARGET_OPSET} only. Re-export with torch.onnx.export(..., dynamo=False, opset_version=11)")


def _static_shapes(model: onnx.ModelProto) -> Dict[str, List[Optional[int]]]:
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None
                           for d in vi.type.tensor_type.shape.dim]
    return shapes


def lower_to_opset17(model: onnx.ModelProto, origin: str) -> Tuple[onnx.ModelProto, List[str]]:
    opset = default_opset(model)
    if opset <= TARGET_OPSET:
        return model, []
    if model.functions:
        from onnx import inliner
        model = inliner.inline_local_functions(model)
    lowered = onnx.ModelProto()
    lowered.CopyFrom(model)
    consts = _constants(lowered)
    shapes = None
    for node in lowered.graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        if node.op_type in AXES_AS_INPUT_SINCE_18:
            if len(node.input) > 1 and node.input[1]:
                axes = consts.get(node.input[1])
                if axes is None:
                    raise _refuse(origin, opset, node, "takes its axes at run time")
                del node.input[1:]
                node.attribute.append(helper.make_attribute("axes", [int(a) for a in axes.reshape(-1)]))
            elif _attr(node, "noop_with_empty_axes"):
                raise _refuse(origin, opset, node, "reduces nothing (noop_with_empty_axes)")
            _drop_attr(node, "noop_with_empty_axes")
        elif node.op_type == "Split" and _attr(node, "num_outputs") is not None:
            if shapes is None:
                shapes = _static_shapes(lowered)
            dims = shapes.get(node.input[0])
            axis = _attr(node, "axis") or 0
            n = int(_attr(node, "num_outputs"))
            if not dims or dims[axis] is None:
                raise _refuse(origin, opset, node, "splits an axis of unknown length (num_outputs)")
            size = dims[axis]
            chunk = -(-size // n)
            sizes = [chunk] * (size // chunk) + ([size % chunk] if size % chunk else [])
            if len(sizes) != n:
                raise _refuse(origin, opset, node, f"splits {size} into {n} uneven parts")
            name = (node.name or "split") + "_sizes"
            lowered.graph.initializer.append(numpy_helper.from_array(np.array(sizes, np.int64), name))
            _drop_attr(node, "num_outputs")
            del node.input[1:]
            node.input.append(name)
        elif node.op_type == "Pad" and len(node.input) > 3 and node.input[3]:
            raise _refuse(origin, opset, node, "pads selected axes only (axes input)")
        elif node.op_type == "Resize":
            for name, default in RESIZE_ATTRS_SINCE_18.items():
                value = _attr(node, name)
                if value is not None and value != default:
                    raise _refuse(origin, opset, node, f"uses attribute {name}={value!r}")
                _drop_attr(node, name)
            if _attr(node, "coordinate_transformation_mode") == b"half_pixel_symmetric":
                raise _refuse(origin, opset, node, "uses half_pixel_symmetric coordinates")
        try:
            onnx.defs.get_schema(node.op_type, TARGET_OPSET, "")
        except Exception:
            raise _refuse(origin, opset, node, f"has no opset-{TARGET_OPSET} form") from None
    for imp in lowered.opset_import:
        if imp.domain in ("", "ai.onnx"):
            imp.version = TARGET_OPSET
    return lowered, [f"opset {opset} lowered to {TARGET_OPSET} (Reduce axes as attributes, "
                     f"Split sizes explicit); the self-check runs the original in onnxruntime"]
