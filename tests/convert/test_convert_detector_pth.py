"""RTMDet detector checkpoints (.pth) through `convert`, and exp-on-reg heads (RTMDet-m and up).

No official detector .pth is available offline, so one is built honestly: the real trained
weights of the shared raw-heads ONNX are mapped onto our torch RTMDet (the mapping of
test_rtmdet_parity) and saved in the official `{'meta', 'state_dict'}` layout.
"""
from __future__ import annotations

import numpy as np
import pytest

import torch
import onnx
import onnxruntime as ort

from edgepose.convert import onnx_source  # noqa: E402
from edgepose.convert.checkpoint import load_checkpoint  # noqa: E402
from edgepose.convert.models.configs import custom_spec, get_spec  # noqa: E402
from edgepose.convert.models.rtmdet import build_rtmdet  # noqa: E402
from helpers import iou
from helpers import ONNX_REL, load_fused_onnx

COCO = "data/coco_kp17_val2017_merged/val2017"


def nano_person_state_dict(shared):
    model = load_fused_onnx(build_rtmdet(get_spec("rtmdet-nano-person")), shared / ONNX_REL)
    return model.state_dict()


@pytest.fixture(scope="module")
def nano_state_dict(shared):
    return nano_person_state_dict(shared)


def save_checkpoint(path, state_dict, meta=None):
    torch.save({"meta": meta or {}, "state_dict": state_dict}, str(path))
    return path


def test_detector_checkpoint_architecture_inferred_from_shapes(tmp_path, nano_state_dict):
    """Without a config name in meta, the state-dict shapes identify RTMDet-nano person."""
    pth = save_checkpoint(tmp_path / "det.pth", nano_state_dict)
    loaded = load_checkpoint(str(pth))
    assert loaded.spec.name == "rtmdet-nano-person" and loaded.inferred
    assert loaded.spec.input_size == (320, 320)
    assert "state-dict shapes" in loaded.note


def test_exp_on_reg_torch_head_returns_exp_distances(tmp_path, nano_state_dict):
    """RTMDet-m-style heads (exp_on_reg) give exp(conv) in units of stride; cls unchanged;
    the export convert uses keeps the exp in the box outputs."""
    from edgepose.convert import pnnx_export
    plain_spec = get_spec("rtmdet-nano-person")
    plain = build_rtmdet(plain_spec)
    plain.load_state_dict(nano_state_dict, strict=True)
    exp_model = build_rtmdet(custom_spec(plain_spec, exp_on_reg=True))
    exp_model.load_state_dict(nano_state_dict, strict=True)
    assert get_spec("rtmdet-m-person").exp_on_reg and not get_spec("rtmdet-tiny").exp_on_reg
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = plain(x), exp_model(x)
    for i in range(3):
        assert torch.equal(a[i], b[i])
        assert torch.allclose(b[3 + i], a[3 + i].exp(), rtol=1e-6)
        assert b[3 + i].shape == (1, 4, 64 // (8 << i), 96 // (8 << i))
    path = str(tmp_path / "exp.onnx")
    pnnx_export.torch_to_onnx(exp_model, [1, 3, 64, 96], path, list(onnx_source.RTMDET_ROLES))
    src = onnx_source.inspect(path, detector_size=(96, 64))
    assert src.output_roles == list(onnx_source.RTMDET_ROLES)
    sess = ort.InferenceSession(src.model.SerializeToString(), providers=["CPUExecutionProvider"])
    for got, want in zip(sess.run(None, {src.input_name: x.numpy()}), b):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)


def _with_exp_on_box_convs(proto):
    """The raw-heads graph as an exp_on_reg head exports it: Conv -> Exp -> Mul(stride)."""
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    nodes = []
    for node in out.graph.node:
        nodes.append(node)
        if node.op_type == "Conv" and "rtm_reg" in node.name:
            raw = node.output[0]
            node.output[0] = raw + "_pre_exp"
            nodes.append(onnx.helper.make_node("Exp", [raw + "_pre_exp"], [raw], name=node.name + "_exp"))
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    return out


def test_onnx_cut_keeps_exp_of_box_branch(tmp_path, shared):
    """The cut ends the box branch after Exp (units of stride), not at the conv: its outputs
    times the stride equal the exp head's own pixel distances."""
    proto = _with_exp_on_box_convs(onnx.load(str(shared / ONNX_REL)))
    path = tmp_path / "rtmdet-exp_raw-heads.onnx"
    onnx.save(proto, str(path))
    src = onnx_source.inspect(str(path))
    assert src.output_roles == ["cls_8", "cls_16", "cls_32", "box_8", "box_16", "box_32"]
    assert [o.name for o in src.model.graph.output][3:] == [
        n.output[0] for n in src.model.graph.node if n.op_type == "Exp"]
    x = np.random.default_rng(0).normal(size=(1, 3, 320, 320)).astype(np.float32)
    for dim, v in zip(proto.graph.input[0].type.tensor_type.shape.dim, x.shape):
        dim.dim_value = v
    for o in proto.graph.output:
        o.type.tensor_type.ClearField("shape")
    full = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    want = dict(zip([o.name for o in full.get_outputs()], full.run(None, {"input": x})))
    cut = ort.InferenceSession(src.model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = dict(zip(src.output_roles, cut.run(None, {src.input_name: x})))
    for i, stride in enumerate((8, 16, 32)):
        np.testing.assert_array_equal(got[f"cls_{stride}"], want[f"rtmdet_head.0.{i}"])
        assert got[f"box_{stride}"].min() > 0.0     # exp'd distances
        np.testing.assert_allclose(got[f"box_{stride}"] * stride, want[f"rtmdet_head.1.{i}"], rtol=1e-6)


@pytest.fixture(scope="module")
def rtmdet_pth_dir(tmp_path_factory, nano_state_dict):
    from edgepose.convert.api import convert
    work = tmp_path_factory.mktemp("rtmdet_pth")
    pth = save_checkpoint(work / "rtmdet_nano_320-8xb32_coco-person.pth", nano_state_dict,
                          {"experiment_name": "rtmdet_nano_320-8xb32_coco-person_20230228_000000"})
    logs = []
    convert(str(pth), str(work / "out"), log=logs.append)
    assert any("self-check" in line and "OK" in line for line in logs), logs
    return work / "out"


def test_detector_pth_metadata(rtmdet_pth_dir, rtmdet_dir):
    from edgepose.model_meta import ModelMeta, find_model
    meta = ModelMeta.load(find_model(str(rtmdet_pth_dir)))
    onnx_meta = ModelMeta.load(find_model(str(rtmdet_dir)))
    assert meta.task == "detect" and (meta.input_width, meta.input_height) == (320, 320)
    assert meta.mean == [103.53, 116.28, 123.675] and meta.std == [57.375, 57.12, 58.395]
    assert meta.model_channel_order == "bgr" and meta.channel_order == "bgr" and meta.normalization_folded
    assert sorted(meta.output_blobs) == sorted(onnx_source.RTMDET_ROLES)
    assert meta.detector == onnx_meta.detector          # same block as the ONNX path writes
    assert meta.detector["box_units"] == "stride" and meta.detector["family"] == "rtmdet"
    assert meta.source["config"] == "rtmdet_nano_320-8xb32_coco-person"


def test_detector_pth_finds_what_the_onnx_conversion_finds(rtmdet_pth_dir, rtmdet_dir, shared):
    """Same trained weights by two routes (.pth -> torch -> ncnn, ONNX -> ncnn): same persons."""
    import cv2

    from edgepose.runtime.detector import Detector
    from edgepose.model_meta import find_model
    from_pth = Detector(find_model(str(rtmdet_pth_dir)), precision="fp32", fp16=False, threads=1)
    from_onnx = Detector(find_model(str(rtmdet_dir)), precision="fp32", fp16=False, threads=1)
    persons = 0
    for f in sorted((shared / COCO).iterdir())[:6]:
        image = cv2.imread(str(f))
        got_boxes, got_scores = from_pth(image)
        want_boxes, want_scores = from_onnx(image)
        assert len(got_boxes) == len(want_boxes), f.name
        for wb in want_boxes:
            assert max(iou(wb, gb) for gb in got_boxes) >= 0.99, f.name
        assert np.allclose(np.sort(got_scores), np.sort(want_scores), atol=1e-3)
        persons += len(want_boxes)
    assert persons >= 3


def test_detector_onnx_config_sets_test_size_and_must_fit(tmp_path, shared):
    """--config gives an RTMDet ONNX its official test size (640 for m/tiny); a config with
    another class count (or family) is refused before anything is written."""
    from edgepose.convert import api
    from edgepose.errors import EdgeposeError
    assert api._config_sizes("rtmdet-m-person") == {"detector_size": (640, 640)}
    assert api._config_sizes("rtmdet-nano-person") == {"detector_size": (320, 320)}
    src = onnx_source.inspect(str(shared / ONNX_REL), detector_size=(640, 640))
    assert (src.input_width, src.input_height) == (640, 640)
    with pytest.raises(EdgeposeError, match="has 1 classes, config rtmdet-tiny has 80"):
        api.convert(str(shared / ONNX_REL), str(tmp_path / "out"), config="rtmdet-tiny", log=lambda _m: None)
    with pytest.raises(EdgeposeError, match="yolox detector, config rtmdet-nano-person is rtmdet"):
        api.convert(str(shared / "models/yolox-nano/yolox_nano_416x416.onnx"), str(tmp_path / "out"),
                    config="rtmdet-nano-person", log=lambda _m: None)
    assert not (tmp_path / "out").exists()
