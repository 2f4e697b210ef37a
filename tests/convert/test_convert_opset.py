"""ONNX at opset >= 18 (axes as inputs) converts correctly or is refused, never silently wrong."""
from __future__ import annotations

import numpy as np
import pytest

from edgepose.cli import main
from helpers import official_parity

REF = "reference/official"


def test_opset18_upgrade_of_the_reference_model_converts_exactly(tmp_path, shared, capsys):
    import onnx
    from onnx import version_converter
    model = onnx.load(str(shared / REF / "rtmpose-t_body8_256x192.onnx"))
    up = version_converter.convert_version(model, 18)
    assert any(n.op_type == "ReduceL2" and len(n.input) == 2 for n in up.graph.node)   # axes as input
    src = tmp_path / "body_op18.onnx"
    onnx.save(up, str(src))
    assert main(["convert", str(src), "-o", str(tmp_path / "out")]) == 0
    assert "opset 18 lowered to 17" in capsys.readouterr().out
    max_abs, max_mag, argmax, _ = official_parity(tmp_path / "out", shared / REF / "rtmpose-t_body8_256x192.io.npz")
    assert max_abs <= 1e-4 * max_mag and argmax == 1.0


def _reduce_l2_with_runtime_axes(path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    inits = [numpy_helper.from_array(np.ones((2, 3, 1, 1), np.float32), "w"),
             numpy_helper.from_array(np.array([1, 2, 48], np.int64), "shape"),
             numpy_helper.from_array(np.array([-1], np.int64), "axes_const")]
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], kernel_shape=[1, 1]),
             helper.make_node("Reshape", ["c", "shape"], ["f"]),
             helper.make_node("Identity", ["axes_const"], ["axes"]),     # computed in the graph
             helper.make_node("ReduceL2", ["f", "axes"], ["n"], keepdims=1),
             helper.make_node("Div", ["f", "n"], ["simcc_x"]),
             helper.make_node("Identity", ["f"], ["simcc_y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 6])],
                              [helper.make_tensor_value_info("simcc_x", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("simcc_y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_opset18_reduce_with_run_time_axes_is_refused(tmp_path, capsys):
    src = tmp_path / "runtime_axes.onnx"
    _reduce_l2_with_runtime_axes(src)
    rc = main(["convert", str(src), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1
    assert "ReduceL2" in err and "axes" in err and "opset_version=11" in err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.slow
def test_torch_default_dynamo_export_converts_exactly(tmp_path, shared, capsys):
    """torch 2.13's default exporter (opset 20, Reduce axes as inputs) from our .pth model."""
    import warnings

    import onnx
    import torch

    from edgepose.convert.checkpoint import load_checkpoint
    import onnxscript  # noqa: F401  (torch's default dynamo exporter needs it; CI installs it)
    loaded = load_checkpoint(str(shared / REF / "rtmpose-t_body8_256x192.pth"))
    src = tmp_path / "body_dynamo.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(loaded.model, (torch.zeros(1, 3, 256, 192),), str(src), input_names=["input"],
                          output_names=["simcc_x", "simcc_y"])
    assert onnx.load(str(src)).opset_import[0].version >= 18
    assert main(["convert", str(src), "-o", str(tmp_path / "out")]) == 0
    assert "lowered to 17" in capsys.readouterr().out
    max_abs, max_mag, argmax, _ = official_parity(tmp_path / "out", shared / REF / "rtmpose-t_body8_256x192.io.npz")
    assert max_abs <= 1e-4 * max_mag and argmax == 1.0
