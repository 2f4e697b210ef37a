"""Per-channel input equalization (quantization/channel_equalization.py): exact in float, evens a
depthwise input's channel ranges, lowers the real ncnn int8 layer's error, undone for float layers."""
from __future__ import annotations

import numpy as np
import pytest

from edgepose.ncnn_io import RAW, Layer, NcnnModel, ParamDict, WeightBlob, read_model, write_model


def _conv(name, bottom, top, cin, cout, k, rng, dw=False, out_spread=None):
    p = ParamDict()
    for key, v in ((0, cout), (1, k), (11, k), (4, k // 2), (14, k // 2), (5, 1)):
        p.set(key, v)
    n = cout * (1 if dw else cin) * k * k
    p.set(6, n)
    if dw:
        p.set(7, cout)
    w = rng.normal(size=(cout, n // cout)) * 0.3
    if out_spread is not None:
        w *= out_spread[:, None]
    return Layer("ConvolutionDepthWise" if dw else "Convolution", name, [bottom], [top], p,
                 [WeightBlob.fp32("weight", w.ravel()), WeightBlob.fp32("bias", rng.normal(size=cout) * 0.1, RAW)])


def _net(tail_dense: bool = True) -> NcnnModel:
    """in0 -> a (3->16, output channels 100x apart) -> Swish -> b (depthwise 3x3) [-> Swish -> c (1x1)]."""
    rng = np.random.default_rng(3)
    spread = np.exp(rng.uniform(-2.3, 2.3, size=16))
    layers = [Layer("Input", "in0", [], ["in0"], ParamDict()),
              _conv("a", "in0", "xa", 3, 16, 3, rng, out_spread=spread),
              Layer("Swish", "sa", ["xa"], ["ya"], ParamDict())]
    if tail_dense:
        layers += [_conv("b", "ya", "xb", 16, 16, 3, rng, dw=True), Layer("Swish", "sb", ["xb"], ["yb"], ParamDict()),
                   _conv("c", "yb", "out0", 16, 8, 1, rng)]
    else:
        layers += [_conv("b", "ya", "out0", 16, 16, 3, rng, dw=True)]
    return NcnnModel(layers, len(layers))


def _inputs(n=4, seed=5):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(3, 20, 20)).astype(np.float32) * 2 for _ in range(n)]


def _files(model, tmp_path, tag):
    param, binf = str(tmp_path / f"{tag}.param"), str(tmp_path / f"{tag}.bin")
    write_model(model, param, binf)
    return param, binf


def _run(model, tmp_path, tag, x, blobs=("out0",), int8=False):
    from edgepose.quantization.calibration import make_net, run_net
    net = make_net(*_files(model, tmp_path, tag), int8=int8)
    return run_net(net, "in0", x, list(blobs), light=False)


def _ranges(model, tmp_path, names, xs):
    from edgepose.quantization.channel_equalization import channel_ranges
    return channel_ranges(*_files(model, tmp_path, "ranges"), "in0", [model.layer(n) for n in names], xs)


def test_equalization_is_exact_in_float_and_evens_the_depthwise_input(tmp_path):
    from edgepose.quantization.channel_equalization import equalize_inputs

    model, xs = _net(), _inputs()
    ranges = _ranges(model, tmp_path, ["b", "c"], xs)
    assert ranges["b"].max() / ranges["b"].min() > 10             # the problem: one scale for 10x+ apart channels
    eq, report = equalize_inputs(model, ranges, dense_alpha=0.5)
    assert [l.name for l in eq.layers] == ["in0", "a", "sa", "b_eq", "b", "sb", "c_eq", "c"]
    assert eq.layer("b").bottoms == ["b_eq"] and eq.layer("b_eq").type == "Scale"
    for x in xs:
        ref = _run(model, tmp_path, "ref", x)["out0"]
        got = _run(eq, tmp_path, "eq", x, ("out0", "b_eq"))
        np.testing.assert_allclose(got["out0"], ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    # every channel of the depthwise conv's new input reaches the same range R over the inputs
    top = np.zeros(16)
    for x in xs:
        v = _run(eq, tmp_path, "eq", x, ("b_eq",))["b_eq"]
        top = np.maximum(top, np.abs(v.reshape(16, -1)).max(axis=1))
    np.testing.assert_allclose(top, ranges["b"].max(), rtol=1e-5)
    assert report["b"].spread_after == pytest.approx(1.0, rel=1e-6) and report["b"].spread_before > 10
    # the dense conv's input is evened part way (alpha 0.5 shares the spread with its weights)
    assert 1.0 < report["c"].spread_after < report["c"].spread_before


def test_int8_depthwise_error_drops_with_equalization_in_stock_ncnn(tmp_path):
    """The real ncnn int8 depthwise layer, one input scale (127 / absmax) each way."""
    from edgepose.quantization.channel_equalization import equalize_inputs
    from edgepose.quantization.int8_writer import quantize_layers

    model, xs = _net(tail_dense=False), _inputs(6)
    ranges = _ranges(model, tmp_path, ["b"], xs)
    eq, _ = equalize_inputs(model, ranges)
    errors = {}
    for tag, m, blob in (("plain", model, "ya"), ("equalized", eq, "b_eq")):
        absmax = max(float(np.abs(_run(m, tmp_path, tag, x, (blob,))[blob]).max()) for x in xs)
        q = quantize_layers(m, ["b"], {"b": 127.0 / absmax})
        assert q.layer("b").params.get(8) == 1
        err = 0.0
        for x in xs:
            ref = _run(model, tmp_path, "ref", x)["out0"]
            err += float(np.mean((_run(q, tmp_path, tag + "8", x, int8=True)["out0"] - ref) ** 2))
        errors[tag] = err
    assert errors["equalized"] < errors["plain"] / 4, errors


def test_undo_restores_the_float_model(tmp_path):
    from edgepose.quantization.channel_equalization import equalize_inputs, undo

    model, xs = _net(), _inputs(2)
    eq, report = equalize_inputs(model, _ranges(model, tmp_path, ["b", "c"], xs))
    back = undo(eq, report, ["b"])
    assert [l.name for l in back.layers] == ["in0", "a", "sa", "b", "sb", "c_eq", "c"]
    assert back.layer("b").param_line() == model.layer("b").param_line()
    np.testing.assert_allclose(back.layer("b").blob("weight").to_float(), model.layer("b").blob("weight").to_float(),
                               rtol=1e-6)
    full = undo(back, report, ["c"])
    assert full.param_text() == model.param_text()
    read_model(*_files(full, tmp_path, "full"))                     # a well-formed graph (counts, blobs)
    # an int8 layer's equalization cannot be undone: its weights are no longer float
    from edgepose.quantization.int8_writer import quantize_layers
    with pytest.raises(ValueError, match="int8"):
        undo(quantize_layers(eq, ["b"], {"b": 1.0}), report, ["b"])


def test_channel_scales_limits():
    from edgepose.quantization.channel_equalization import MAX_SCALE, MIN_WEIGHT, channel_scales

    r = np.array([4.0, 1.0, 0.0, 1e-9, 2.0])
    wr = np.array([1.0, 1.0, 1.0, 1.0, 1.5e-5])
    s = channel_scales(r, wr)
    assert s[0] == 1.0 and s[1] == 4.0                      # the widest channel sets R; others reach it
    assert s[2] == 1.0                                      # a channel that is always 0: untouched
    assert s[3] == MAX_SCALE                                # an almost dead one: capped
    assert s[4] == pytest.approx(1.5e-5 / MIN_WEIGHT) and s[4] < 2.0  # never a filter under MIN_WEIGHT (not R/r = 2)
    # alpha < 1: half the spread goes to the weights; the widest scaled input still spans R
    s = channel_scales(np.array([4.0, 1.0]), np.array([1.0, 1.0]), alpha=0.5)
    assert s[1] / s[0] == pytest.approx(2.0) and (np.array([4.0, 1.0]) * s).max() == pytest.approx(4.0)


def test_speed_timing_charges_the_equalizing_scale_to_int8(tmp_path):
    """time_layers prices an equalized depthwise layer's int8 run with its Scale: the one-layer
    int8 net holds the Scale, stock ncnn runs it, and it computes what the bare layer does."""
    from edgepose.quantization import speed
    from edgepose.quantization.calibration import make_net, run_net
    from edgepose.quantization.int8_writer import quantize_layer

    layer = _net(tail_dense=False).layer("b")
    seen = []

    def factory(model, int8, inp, out, x, threads, tmp, tag):
        seen.append((int8, [l.type for l in model.layers]))
        return lambda: None
    speed.time_layers(None, [layer], {"b": (16, 10, 10)}, {}, runner_factory=factory, slices=1,
                      scaled_in_int8=["b"])
    assert seen == [(False, ["Input", "ConvolutionDepthWise"]), (True, ["Input", "Scale", "ConvolutionDepthWise"])]
    x = np.random.default_rng(0).normal(size=(16, 10, 10)).astype(np.float32)
    outs = []
    for tag, scaled in (("bare", False), ("scaled", True)):
        m = speed.single_layer_model(quantize_layer(layer, 20.0), (16, 10, 10), scale_first=scaled)
        net = make_net(*_files(m, tmp_path, tag), int8=True)
        outs.append(run_net(net, "in", x, ["out"])["out"])
    np.testing.assert_array_equal(outs[0], outs[1])
