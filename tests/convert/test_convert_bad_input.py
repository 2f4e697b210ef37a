"""`edgepose convert` on bad input: one clear error line, exit code != 0, nothing half-written."""
from __future__ import annotations

import os
import pickle

import numpy as np

from edgepose.cli import main

REF = "reference/official"


def run_convert(capsys, *args):
    rc = main(["convert", *map(str, args)])
    captured = capsys.readouterr()
    return rc, captured.err.strip()


def assert_refused(rc, err, *words, out_dir=None):
    assert rc != 0
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgepose convert: error:"), err
    for w in words:
        assert w.lower() in lines[0].lower(), (w, lines[0])
    if out_dir is not None and os.path.isdir(out_dir):
        left = [f for f in os.listdir(out_dir) if f.endswith((".param", ".bin", ".json")) or ".tmp-" in f]
        assert left == [], left


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_would_run_code_is_refused(tmp_path, capsys):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        pickle.dump({"state_dict": {}, "meta": _RunsCode(marker)}, f)
    import torch
    torch.save({"state_dict": {}, "meta": _RunsCode(marker)}, str(tmp_path / "evil_zip.pth"))
    for path in (evil, tmp_path / "evil_zip.pth"):
        rc, err = run_convert(capsys, path, "-o", tmp_path / "out")
        assert_refused(rc, err, path.name, out_dir=tmp_path / "out")
    assert "system" in err          # the torch.save'd one names what it would have called
    assert not marker.exists()


def test_truncated_checkpoint_and_onnx(tmp_path, capsys, shared):
    for name in ("rtmpose-t_body8_256x192.pth", "rtmpose-t_body8_256x192.onnx"):
        data = (shared / REF / name).read_bytes()
        cut = tmp_path / ("cut_" + name)
        cut.write_bytes(data[: len(data) // 2])
        rc, err = run_convert(capsys, cut, "-o", tmp_path / "out")
        assert_refused(rc, err, cut.name, out_dir=tmp_path / "out")


def test_files_that_are_not_models(tmp_path, capsys, shared):
    jpg = sorted((shared / "data/coco_kp17_val2017_merged/val2017").iterdir())[0]
    fake_pth = tmp_path / "photo.pth"
    fake_pth.write_bytes(jpg.read_bytes())
    fake_onnx = tmp_path / "notes.onnx"
    fake_onnx.write_text("these are not the weights you are looking for\n")
    for path in (fake_pth, fake_onnx):
        rc, err = run_convert(capsys, path, "-o", tmp_path / "out")
        assert_refused(rc, err, path.name, out_dir=tmp_path / "out")
    rc, err = run_convert(capsys, tmp_path / "missing.onnx", "-o", tmp_path / "out")
    assert_refused(rc, err, "missing.onnx", "not found")
    other = tmp_path / "weights.txt"
    other.write_text("x")
    rc, err = run_convert(capsys, other, "-o", tmp_path / "out")
    assert_refused(rc, err, "weights.txt", ".pth")


def test_checkpoint_not_fitting_named_config(tmp_path, capsys, shared):
    rc, err = run_convert(capsys, shared / REF / "rtmpose-t_body8_256x192.pth", "-o", tmp_path / "out",
                          "--config", "rtmpose-t_wholebody_256x192")
    assert_refused(rc, err, "rtmpose-t_body8_256x192.pth", "does not fit", out_dir=tmp_path / "out")


def _pose_like_onnx_with(op_type, path):
    """Tiny graph with simcc_x/simcc_y outputs whose x branch uses `op_type`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(2, 3, 1, 1)).astype(np.float32), "w"),
             numpy_helper.from_array(np.array([1, 2, 48], np.int64), "shape"),
             numpy_helper.from_array(rng.normal(size=(48, 12)).astype(np.float32), "wx"),
             numpy_helper.from_array(rng.normal(size=(48, 16)).astype(np.float32), "wy")]
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], kernel_shape=[1, 1]),
             helper.make_node("Reshape", ["c", "shape"], ["f"]),
             helper.make_node("MatMul", ["f", "wx"], ["x"]),
             helper.make_node(op_type, ["x"], ["simcc_x"]),
             helper.make_node("MatMul", ["f", "wy"], ["simcc_y"])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 6])],
                              [helper.make_tensor_value_info("simcc_x", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("simcc_y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    onnx.save(model, str(path))


def test_onnx_with_unsupported_op(tmp_path, capsys):
    bad = tmp_path / "hardmax.onnx"
    _pose_like_onnx_with("Hardmax", bad)
    rc, err = run_convert(capsys, bad, "-o", tmp_path / "out")
    assert_refused(rc, err, "hardmax.onnx", "Hardmax", "not supported", out_dir=tmp_path / "out")
    ok = tmp_path / "relu.onnx"       # the same graph with a supported op converts: the test is fair
    _pose_like_onnx_with("Relu", ok)
    assert main(["convert", str(ok), "-o", str(tmp_path / "out2"), "--no-check"]) == 0


def test_unwritable_output_folder(tmp_path, capsys, shared):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    rc, err = run_convert(capsys, shared / REF / "rtmpose-t_body8_256x192.onnx", "-o", blocker / "sub")
    assert_refused(rc, err, "a_file", "output folder")
    rc, err = run_convert(capsys, shared / REF / "rtmpose-t_body8_256x192.onnx", "-o", blocker)
    assert_refused(rc, err, "a_file")
    if os.geteuid() != 0:          # root writes anywhere; permission bits only bind other users
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        rc, err = run_convert(capsys, shared / REF / "rtmpose-t_body8_256x192.onnx", "-o", ro)
        assert_refused(rc, err, "not writable", out_dir=ro)


def test_unrelated_user_files_are_not_overwritten(tmp_path, capsys, shared):
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "rtmpose-t_body8_256x192.json"
    mine.write_text('{"my": "settings"}')
    rc, err = run_convert(capsys, shared / REF / "rtmpose-t_body8_256x192.onnx", "-o", out)
    assert_refused(rc, err, "refusing to overwrite")
    assert mine.read_text() == '{"my": "settings"}'
    assert sorted(p.name for p in out.iterdir()) == [mine.name]


def test_failed_self_check_leaves_nothing(tmp_path, capsys, shared, monkeypatch):
    """A conversion that does not reproduce its source is not written (simulated by a skewed source)."""
    from edgepose.convert import api
    real = api._ort_reference

    def skewed(model, src):
        run = real(model, src)
        return lambda pix: [o * 1.01 for o in run(pix)]
    monkeypatch.setattr(api, "_ort_reference", skewed)
    rc, err = run_convert(capsys, shared / REF / "rtmpose-t_body8_256x192.onnx", "-o", tmp_path / "out")
    assert_refused(rc, err, "does not reproduce", "FAILED", out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()        # the folder it created for the model went too
    (tmp_path / "kept").mkdir()
    rc, err = run_convert(capsys, shared / REF / "rtmpose-t_body8_256x192.onnx", "-o", tmp_path / "kept")
    assert_refused(rc, err, "does not reproduce")
    assert list((tmp_path / "kept").iterdir()) == []   # the user's folder stays, empty


def test_onnx_not_fitting_named_config(tmp_path, capsys, shared):
    rc, err = run_convert(capsys, shared / REF / "rtmpose-t_body8_256x192.onnx", "-o", tmp_path / "out",
                          "--config", "rtmpose-t_wholebody_256x192")
    assert_refused(rc, err, "rtmpose-t_body8_256x192.onnx", "does not fit", "133 keypoints")
