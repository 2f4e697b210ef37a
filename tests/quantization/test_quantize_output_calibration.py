"""Layer simulation (numpy model of ncnn's int8 layers), output-error thresholds and bias
correction, checked against stock ncnn on tiny synthetic models."""
from __future__ import annotations

import numpy as np
import pytest

from edgepose.quantization.calibration import make_net, run_net
from edgepose.quantization.int8_writer import quantize_layers
from edgepose.quantization.layer_sim import layer_output
from edgepose.ncnn_io import RAW, Layer, NcnnModel, ParamDict, WeightBlob, read_model, write_model
from edgepose.quantization.output_calibration import apply_bias_shifts, calibrate_outputs


def _conv(name, bottom, top, cin, cout, k, rng, dw=False, stride=1, bias=True, wscale=0.3):
    p = ParamDict()
    for key, v in ((0, cout), (1, k), (11, k), (3, stride), (13, stride), (4, k // 2), (14, k // 2), (5, int(bias))):
        p.set(key, v)
    n = cout * (1 if dw else cin) * k * k
    p.set(6, n)
    if dw:
        p.set(7, cout)
    blobs = [WeightBlob.fp32("weight", rng.normal(size=n) * wscale)]
    if bias:
        blobs.append(WeightBlob.fp32("bias", rng.normal(size=cout), RAW))
    return Layer("ConvolutionDepthWise" if dw else "Convolution", name, [bottom], [top], p, blobs)


def _fc(name, bottom, top, nin, nout, rng):
    p = ParamDict()
    for key, v in ((0, nout), (1, 1), (2, nin * nout)):
        p.set(key, v)
    return Layer("InnerProduct", name, [bottom], [top], p,
                 [WeightBlob.fp32("weight", rng.normal(size=nin * nout) * 0.1),
                  WeightBlob.fp32("bias", rng.normal(size=nout), RAW)])


def _net(*layers):
    blobs = {t for layer in layers for t in layer.tops} | {"in0"}
    return NcnnModel([Layer("Input", "in0", [], ["in0"], ParamDict())] + list(layers), len(blobs))


def _save(model, tmp_path, stem):
    param, binf = str(tmp_path / f"{stem}.param"), str(tmp_path / f"{stem}.bin")
    write_model(model, param, binf)
    return param, binf


@pytest.mark.parametrize("case", ["conv3x3s1_wide", "conv3x3s2", "depthwise5x5", "innerproduct"])
def test_layer_sim_matches_stock_ncnn_int8(tmp_path, case):
    """The numpy int8 model equals what ncnn computes (8-bit weights even for 3x3 stride 1,
    on a layer wide enough for ncnn's int8 winograd path)."""
    rng = np.random.default_rng(1)
    if case == "conv3x3s1_wide":
        layer, shape = _conv("L", "in0", "out0", 32, 40, 3, rng), (32, 20, 20)
    elif case == "conv3x3s2":
        layer, shape = _conv("L", "in0", "out0", 8, 16, 3, rng, stride=2), (8, 13, 11)
    elif case == "depthwise5x5":
        layer, shape = _conv("L", "in0", "out0", 24, 24, 5, rng, dw=True), (24, 12, 12)
    else:
        layer, shape = _fc("L", "in0", "out0", 64, 10, rng), (64,)
    x = rng.uniform(-3, 3, size=shape).astype(np.float32)
    scale = 127.0 / 2.5                                      # clips part of the input
    model = _net(layer)
    param, binf = _save(quantize_layers(model, ["L"], {"L": scale}), tmp_path, "q")
    got = run_net(make_net(param, binf, int8=True), "in0", x, ["out0"])["out0"]
    sim = layer_output(layer, x, scale)
    assert np.abs(sim).max() > 1.0
    # ncnn's x86 int8 depthwise kernel is off from the exact integer result by ~1e-4 of the
    # output range (a few integer units of the accumulator); other layers match to float rounding
    atol = 2e-4 * np.abs(sim).max() if case == "depthwise5x5" else 1e-4
    np.testing.assert_allclose(got.reshape(sim.shape), sim, rtol=1e-5, atol=atol)
    # ...and that is far below the int8 error itself (the model is not trivially exact)
    assert np.abs(sim - layer_output(layer, x)).max() > 50 * atol
    fparam, fbin = _save(model, tmp_path, "f")
    ref = run_net(make_net(fparam, fbin), "in0", x, ["out0"])["out0"]
    np.testing.assert_allclose(layer_output(layer, x).reshape(ref.shape), ref, rtol=1e-5, atol=1e-4)


def _skewed_inputs(rng, n, c=8, hw=10):
    """Channel 0 spans +-40, the others 0..0.5: a per-tensor scale rounds the small channels
    to a few levels, which biases their outputs (what happens after BN folding + SiLU)."""
    xs = []
    for _ in range(n):
        x = rng.uniform(0.0, 0.5, size=(c, hw, hw)).astype(np.float32)
        x[0] = rng.uniform(-40, 40, size=(hw, hw))
        xs.append(x)
    return xs


def test_bias_correction_cancels_the_mean_shift_exactly(tmp_path):
    rng = np.random.default_rng(2)
    layer = _conv("dw", "in0", "out0", 8, 8, 3, rng, dw=True, wscale=1.0)
    model = _net(layer)
    fparam, fbin = _save(model, tmp_path, "f")
    xs = _skewed_inputs(rng, 6)
    base = {"dw": 127.0 / 40.0}
    cal = calibrate_outputs(model, [layer], fparam, fbin, "in0", xs, {"dw": 40.0}, base,
                            bias_correction=True, sequential=False)["dw"]
    assert cal.mse <= cal.base_mse + 1e-12                  # the base threshold is a candidate

    def mean_shift(m, scale):
        param, binf = _save(quantize_layers(m, ["dw"], {"dw": scale}), tmp_path, "q")
        net, ref = make_net(param, binf, int8=True), make_net(fparam, fbin)
        d = [run_net(net, "in0", x, ["out0"])["out0"] - run_net(ref, "in0", x, ["out0"])["out0"] for x in xs]
        return np.mean(np.stack(d), axis=(0, 2, 3))

    before = mean_shift(model, cal.scale)
    after = mean_shift(apply_bias_shifts(model, {"dw": cal.bias_shift}), cal.scale)
    assert np.abs(before).max() > 1e-3                       # there was a real shift to remove
    # (to within ncnn's depthwise kernel's own ~1e-4 relative deviation, see above)
    np.testing.assert_allclose(before, cal.bias_shift, rtol=0, atol=2e-3 * np.abs(before).max())
    assert np.abs(after).max() < 0.01 * np.abs(before).max()


def test_output_mse_threshold_beats_clipping_the_input_histogram(tmp_path):
    """A threshold that fits the small channels (what an input-histogram method picks when
    the big channel is rare) clips the big one; the output error picks a better one."""
    rng = np.random.default_rng(3)
    layer = _conv("c", "in0", "out0", 8, 6, 1, rng)
    model = _net(layer)
    fparam, fbin = _save(model, tmp_path, "f")
    xs = _skewed_inputs(rng, 4)
    cal = calibrate_outputs(model, [layer], fparam, fbin, "in0", xs, {"c": 40.0}, {"c": 127.0 / 0.5},
                            bias_correction=False, sequential=False)["c"]
    assert 127.0 / cal.scale > 5.0 and cal.mse < 0.1 * cal.base_mse
    assert not cal.bias_shift.any()


def test_sequential_calibration_corrects_the_network_output(tmp_path):
    """Two int8 layers calibrated in graph order: the second layer's bias shift also cancels
    the mean error arriving from the first, so the network output is unbiased vs fp32."""
    rng = np.random.default_rng(4)
    l1 = _conv("dw", "in0", "a", 8, 8, 3, rng, dw=True, wscale=1.0)
    l2 = _conv("pw", "a", "out0", 8, 5, 1, rng, bias=False)  # no bias of its own: one is added
    model = _net(l1, l2)
    fparam, fbin = _save(model, tmp_path, "f")
    xs = _skewed_inputs(rng, 5)
    ref_net = make_net(fparam, fbin)
    a = [run_net(ref_net, "in0", x, ["a"])["a"] for x in xs]
    absmax = {"dw": 40.0, "pw": float(max(np.abs(v).max() for v in a))}
    base = {n: 127.0 / v for n, v in absmax.items()}
    cal = calibrate_outputs(model, [l1, l2], fparam, fbin, "in0", xs, absmax, base,
                            bias_correction=True, sequential=True)
    corrected = apply_bias_shifts(model, {n: c.bias_shift for n, c in cal.items()})
    assert corrected.layer("pw").params.get(5) == 1 and corrected.layer("pw").blob("bias") is not None
    scales = {n: c.scale for n, c in cal.items()}

    def out_shift(m):
        param, binf = _save(quantize_layers(m, ["dw", "pw"], scales), tmp_path, "q")
        net = make_net(param, binf, int8=True)
        d = [run_net(net, "in0", x, ["out0"])["out0"] - run_net(ref_net, "in0", x, ["out0"])["out0"] for x in xs]
        return np.mean(np.stack(d), axis=(0, 2, 3))

    before, after = out_shift(model), out_shift(corrected)
    assert np.abs(after).max() < 1e-3 + 0.05 * np.abs(before).max()
    assert np.abs(before).max() > 1e-3
    # the corrected model round-trips through the writer/reader
    param, binf = _save(corrected, tmp_path, "c")
    again = read_model(param, binf)
    np.testing.assert_array_equal(again.layer("pw").blob("bias").to_float(), corrected.layer("pw").blob("bias").to_float())


def _rtmdet_outputs(rng, people, size=64):
    """Raw RTMDet heads (person logits, l/t/r/b distances in stride units) with a confident
    anchor at each (x, y, half-size) of `people`."""
    out = {}
    for s in (8, 16, 32):
        n = size // s
        cls = np.full((1, n, n), -8.0, np.float32) + rng.normal(scale=0.1, size=(1, n, n)).astype(np.float32)
        box = np.ones((4, n, n), np.float32)
        for x, y, half in people:
            if s == 8:
                cls[0, y // s, x // s] = 4.0
                box[:, y // s, x // s] = half / s
        out[f"cls_{s}"], out[f"box_{s}"] = cls, box
    return out


def test_pseudo_label_ap_follows_box_quality():
    from edgepose.model_meta import ModelMeta
    from edgepose.quantization.sensitivity import compare_outputs, pseudo_label_ap

    roles = {f"{k}_{s}": f"{k}_{s}" for k in ("cls", "box") for s in (8, 16, 32)}
    meta = ModelMeta(name="d", task="detect", param="d.param", bin="d.bin", input_blob="in0",
                     input_width=64, input_height=64, output_blobs=roles)
    rng = np.random.default_rng(7)
    ref = [_rtmdet_outputs(rng, [(20, 20, 12), (44, 40, 10)]), _rtmdet_outputs(rng, [(30, 30, 14)])]
    assert pseudo_label_ap(meta, ref, ref) == pytest.approx(1.0)
    shifted = [{k: v.copy() for k, v in r.items()} for r in ref]
    for r in shifted:
        r["box_8"] *= 1.3                                   # every box 30% too large
    missed = [{k: v.copy() for k, v in r.items()} for r in ref]
    missed[0]["cls_8"][:] = -8.0                            # the first image's people are lost
    ap_shift, ap_miss = pseudo_label_ap(meta, ref, shifted), pseudo_label_ap(meta, ref, missed)
    assert ap_shift < 0.8 and ap_miss < 0.8
    assert compare_outputs(meta, ref, shifted).primary == pytest.approx(ap_shift)
    nobody = [_rtmdet_outputs(rng, [])]
    assert pseudo_label_ap(meta, nobody, nobody) is None    # nothing to score against
