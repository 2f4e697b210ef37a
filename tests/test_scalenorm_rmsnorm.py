"""ScaleNorm -> RMSNorm rewrite: same function, fewer layers, no fp16-overflowing reduction."""
import numpy as np

from convert.scalenorm_rmsnorm import find_scalenorms, rewrite
from quantization.ncnn_io import parse_param, write_model

# A ScaleNorm as pnnx writes it (x: [rows, d]; a third Split branch feeds a shortcut).
PARAM = """Input            in0      0 1 x
Split            split0   1 3 x a b c
Reduction        norm_1   1 1 b n 0=8 1=0 -23303=1,1 4=1 5=1
BinaryOp         mul_1    1 1 n ns 0=2 1=1 2={scale}
Clip             clamp_1  1 1 ns nc 0=1.000000e-5 1=3.40282347e38
BinaryOp         div_1    2 1 a nc y 0=3
BinaryOp         mul_2    1 1 y out0 0=2 1=1 2={gain}
BinaryOp         add_1    1 1 c out1 0=0 1=1 2=1.0
"""


def with_header(body: str) -> str:
    """Prefix the magic and the layer/blob counts ncnn's reader checks."""
    lines = [l for l in body.splitlines() if l.strip()]
    tops = set()
    for l in lines:
        tok = l.split()
        nb, nt = int(tok[2]), int(tok[3])
        tops.update(tok[4 + nb:4 + nb + nt])
    return f"7767517\n{len(lines)} {len(tops)}\n" + "\n".join(lines) + "\n"


def scalenorm(x, g, eps=1e-5):
    norm = np.linalg.norm(x.astype(np.float64), axis=-1, keepdims=True) * x.shape[-1] ** -0.5
    return g * x / np.maximum(norm, eps)


def run(param_path, bin_path, x):
    import ncnn
    net = ncnn.Net()
    net.opt.use_fp16_storage = net.opt.use_fp16_packed = net.opt.use_fp16_arithmetic = False
    assert net.load_param(str(param_path)) == 0 and net.load_model(str(bin_path)) == 0
    ex = net.create_extractor()
    # clone: ncnn runs in-place layers on an owned Mat; a Mat borrowing numpy memory has
    # no refcount, and an in-place layer straight on the input would dereference it.
    ex.input("x", ncnn.Mat(x).clone())
    outs = []
    for blob in ("out0", "out1"):
        ret, m = ex.extract(blob)
        assert ret == 0
        outs.append(np.array(m))
    return outs


def test_rewrite_is_the_same_function(tmp_path):
    d, gain = 48, 0.98263365
    model = parse_param(with_header(PARAM.format(scale=d ** -0.5, gain=gain)))
    assert [h["dim"] for h in find_scalenorms(model)] == [d]
    assert rewrite(model) == ["rmsnorm_1"]
    types = [l.type for l in model.layers]
    assert "Reduction" not in types and "Clip" not in types and types.count("RMSNorm") == 1
    split = next(l for l in model.layers if l.type == "Split")
    assert len(split.tops) == 2                      # shortcut branch kept, norm branch reads x
    write_model(model, tmp_path / "m.param", tmp_path / "m.bin")
    rng = np.random.RandomState(0)
    # Activations of a few hundred: their squares summed over 48 channels exceed fp16's 65504.
    x = (rng.randn(17, d) * 300).astype(np.float32)
    x[3] = 0.0                                       # an all-zero row stays zero (no 0/0)
    y, shortcut = run(tmp_path / "m.param", tmp_path / "m.bin", x)
    assert np.abs(y - scalenorm(x, gain)).max() < 1e-5 * np.abs(scalenorm(x, gain)).max()
    assert np.all(y[3] == 0)
    assert np.array_equal(shortcut, x + 1.0)


def test_other_reductions_are_left_alone():
    # An L2 reduction over the wrong axis, or without the Clip/div chain, is not a ScaleNorm.
    text = PARAM.format(scale=48 ** -0.5, gain=1.0).replace("-23303=1,1", "-23303=1,0")
    assert find_scalenorms(parse_param(with_header(text))) == []
    text = PARAM.format(scale=48 ** -0.5, gain=1.0).replace("0=3\n", "0=2\n")
    assert find_scalenorms(parse_param(with_header(text))) == []


def test_missing_gain_still_rewrites(tmp_path):
    # A ScaleNorm without the trailing multiply (g == 1 folded away) still maps: gamma = 1.
    text = PARAM.format(scale=16 ** -0.5, gain=1.0)
    lines = [l for l in text.splitlines() if not l.startswith("BinaryOp         mul_2")]
    text = "\n".join(lines).replace("div_1    2 1 a nc y", "div_1    2 1 a nc out0")
    model = parse_param(with_header(text))
    assert rewrite(model) == ["rmsnorm_1"]
    write_model(model, tmp_path / "m.param", tmp_path / "m.bin")
    x = np.random.RandomState(1).randn(5, 16).astype(np.float32)
    y, _ = run(tmp_path / "m.param", tmp_path / "m.bin", x)
    assert np.allclose(y, scalenorm(x, 1.0), rtol=1e-5, atol=1e-6)
