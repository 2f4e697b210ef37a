"""ncnn .param/.bin reader/writer: decoding, byte-identical round trips, clear errors."""
from __future__ import annotations

import numpy as np
import pytest

from edgepose.errors import EdgeposeError
from edgepose.ncnn_io import (RAW, TAG_FP16, TAG_INT8, Layer, NcnnModel, ParamDict, WeightBlob,
                                  parse_param, read_model, write_model)


def tiny_model() -> NcnnModel:
    """Input -> Convolution(fp16 weights) -> Reshape(array param) -> Gemm(fp32 B) + MemoryData."""
    rng = np.random.default_rng(0)
    conv = ParamDict()
    for k, v in ((0, 4), (1, 3), (11, 3), (4, 1), (5, 1), (6, 4 * 3 * 9)):
        conv.set(k, v)
    reshape = ParamDict()
    reshape.set(0, 16)
    reshape.set(1, 4)
    reshape.set(6, [1, -1, 2])       # an array param, written as -23306=3,1,-1,2
    gemm = ParamDict()
    for k, v in ((2, 0), (3, 1), (4, 0), (5, 1), (6, 0), (7, 4), (8, 5), (9, 16), (10, -1), (0, 0.5)):
        gemm.set(k, v)
    mem = ParamDict()
    mem.set(0, 5)
    layers = [
        Layer("Input", "in0", [], ["in0"], ParamDict()),
        Layer("Convolution", "conv", ["in0"], ["c"], conv,
              [WeightBlob.fp16("weight", rng.normal(size=108)), WeightBlob.fp32("bias", rng.normal(size=4), RAW)]),
        Layer("Reshape", "rs", ["c"], ["r"], reshape),
        Layer("Gemm", "gemm", ["r"], ["g"], gemm, [WeightBlob.fp32("B", rng.normal(size=80))]),
        Layer("MemoryData", "mem", [], ["m"], mem, [WeightBlob.fp32("data", np.arange(5), RAW)]),
        Layer("BinaryOp", "add", ["g", "m"], ["out0"], ParamDict()),
    ]
    return NcnnModel(layers, 6)


def test_tiny_model_round_trip_and_decoding(tmp_path):
    m = tiny_model()
    p, b = tmp_path / "t.param", tmp_path / "t.bin"
    write_model(m, str(p), str(b))
    text = p.read_text()
    assert text.startswith("7767517\n6 6\n")
    assert "-23306=3,1,-1,2" in text and "0=5.0e-01" not in text and "0=0.5" in text
    r = read_model(str(p), str(b))
    assert r.param_text() == text and r.bin_bytes() == b.read_bytes()
    conv = r.layer("conv")
    assert [x.name for x in conv.blobs] == ["weight", "bias"]
    assert conv.blob("weight").storage == "fp16"
    assert int.from_bytes(conv.blob("weight").raw[:4], "little") == TAG_FP16
    np.testing.assert_array_equal(conv.blob("weight").data(), m.layer("conv").blob("weight").data())
    assert r.layer("rs").params.get(6) == [1, -1, 2]
    assert r.layer("gemm").params.get(0) == 0.5
    np.testing.assert_array_equal(r.layer("mem").blob("data").data(), np.arange(5, dtype=np.float32))
    # fp16 payload of 108 values is 216 bytes: already 4-aligned; an odd count gets padded
    odd = WeightBlob.fp16("w", np.ones(3))
    assert len(odd.raw) == 4 + 8
    i8 = WeightBlob.int8("w", np.array([-127, 0, 5, 127, 1]))
    assert len(i8.raw) == 4 + 8 and int.from_bytes(i8.raw[:4], "little") == TAG_INT8
    np.testing.assert_array_equal(i8.data(), [-127, 0, 5, 127, 1])


def test_tiny_model_runs_in_stock_ncnn(tmp_path):
    """The bin layout we write is the one ncnn's load_model reads (else load or shapes fail)."""
    import ncnn

    m = tiny_model()
    p, b = tmp_path / "t.param", tmp_path / "t.bin"
    write_model(m, str(p), str(b))
    net = ncnn.Net()
    net.opt.use_fp16_storage = net.opt.use_fp16_packed = net.opt.use_fp16_arithmetic = False
    assert net.load_param(str(p)) == 0 and net.load_model(str(b)) == 0
    x = np.random.default_rng(1).normal(size=(3, 4, 4)).astype(np.float32)
    ex = net.create_extractor()
    ex.input("in0", ncnn.Mat(x))
    ret, out = ex.extract("out0")
    assert ret == 0
    got = np.array(out)
    # numpy reference: conv 3x3 pad 1 -> reshape (4,16) -> 0.5 * A @ B^T + memorydata
    w = m.layer("conv").blob("weight").data().reshape(4, 3, 3, 3)
    bias = m.layer("conv").blob("bias").data()
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    conv = np.zeros((4, 4, 4), np.float64)
    for i in range(4):
        for j in range(4):
            conv[:, i, j] = np.tensordot(w, xp[:, i:i + 3, j:j + 3], axes=3) + bias
    a = conv.reshape(4, 16)
    bmat = m.layer("gemm").blob("B").data().reshape(5, 16)
    ref = 0.5 * a @ bmat.T + np.arange(5)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_converted_models_round_trip(body_t_dir, wholebody_t_fp16_dir, rtmdet_dir, tmp_path):
    from edgepose.quantization.calibration import quantizable_layers
    from edgepose.quantization.int8_writer import quantize_layers

    for folder in (body_t_dir, wholebody_t_fp16_dir, rtmdet_dir):
        param = next(folder.glob("*.ncnn.param"))
        binf = param.with_name(param.name.replace(".param", ".bin"))
        m = read_model(str(param), str(binf))
        assert m.param_text() == param.read_text()
        assert m.bin_bytes() == binf.read_bytes()
        # and the int8 files we write from it round-trip too
        names = [layer.name for layer in quantizable_layers(m)]
        q = quantize_layers(m, names, {n: 10.0 for n in names})
        write_model(q, str(tmp_path / "q.param"), str(tmp_path / "q.bin"))
        r = read_model(str(tmp_path / "q.param"), str(tmp_path / "q.bin"))
        assert r.param_text() == (tmp_path / "q.param").read_text()
        assert r.bin_bytes() == (tmp_path / "q.bin").read_bytes()
        assert any(b.storage == "int8" for layer in r.layers for b in layer.blobs)


# ---------------------------------------------------------------- malformed files

@pytest.fixture()
def tiny_files(tmp_path):
    p, b = tmp_path / "t.param", tmp_path / "t.bin"
    write_model(tiny_model(), str(p), str(b))
    return p, b


def _error(p, b) -> str:
    with pytest.raises(EdgeposeError) as e:
        read_model(str(p), str(b))
    return str(e.value)


def test_wrong_magic(tiny_files):
    p, b = tiny_files
    p.write_text(p.read_text().replace("7767517", "7767518", 1))
    msg = _error(p, b)
    assert str(p) in msg and "line 1" in msg and "magic" in msg


def test_bad_layer_line(tiny_files):
    p, b = tiny_files
    lines = p.read_text().splitlines()
    lines[4] = lines[4].split()[0] + " conv"            # type and name only
    p.write_text("\n".join(lines) + "\n")
    msg = _error(p, b)
    assert "line 5" in msg and "bad layer line" in msg


def test_bad_param_value(tiny_files):
    p, b = tiny_files
    p.write_text(p.read_text().replace(" 6=108", " 6=1x8"))
    msg = _error(p, b)
    assert "layer conv" in msg and "6=1x8" in msg


def test_blob_and_layer_count_mismatch(tiny_files):
    p, b = tiny_files
    text = p.read_text()
    p.write_text(text.replace("6 6\n", "6 7\n", 1))
    assert "7 blobs" in _error(p, b)
    p.write_text(text.replace("6 6\n", "5 6\n", 1))
    assert "5 layers" in _error(p, b)
    # a layer that declares more blob names than it lists
    p.write_text(text.replace("1 1 in0 c", "1 2 in0 c"))
    assert "layer conv" in _error(p, b)


def test_truncated_bin(tiny_files):
    p, b = tiny_files
    data = b.read_bytes()
    b.write_bytes(data[:-7])
    msg = _error(p, b)
    assert str(b) in msg and "layer mem" in msg and "ends early" in msg


def test_weight_size_mismatch(tiny_files):
    p, b = tiny_files
    # param says fewer weights than the bin holds: bytes left over
    p.write_text(p.read_text().replace("0=5\n", "0=4\n"))
    msg = _error(p, b)
    assert "left over" in msg and "weight sizes" in msg
    # param says more: the bin runs out inside that layer
    p.write_text(p.read_text().replace("0=4\n", "0=9\n"))
    assert "layer mem" in _error(p, b)


def test_unknown_layer_type_with_weights(tiny_files):
    p, b = tiny_files
    p.write_text(p.read_text().replace("Reshape ", "Frobnicate ", 1))
    msg = _error(p, b)
    assert "Frobnicate" in msg and "layer rs" in msg


def test_missing_files(tmp_path):
    with pytest.raises(EdgeposeError, match="cannot read ncnn param"):
        read_model(str(tmp_path / "nope.param"))


def test_parse_rejects_dangling_bottom():
    text = "7767517\n2 2\nInput in0 0 1 in0\nReLU r 1 1 x y\n"
    with pytest.raises(EdgeposeError, match="reads blob 'x'"):
        parse_param(text, "m.param")


def test_input_mat_survives_an_in_place_first_layer_in_light_mode(tmp_path):
    """ncnn.Mat(ndarray) has no reference count; ncnn's light mode reads it before an in-place
    layer. The tools feed `input_mat` copies: Input -> Scale (in place) runs and computes x * s.
    In a child process, so the segfault of the bare wrapper is observed rather than suffered."""
    import subprocess
    import sys
    import textwrap

    p = ParamDict()
    p.set(0, 3)
    p.set(1, 0)
    model = NcnnModel([Layer("Input", "in0", [], ["in0"], ParamDict()),
                       Layer("Scale", "s", ["in0"], ["out0"], p, [WeightBlob.fp32("scale", np.array([1., 2., 3.]), RAW)])],
                      2)
    write_model(model, str(tmp_path / "m.param"), str(tmp_path / "m.bin"))
    code = textwrap.dedent(f"""
        import sys, numpy as np, ncnn
        from edgepose.ncnn_io import input_mat
        net = ncnn.Net()
        net.load_param({str(tmp_path / 'm.param')!r}); net.load_model({str(tmp_path / 'm.bin')!r})
        x = np.ones((3, 4, 5), np.float32)
        mat = input_mat(x) if sys.argv[1] == "copy" else ncnn.Mat(x)
        ex = net.create_extractor(); ex.set_light_mode(True); ex.input("in0", mat)
        ret, out = ex.extract("out0")
        print(np.array(out)[:, 0, 0].tolist(), x[:, 0, 0].tolist())
    """)
    good = subprocess.run([sys.executable, "-c", code, "copy"], capture_output=True, text=True, timeout=60)
    assert good.returncode == 0, good.stderr
    assert good.stdout.split("] [")[0] == "[1.0, 2.0, 3.0"          # scaled, and the caller's array untouched
    assert good.stdout.strip().endswith("[1.0, 1.0, 1.0]")
    bare = subprocess.run([sys.executable, "-c", code, "wrap"], capture_output=True, text=True, timeout=60)
    assert bare.returncode != 0                                      # why input_mat exists (ncnn's light mode)
