"""Thresholds (KL as ncnn2table, ACIQ, percentile, MSE), weight scales, and the int8 layers
we write running in stock ncnn exactly as ncnn's int8 arithmetic says they should."""
from __future__ import annotations

import math

import numpy as np
import pytest

from edgepose.quantization import thresholds as th
from edgepose.ncnn_io import RAW, Layer, NcnnModel, ParamDict, WeightBlob, read_model, write_model


def kl_reference(hist, num_bins, target_bin=128):
    """Straight scalar transcription of ncnn2table's KL search (loops as in the C++)."""
    h = np.asarray(hist, np.float64) / np.sum(hist)
    best_t, best = target_bin, math.inf
    for t in range(target_bin, num_bins):
        eps = 1e-4
        clip = [eps + h[j] for j in range(t)]
        clip[t - 1] += h[t:].sum()
        per = t / target_bin
        q = [0.0] * target_bin
        end = per
        rl = int(math.floor(end)); rs = end - rl
        if rs > 0:
            q[0] += rs * h[rl]
        q[0] += h[:rl].sum()
        q[0] /= rl + rs
        for j in range(1, target_bin - 1):
            s, e = j * per, (j + 1) * per
            lu = int(math.ceil(s)); ls = lu - s
            rl = int(math.floor(e)); rs = e - rl
            if ls > 0:
                q[j] += ls * h[lu - 1]
            if rs > 0:
                q[j] += rs * h[rl]
            q[j] += h[lu:rl].sum()
            q[j] /= rl - lu + ls + rs
        s = t - per
        lu = int(math.ceil(s)); ls = lu - s
        if ls > 0:
            q[-1] += ls * h[lu - 1]
        q[-1] += h[lu:t].sum()
        q[-1] /= t - lu + ls
        ex = [eps] * t
        rl = int(math.floor(per)); rs = per - rl
        if rs > 0:
            ex[rl] += rs * q[0]
        for k in range(rl):
            ex[k] += q[0]
        for j in range(1, target_bin - 1):
            s, e = j * per, (j + 1) * per
            lu = int(math.ceil(s)); ls = lu - s
            rl = int(math.floor(e)); rs = e - rl
            if ls > 0:
                ex[lu - 1] += ls * q[j]
            if rs > 0:
                ex[rl] += rs * q[j]
            for k in range(lu, rl):
                ex[k] += q[j]
        s = t - per
        lu = int(math.ceil(s)); ls = lu - s
        if ls > 0:
            ex[lu - 1] += ls * q[-1]
        for k in range(lu, t):
            ex[k] += q[-1]
        kl = sum(c * math.log(c / e) for c, e in zip(clip, ex))
        if kl < best:
            best, best_t = kl, t
    return best_t


@pytest.mark.parametrize("seed", [0, 1])
def test_kl_matches_ncnn2table_loops(seed):
    rng = np.random.default_rng(seed)
    x = np.abs(rng.laplace(size=20000) if seed else rng.standard_t(3, size=20000))
    bins = 384
    hist = np.histogram(x, bins=bins, range=(0, x.max()))[0]
    assert th.kl_threshold_bin(hist, num_bins=bins) == kl_reference(hist, bins)


def test_threshold_methods_clip_outliers():
    rng = np.random.default_rng(0)
    x = np.abs(rng.normal(size=200000))
    x[:5] = 40.0                                      # a few far outliers
    absmax = float(x.max())
    hist = np.histogram(x, bins=th.NUM_BINS, range=(0, absmax))[0]
    for method in ("kl", "percentile"):
        scale = th.activation_scale(method, hist, absmax, x.size)
        t = 127.0 / scale
        assert 2.0 < t < 20.0, (method, t)         # clipped well below the outlier, above the bulk
    # MSE weighs the few outliers' clipping error honestly; for Laplace(b=1) data the
    # 8-bit MSE-optimal clip is known analytically: about 9.89 b (Banner et al., ACIQ)
    lap = np.abs(rng.laplace(size=200000))
    lap_hist = np.histogram(lap, bins=th.NUM_BINS, range=(0, lap.max()))[0]
    t_mse = th.mse_threshold(lap_hist, float(lap.max()))
    assert t_mse == pytest.approx(9.89, rel=0.1) and t_mse < lap.max()
    # ACIQ (as ncnn2table) estimates the Gaussian std from absmax and N, so only clips to a fraction
    t = 127.0 / th.activation_scale("aciq", hist, absmax, x.size)
    std = absmax * 2 * (0.5 * 0.35) * (1 + math.sqrt(math.pi * math.log(4))) / math.sqrt(2 * math.log(x.size))
    assert t == pytest.approx(3.92403714 * std) and t < absmax
    assert th.activation_scale("kl", np.zeros(th.NUM_BINS), 0.0, 10) == 1.0
    with pytest.raises(ValueError):
        th.activation_scale("nope", hist, absmax, x.size)


def test_weight_scales_and_rounding():
    w = np.array([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0]], np.float32)
    s = th.weight_scales(w, 2)
    np.testing.assert_allclose(s, [127.0, 1.0])
    np.testing.assert_array_equal(th.float2int8(np.array([0.5, -0.5, 1.49, 200, -200, 2.5])),
                                  [1, -1, 1, 127, -127, 3])


def _conv_layer(name, bottom, top, cin, cout, k, rng, dw=False, stride=1):
    p = ParamDict()
    for key, v in ((0, cout), (1, k), (11, k), (3, stride), (13, stride), (4, k // 2), (14, k // 2), (5, 1)):
        p.set(key, v)
    n = cout * (1 if dw else cin) * k * k
    p.set(6, n)
    if dw:
        p.set(7, cout)
    return Layer("ConvolutionDepthWise" if dw else "Convolution", name, [bottom], [top], p,
                 [WeightBlob.fp32("weight", rng.normal(size=n) * 0.3), WeightBlob.fp32("bias", rng.normal(size=cout), RAW)])


def _small_net():
    rng = np.random.default_rng(3)
    ip = ParamDict()
    for key, v in ((0, 6), (1, 1), (2, 6 * 8 * 4 * 4)):
        ip.set(key, v)
    layers = [Layer("Input", "in0", [], ["in0"], ParamDict()),
              _conv_layer("c1", "in0", "a", 3, 8, 3, rng, stride=2),
              _conv_layer("c2", "a", "b", 8, 8, 3, rng, dw=True),
              _conv_layer("c3", "b", "c", 8, 8, 1, rng),
              Layer("InnerProduct", "fc", ["c"], ["out0"], ip,
                    [WeightBlob.fp32("weight", rng.normal(size=6 * 128) * 0.1),
                     WeightBlob.fp32("bias", rng.normal(size=6), RAW)])]
    return NcnnModel(layers, 5)


def _run(param, binf, x, blob, int8):
    from edgepose.quantization.calibration import make_net, run_net
    return run_net(make_net(param, binf, int8=int8), "in0", x, [blob])[blob]


def test_int8_conv_matches_ncnn_int8_arithmetic(tmp_path):
    """One int8 conv: ncnn must give dequant(sum(q(x * s_in) * q(w * s_w))) + bias."""
    from edgepose.quantization.int8_writer import quantize_layers

    m = _small_net()
    x = np.random.default_rng(4).uniform(-2, 2, size=(3, 8, 8)).astype(np.float32)
    s_in = 127.0 / 2.0
    q = quantize_layers(m, ["c1"], {"c1": s_in})
    write_model(q, str(tmp_path / "q.param"), str(tmp_path / "q.bin"))
    got = _run(str(tmp_path / "q.param"), str(tmp_path / "q.bin"), x, "a", True)
    layer = read_model(str(tmp_path / "q.param"), str(tmp_path / "q.bin")).layer("c1")
    assert layer.params.get(8) == 2 and layer.blob("weight").storage == "int8"
    qw = layer.blob("weight").data().astype(np.int64).reshape(8, 3, 3, 3)
    sw = layer.blob("weight_int8_scales").data()
    assert layer.blob("bottom_int8_scales").data()[0] == np.float32(s_in)
    qx = np.pad(th.float2int8(x * np.float32(s_in)).astype(np.int64), ((0, 0), (1, 1), (1, 1)))
    bias = layer.blob("bias").data()
    ref = np.zeros((8, 4, 4))
    for i in range(4):
        for j in range(4):
            acc = np.tensordot(qw, qx[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3], axes=3)
            ref[:, i, j] = acc / (s_in * sw) + bias
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)


def test_all_layers_int8_in_stock_ncnn(tmp_path):
    from edgepose.quantization.int8_writer import quantize_layers

    m = _small_net()
    write_model(m, str(tmp_path / "f.param"), str(tmp_path / "f.bin"))
    x = np.random.default_rng(5).uniform(0, 1, size=(3, 8, 8)).astype(np.float32)
    ref = _run(str(tmp_path / "f.param"), str(tmp_path / "f.bin"), x, "out0", False)
    scales = {"c1": 127.0, "c2": 127.0 / 6, "c3": 127.0 / 6, "fc": 127.0 / 6}
    q = quantize_layers(m, list(scales), scales)
    write_model(q, str(tmp_path / "q.param"), str(tmp_path / "q.bin"))
    got = _run(str(tmp_path / "q.param"), str(tmp_path / "q.bin"), x, "out0", True)
    assert not np.array_equal(got, ref)                       # int8 really ran
    cos = float(got.ravel() @ ref.ravel() / np.linalg.norm(got) / np.linalg.norm(ref))
    assert cos > 0.99
    r = read_model(str(tmp_path / "q.param"), str(tmp_path / "q.bin"))
    assert r.layer("c2").params.get(8) == 1 and r.layer("c2").blob("weight_int8_scales").count == 8
    assert r.layer("fc").params.get(8) == 2


def test_sensitivity_and_mixed_precision_keep_the_damaging_layer_float(tmp_path):
    from edgepose.model_meta import ModelMeta
    from edgepose.quantization.mixed_precision import choose_float_layers, rank_layers
    from edgepose.quantization.sensitivity import Evaluator, layer_sensitivity

    m = _small_net()
    write_model(m, str(tmp_path / "f.param"), str(tmp_path / "f.bin"))
    meta = ModelMeta(name="t", task="detect", param="f.param", bin="f.bin", input_blob="in0",
                     input_width=8, input_height=8, output_blobs={"out": "out0"})
    rng = np.random.default_rng(6)
    inputs = [rng.uniform(0, 1, size=(3, 8, 8)).astype(np.float32) for _ in range(4)]
    # c3's input scale clips everything above 0.05: the layer that ruins the output
    scales = {"c1": 127.0, "c2": 127.0 / 6, "c3": 127.0 / 0.05, "fc": 127.0 / 6}
    ev = Evaluator(meta, str(tmp_path / "f.param"), str(tmp_path / "f.bin"), inputs)
    try:
        sens = layer_sensitivity(ev, m, list(scales), scales)
        assert rank_layers(sens)[0] == "c3"
        assert sens["c3"].primary < 0.95 < min(sens[n].primary for n in ("c1", "c2", "fc"))
        res = choose_float_layers(ev, m, list(scales), scales, sens, target=0.99)
        assert res.reached and res.float_layers[0] == "c3" and res.score.primary >= 0.99
        assert len(res.float_layers) < len(scales)
        assert dict(res.history)[0] < 0.99                  # all-int8 missed the target
    finally:
        ev.close()
