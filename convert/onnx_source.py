"""Inspect and normalise a deploy ONNX file before it goes to pnnx.

Decides what the file is (pose model with SimCC outputs, RTMDet-family detector with
or without NMS inside, YOLOX detector), fixes the input shape, cuts detector graphs
back to their raw head tensors, and brings newer opsets back to a form pnnx reads
correctly (or refuses them).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import onnx

from edgepose.errors import EdgeposeError

from . import onnx_rewrites, opset_lowering

# Official preprocessing (mmpose / mmdet configs): mean/std in the model's channel order.
POSE_MEAN_RGB = [123.675, 116.28, 103.53]
POSE_STD_RGB = [58.395, 57.12, 57.375]
RTMDET_MEAN_BGR = [103.53, 116.28, 123.675]
RTMDET_STD_BGR = [57.375, 57.12, 58.395]

# Official test sizes (width, height) and post-processing of the detector families.
RTMDET_TEST_SIZE = (320, 320)
RTMDET_ROLES = ("cls_8", "cls_16", "cls_32", "box_8", "box_16", "box_32")
YOLOX_NANO_TEST_SIZE = (416, 416)
RTMDET_POSTPROCESS = {"score_threshold": 0.05, "nms_iou": 0.6, "max_per_img": 100, "nms_pre": 1000}
YOLOX_POSTPROCESS = {"score_threshold": 0.01, "nms_iou": 0.65, "max_per_img": 100}


@dataclass
class OnnxSource:
    """A normalised ONNX graph plus what the metadata needs to know about it."""
    model: onnx.ModelProto
    # What the self-check runs in onnxruntime: the source graph before any rewrite
    # (input shape fixed, detector heads cut), so rewrites are checked too.
    reference_model: onnx.ModelProto
    task: str                            # "pose" | "detect"
    family: str                          # "rtmpose" | "rtmdet" | "yolox"
    input_name: str
    input_width: int
    input_height: int
    output_roles: List[str]              # role of each graph output, in graph order
    model_channel_order: str             # channel order the graph expects ("rgb"/"bgr")
    mean: List[float]
    std: List[float]
    num_keypoints: int = 0
    simcc_split_ratio: Optional[float] = None
    detector: Optional[Dict] = None
    notes: List[str] = field(default_factory=list)


def load_onnx(path: str) -> onnx.ModelProto:
    try:
        model = onnx.load(path)
    except Exception as e:  # onnx raises DecodeError / OSError / google.protobuf errors
        raise EdgeposeError(f"{path}: not a readable ONNX file ({type(e).__name__}: {e})") from None
    if not model.graph.node:
        raise EdgeposeError(f"{path}: ONNX file holds no graph nodes (truncated or not a model)")
    return model


def _dims(value_info) -> List:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in value_info.type.tensor_type.shape.dim]


_constant_value = onnx_rewrites.constant_value


def _set_input_shape(model: onnx.ModelProto, name: str, shape: List[int]) -> None:
    for inp in model.graph.input:
        if inp.name == name:
            dims = inp.type.tensor_type.shape.dim
            del dims[:]
            for v in shape:
                dims.add().dim_value = v
    # Stale symbolic shapes of intermediate values would confuse shape inference.
    del model.graph.value_info[:]
    for out in model.graph.output:
        out.type.tensor_type.ClearField("shape")


def _graph_inputs(model: onnx.ModelProto):
    inits = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def _head_convs(model: onnx.ModelProto) -> List[onnx.NodeProto]:
    """1x1 Conv nodes that no other Conv follows: the prediction convs of a dense head."""
    consumers: Dict[str, List[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def reaches_conv(name: str, seen: set) -> bool:
        for c in consumers.get(name, []):
            if id(c) in seen:
                continue
            seen.add(id(c))
            if c.op_type == "Conv":
                return True
            if any(reaches_conv(o, seen) for o in c.output):
                return True
        return False

    heads = []
    for n in model.graph.node:
        if n.op_type != "Conv":
            continue
        w = _constant_value(model, n.input[1])
        if w is None or w.ndim != 4 or w.shape[2:] != (1, 1):
            continue
        if not reaches_conv(n.output[0], set()):
            heads.append(n)
    return heads


def _output_shapes(model: onnx.ModelProto, input_name: str, shape: List[int], origin: str = "model"
                   ) -> List[Tuple[int, ...]]:
    import onnxruntime as ort
    try:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        outs = sess.run(None, {input_name: np.zeros(shape, np.float32)})
    except Exception as e:  # onnxruntime's own exception types vary by version
        why = str(e).strip().splitlines()[0][:240] if str(e).strip() else type(e).__name__
        raise EdgeposeError(f"{origin}: the graph does not run at input {list(shape)} ({why})") from None
    return [o.shape for o in outs]


def _drop_unused_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    used = {i for n in model.graph.node for i in n.input}
    inits = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(inits)
    return model


def _extract(model: onnx.ModelProto, outputs: List[str]) -> onnx.ModelProto:
    """Sub-graph computing `outputs` from the graph input (nodes not needed are dropped)."""
    producer = {o: n for n in model.graph.node for o in n.output}
    keep, stack = set(), list(outputs)
    while stack:
        name = stack.pop()
        node = producer.get(name)
        if node is None or id(node) in keep:
            continue
        keep.add(id(node))
        stack.extend(i for i in node.input if i)
    cut = onnx.ModelProto()
    cut.CopyFrom(model)
    nodes = [n for n in model.graph.node if id(n) in keep]
    used = {i for n in nodes for i in n.input}
    del cut.graph.node[:]
    cut.graph.node.extend(nodes)
    inits = [i for i in model.graph.initializer if i.name in used]
    del cut.graph.initializer[:]
    cut.graph.initializer.extend(inits)
    del cut.graph.output[:]
    cut.graph.output.extend(onnx.helper.make_tensor_value_info(o, onnx.TensorProto.FLOAT, None)
                            for o in outputs)
    return cut


def _cut_rtmdet(model: onnx.ModelProto, input_name: str, size: Tuple[int, int], origin: str
                ) -> Tuple[onnx.ModelProto, List[str], int]:
    """Keep only the per-level class-logit and box-distance convs (box in units of stride)."""
    heads = _head_convs(model)
    box = [n for n in heads if _constant_value(model, n.input[1]).shape[0] == 4]
    cls = [n for n in heads if _constant_value(model, n.input[1]).shape[0] != 4]
    if len(box) != 3 or len(cls) != 3:
        raise EdgeposeError(
            f"{origin}: expected 3 class and 3 box prediction convs of an RTMDet head, found "
            f"{len(cls)} and {len(box)}; not an RTMDet-family detector edgepose knows")
    num_classes = int(_constant_value(model, cls[0].input[1]).shape[0])
    consumers = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def distance_output(conv):
        # exp_on_reg heads (RTMDet-m and larger) take exp() of the conv: still units of stride.
        after = consumers.get(conv.output[0], [])
        if len(after) == 1 and after[0].op_type == "Exp":
            return after[0].output[0]
        return conv.output[0]
    names = [n.output[0] for n in cls] + [distance_output(n) for n in box]
    w, h = size
    cut = _extract(model, names)
    shapes = _output_shapes(cut, input_name, [1, 3, h, w], origin)
    roles = []
    for kind, shape in zip(["cls"] * 3 + ["box"] * 3, shapes):
        stride = h // shape[2]
        if stride * shape[2] != h or stride not in (8, 16, 32):
            raise EdgeposeError(f"{origin}: head output of shape {shape} does not fit a stride 8/16/32 "
                                f"at input {w}x{h}")
        roles.append(f"{kind}_{stride}")
    return cut, roles, num_classes


def inspect(path: str, detector_size: Tuple[int, int] = RTMDET_TEST_SIZE,
            pose_size: Optional[Tuple[int, int]] = None) -> OnnxSource:
    """Load `path`, identify the model family and return the normalised graph.

    detector_size: (w, h) an RTMDet graph is converted at (fully convolutional; the
    official test size of RTMDet-nano is 320x320).
    pose_size: (w, h) for a pose graph whose height/width are dynamic (from --config);
    a fixed size in the file must equal it."""
    original = load_onnx(path)
    model, notes = opset_lowering.lower_to_opset17(original, path)
    inputs = _graph_inputs(model)
    if len(inputs) != 1:
        raise EdgeposeError(f"{path}: expected one image input, found {len(inputs)} "
                            f"({', '.join(i.name for i in inputs)})")
    inp = inputs[0]
    in_dims = _dims(inp)
    if len(in_dims) != 4 or in_dims[1] not in (3, None):
        raise EdgeposeError(f"{path}: input {inp.name!r} has shape {in_dims}; expected [N,3,H,W]")
    out_names = [o.name for o in model.graph.output]

    if "simcc_x" in out_names and "simcc_y" in out_names:
        return _inspect_pose(model, original, path, inp.name, in_dims, notes, pose_size)
    if sorted(out_names) == sorted(RTMDET_ROLES):
        # Our own torch export: already the six role tensors, nothing to cut.
        return _inspect_rtmdet_roles(model, path, inp.name, notes, detector_size)
    if set(out_names) >= {"dets", "labels"} or (
            len(out_names) == 6 and all(len(_dims(o)) == 4 for o in model.graph.output)):
        w, h = detector_size
        _set_input_shape(model, inp.name, [1, 3, h, w])
        if set(out_names) >= {"dets", "labels"}:
            notes.append("NMS graph cut back to the six raw head tensors")
        cut, roles, num_classes = _cut_rtmdet(model, inp.name, (w, h), path)
        return OnnxSource(
            model=cut, reference_model=cut, task="detect", family="rtmdet", input_name=inp.name,
            input_width=w, input_height=h,
            output_roles=roles, model_channel_order="bgr", mean=RTMDET_MEAN_BGR, std=RTMDET_STD_BGR,
            detector=_rtmdet_params(num_classes),
            notes=notes)
    if len(out_names) == 1 and len(_dims(model.graph.output[0])) == 3:
        last = _dims(model.graph.output[0])[2]
        if isinstance(last, int) and last >= 6:
            h = in_dims[2] if isinstance(in_dims[2], int) else YOLOX_NANO_TEST_SIZE[1]
            w = in_dims[3] if isinstance(in_dims[3], int) else YOLOX_NANO_TEST_SIZE[0]
            _set_input_shape(model, inp.name, [1, 3, h, w])
            reference = onnx.ModelProto()
            reference.CopyFrom(model)
            model, n_focus = onnx_rewrites.focus_slices_to_conv(model, inp.name, 3, h, w)
            if n_focus:
                notes.append("Focus stem (step-2 slices) rewritten as an exact 2x2 stride-2 convolution")
            return OnnxSource(
                model=_drop_unused_initializers(model), reference_model=reference, task="detect",
                family="yolox", input_name=inp.name, input_width=w,
                input_height=h, output_roles=["output"], model_channel_order="bgr",
                mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0],
                detector={"family": "yolox", "strides": [8, 16, 32], "num_classes": last - 5,
                          "person_class": 0, "pad_value": 114, "keep_ratio": True, **YOLOX_POSTPROCESS},
                notes=notes)
    raise EdgeposeError(
        f"{path}: cannot tell what model this is (input {inp.name!r} {in_dims}, outputs {out_names}); "
        f"expected a pose model with outputs simcc_x/simcc_y, an RTMDet detector (raw heads or "
        f"dets/labels) or a YOLOX detector (one [N,A,5+C] output)")


def _inspect_rtmdet_roles(model, path, input_name, notes, size) -> OnnxSource:
    w, h = size
    _set_input_shape(model, input_name, [1, 3, h, w])
    outs = {o.name: o for o in model.graph.output}
    del model.graph.output[:]
    model.graph.output.extend(outs[r] for r in RTMDET_ROLES)
    shapes = dict(zip(RTMDET_ROLES, _output_shapes(model, input_name, [1, 3, h, w], path)))
    for role, shape in shapes.items():
        stride = int(role.split("_")[1])
        if shape[2] * stride != h or shape[3] * stride != w:
            raise EdgeposeError(f"{path}: output {role} has shape {shape}; not stride {stride} of {w}x{h}")
    return OnnxSource(
        model=model, reference_model=model, task="detect", family="rtmdet", input_name=input_name,
        input_width=w, input_height=h, output_roles=list(RTMDET_ROLES), model_channel_order="bgr",
        mean=RTMDET_MEAN_BGR, std=RTMDET_STD_BGR,
        detector=_rtmdet_params(int(shapes["cls_8"][1])), notes=notes)


def _rtmdet_params(num_classes: int) -> Dict:
    return {"family": "rtmdet", "strides": [8, 16, 32], "num_classes": num_classes, "person_class": 0,
            "pad_value": 114, "keep_ratio": True, "box_units": "stride", **RTMDET_POSTPROCESS}


def _pose_outputs_first(model: onnx.ModelProto) -> None:
    """simcc_x, simcc_y as the only outputs, in that order: out0 / out1 after pnnx."""
    outs = {o.name: o for o in model.graph.output}
    ordered = [outs["simcc_x"], outs["simcc_y"]]
    del model.graph.output[:]
    model.graph.output.extend(ordered)


def _inspect_pose(model, original, path, input_name, in_dims, notes, pose_size=None) -> OnnxSource:
    h, w = in_dims[2], in_dims[3]
    if not (isinstance(h, int) and isinstance(w, int)):
        if pose_size is None:
            raise EdgeposeError(f"{path}: pose input {input_name!r} has no fixed height/width ({in_dims}); "
                                f"pass --config NAME to say the input size (e.g. rtmpose-m_body8_256x192)")
        w_cfg, h_cfg = (int(v) for v in pose_size)
        for have, want, axis in ((h, h_cfg, "height"), (w, w_cfg, "width")):
            if isinstance(have, int) and have != want:
                raise EdgeposeError(f"{path}: pose input {input_name!r} has {axis} {have}, the config says {want}")
        h, w = h_cfg, w_cfg
        notes.append(f"dynamic input height/width fixed to {w}x{h} (w x h) from the config")
    for m in {id(model): model, id(original): original}.values():
        _set_input_shape(m, input_name, [1, 3, h, w])
        _pose_outputs_first(m)
    sx, sy = _output_shapes(model, input_name, [1, 3, h, w], path)
    if sx[1] != sy[1]:
        raise EdgeposeError(f"{path}: simcc_x {sx} and simcc_y {sy} disagree on the keypoint count")
    ratio_x, ratio_y = sx[2] / w, sy[2] / h
    if abs(ratio_x - ratio_y) > 1e-6:
        raise EdgeposeError(f"{path}: SimCC split ratios differ in x ({ratio_x}) and y ({ratio_y})")
    return OnnxSource(
        model=model, reference_model=original, task="pose", family="rtmpose", input_name=input_name,
        input_width=w, input_height=h,
        output_roles=["simcc_x", "simcc_y"], model_channel_order="rgb", mean=POSE_MEAN_RGB, std=POSE_STD_RGB,
        num_keypoints=int(sx[1]), simcc_split_ratio=float(ratio_x), notes=notes)

