"""A pose ONNX with dynamic height/width converts when --config names the input size;
without it the refusal says what to pass."""
from __future__ import annotations

import pytest

import onnx

from edgepose.convert import api, onnx_source  # noqa: E402
from edgepose.errors import EdgeposeError  # noqa: E402
from edgepose.model_meta import ModelMeta  # noqa: E402

BODY_T = "reference/official/rtmpose-t_body8_256x192.onnx"


@pytest.fixture(scope="module")
def dynamic_onnx(shared, tmp_path_factory):
    model = onnx.load(str(shared / BODY_T))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert (dims[2].dim_value, dims[3].dim_value) == (256, 192)    # the shared file is fixed-size
    for dim, symbol in zip(dims, ("batch", "channels", "height", "width")):
        if symbol != "channels":
            dim.Clear()
            dim.dim_param = symbol
    path = tmp_path_factory.mktemp("dynamic") / "body-t_dynamic-hw.onnx"
    onnx.save(model, str(path))
    return path


def test_dynamic_pose_without_config_is_refused_clearly(dynamic_onnx):
    with pytest.raises(EdgeposeError, match=r"no fixed height/width.*--config"):
        onnx_source.inspect(str(dynamic_onnx))


def test_dynamic_pose_with_wrong_size_config_is_refused_clearly(dynamic_onnx, tmp_path):
    # 384x288 runs into the head's fixed flatten size: a clear error, nothing written.
    with pytest.raises(EdgeposeError, match=r"body-t_dynamic-hw.onnx.*does not run at input \[1, 3, 384, 288\]"):
        api.convert(str(dynamic_onnx), str(tmp_path / "out"), config="rtmpose-m_body8_384x288",
                    log=lambda _m: None)
    assert not (tmp_path / "out").exists()


def test_dynamic_pose_with_config_converts_and_self_checks(dynamic_onnx, tmp_path):
    logs = []
    path = api.convert(str(dynamic_onnx), str(tmp_path), config="rtmpose-t_body8_256x192", log=logs.append)
    meta = ModelMeta.load(path)
    assert (meta.input_width, meta.input_height) == (192, 256)
    assert meta.simcc_split_ratio == 2.0 and meta.keypoints["name"] == "coco17"
    assert any("dynamic input height/width fixed to 192x256" in n for n in meta.source["notes"])
    # ncnn vs onnxruntime on the (fixed-size) source graph, real images
    assert any("argmax agreement 100.0%" in line and "OK" in line for line in logs), logs
