"""Helpers shared by the test modules (no test module imports another)."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np

from edgepose.model_meta import ModelMeta, find_model

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """The read-only asset folder beside the checkout (override with EDGEPOSE_SHARED)."""
    return Path(os.environ.get("EDGEPOSE_SHARED", REPO.parent / "shared")).resolve()


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def iou(a, b):
    x1, y1 = np.maximum(a[0], b[0]), np.maximum(a[1], b[1])
    x2, y2 = np.minimum(a[2], b[2]), np.minimum(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


ONNX_REL = "models/rtmdet-nano-person/rtmdet-nano-person_raw-heads.onnx"


def onnx_module_path(node_name: str) -> str:
    """'/backbone/stage1/stage1.0/depthwise_conv/conv/Conv' -> 'backbone.stage1.0.depthwise_conv.conv'."""
    out = []
    for part in node_name.strip("/").split("/")[:-1]:
        if out and part.startswith(out[-1].split(".")[-1] + "."):
            part = part[len(out[-1].split(".")[-1]) + 1:]
        out.append(part)
    return ".".join(out)


def load_fused_onnx(model, onnx_path):
    """Each ONNX Conv (with BN folded in) -> our conv weight; the BN after it becomes +bias."""
    import onnx
    import torch
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    modules = dict(model.named_modules())
    sd = model.state_dict()
    seen = set()
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        path = onnx_module_path(node.name)
        assert isinstance(modules[path], torch.nn.Conv2d), path
        w = inits[node.input[1]]
        b = inits[node.input[2]] if len(node.input) > 2 else np.zeros(w.shape[0], np.float32)
        assert tuple(sd[path + ".weight"].shape) == w.shape, path
        sd[path + ".weight"] = torch.from_numpy(w.copy())
        parent = path.rsplit(".", 1)[0]
        if path + ".bias" in sd:
            sd[path + ".bias"] = torch.from_numpy(b.copy())
        else:
            bn = modules[parent + ".bn"]
            sd[parent + ".bn.weight"] = torch.ones_like(sd[parent + ".bn.weight"])
            sd[parent + ".bn.bias"] = torch.from_numpy(b.copy())
            sd[parent + ".bn.running_mean"] = torch.zeros_like(sd[parent + ".bn.running_mean"])
            sd[parent + ".bn.running_var"] = torch.full_like(sd[parent + ".bn.running_var"], 1.0 - bn.eps)
        seen.add(path)
    convs = {k for k, m in modules.items() if isinstance(m, torch.nn.Conv2d)}
    assert seen == convs, (sorted(convs - seen)[:5], sorted(seen - convs)[:5])
    model.load_state_dict(sd, strict=True)
    return model


def _meta(folder):
    path = find_model(str(folder))
    return path, ModelMeta.load(path)


def official_parity(folder, npz_path, fp16=False):
    """Run the converted model on the official inputs (turned back into raw BGR pixels)."""
    from edgepose.convert import fold_input, selfcheck

    path, meta = _meta(folder)
    ref = np.load(npz_path)
    pix = fold_input.raw_pixels_from_normalised(ref["input"], meta.mean, meta.std, meta.model_channel_order,
                                                meta.channel_order)
    rows = []
    for b in range(pix.shape[0]):
        outs = selfcheck.ncnn_forward(meta.param_path(path), meta.bin_path(path), meta.input_blob,
                                      [meta.output_blobs["simcc_x"], meta.output_blobs["simcc_y"]], pix[b],
                                      fp16=fp16)
        for role, got in zip(("simcc_x", "simcc_y"), outs):
            want = ref[role][b]
            got = got.reshape(want.shape)
            a, g = want.argmax(-1), got.argmax(-1)
            rows.append((float(np.abs(got - want).max()), float(np.abs(want).max()),
                         float((a == g).mean()), float((np.abs(a - g) <= 1).mean())))
    max_abs = max(r[0] for r in rows)
    max_mag = max(r[1] for r in rows)
    return max_abs, max_mag, min(r[2] for r in rows), min(r[3] for r in rows)
