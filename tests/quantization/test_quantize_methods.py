"""Issue 15 methods: cross-layer equalization, learned weight rounding, precision by measured
speed (fake timer), mixed models accepted as int8, compare's official AP threshold."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from edgepose.ncnn_io import RAW, Layer, NcnnModel, ParamDict, WeightBlob, read_model, write_model


def _conv(name, bottom, top, cin, cout, k, rng, dw=False, spread=None):
    p = ParamDict()
    for key, v in ((0, cout), (1, k), (11, k), (4, k // 2), (14, k // 2), (5, 1)):
        p.set(key, v)
    n = cout * (1 if dw else cin) * k * k
    p.set(6, n)
    if dw:
        p.set(7, cout)
    w = rng.normal(size=(cout, n // cout)) * 0.3
    if spread is not None:              # very different ranges per output channel: what CLE evens out
        w *= spread[:, None]
    return Layer("ConvolutionDepthWise" if dw else "Convolution", name, [bottom], [top], p,
                 [WeightBlob.fp32("weight", w.ravel()), WeightBlob.fp32("bias", rng.normal(size=cout), RAW)])


def _act(kind, name, bottom, top):
    return Layer(kind, name, [bottom], [top], ParamDict())


def _pair_net(between: str, dw: bool):
    rng = np.random.default_rng(7)
    spread = np.exp(rng.uniform(-3, 3, size=8))
    layers = [Layer("Input", "in0", [], ["in0"], ParamDict()),
              _conv("a", "in0", "x", 3, 8, 3, rng, spread=spread)]
    bottom = "x"
    if between:
        layers.append(_act(between, "act", "x", "y"))
        bottom = "y"
    layers.append(_conv("b", bottom, "out0", 8, 8, 3 if dw else 1, rng, dw=dw))
    return NcnnModel(layers, len(layers))


def _forward(model, tmp_path, tag, x):
    from edgepose.quantization.calibration import make_net, run_net
    param, binf = str(tmp_path / f"{tag}.param"), str(tmp_path / f"{tag}.bin")
    write_model(model, param, binf)
    return run_net(make_net(param, binf), "in0", x, ["out0"])["out0"]


@pytest.mark.parametrize("between,dw", [("", False), ("ReLU", False), ("ReLU", True)])
def test_cle_preserves_the_float_function_and_evens_ranges(tmp_path, between, dw):
    from edgepose.quantization.cle import equalize, find_pairs

    model = _pair_net(between, dw)
    assert [(p.a, p.b) for p in find_pairs(model)] == [("a", "b")]
    eq, report = equalize(model)
    x = np.random.default_rng(1).normal(size=(3, 12, 12)).astype(np.float32) * 50
    ref, got = _forward(model, tmp_path, "ref", x), _forward(eq, tmp_path, "eq", x)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    r = report["pairs"]["a->b"]
    assert r["after"]["a_range_spread"] < r["before"]["a_range_spread"] / 10
    wa = eq.layer("a").blob("weight").to_float()
    assert not np.allclose(wa, model.layer("a").blob("weight").to_float())


def test_cle_refuses_pairs_with_silu_between():
    """SiLU is not positively homogeneous: scaling through it would change the function."""
    from edgepose.quantization.cle import equalize, find_pairs

    model = _pair_net("Swish", False)
    assert find_pairs(model) == []
    eq, report = equalize(model)
    assert report["pairs"] == {}
    assert eq.layer("a").blob("weight").raw == model.layer("a").blob("weight").raw


@pytest.mark.slow
def test_adaround_lowers_output_error_on_real_calibration_data(rtmdet_dir, shared):
    """On RTMDet-nano and real calibration images, the learned rounding gives a lower int8
    output error than nearest rounding, on inputs it was NOT fitted on."""
    from edgepose.model_meta import ModelMeta, find_model
    from edgepose.quantization import calib_data
    from edgepose.quantization.adaround import collect_columns, learn_rounding
    from edgepose.quantization.calibration import collect_stats
    from edgepose.quantization.thresholds import activation_scale, float2int8, weight_scales

    jp = find_model(str(rtmdet_dir))
    meta = ModelMeta.load(jp)
    param, binf = meta.param_path(jp), meta.bin_path(jp)
    model = read_model(param, binf)
    images = calib_data.list_images([str(shared / "data" / "calib_openpose_media")])[:8]
    inputs = [calib_data.to_chw(x) for x in calib_data.detector_inputs(images, (320, 320), "rtmdet", 114,
                                                                         lambda it, d: it)]
    fit, held = inputs[:6], inputs[6:]
    layers = [model.layer("convdw_214"), model.layer("conv_144")]
    stats = collect_stats(param, binf, meta.input_blob, [l.bottoms[0] for l in layers], fit)
    for layer in layers:
        s = stats[layer.bottoms[0]]
        scale = activation_scale("kl", s.hist, s.absmax, s.count)
        cols = collect_columns(param, binf, meta.input_blob, [layer], fit, 1024)[layer.name]
        res = learn_rounding(layer, cols, scale, iterations=300)
        assert res.learned_mse < res.nearest_mse
        assert res.flipped > 0
        # held-out columns: the learned integers still beat nearest
        hcols = collect_columns(param, binf, meta.input_blob, [layer], held, 1024, seed=5)[layer.name]
        w = layer.blob("weight").to_float()
        n = w.size // hcols.shape[1] // hcols.shape[0]
        g = hcols.shape[0]
        groups = layer.params.get(7, 1) if layer.type == "ConvolutionDepthWise" else layer.params.get(0, 0)
        ws = np.repeat(weight_scales(w, groups), layer.params.get(0, 0) // groups)
        near = float2int8(w.reshape(layer.params.get(0, 0), -1) * ws[:, None]) / ws[:, None]
        learned = res.weight.reshape(near.shape)
        assert np.all(np.abs(learned * ws[:, None] - np.round(learned * ws[:, None])) < 1e-3)   # on the grid
        xq = float2int8(hcols * scale).astype(np.float32) / scale
        ref = np.einsum("gok,gkn->gon", w.reshape(g, n, -1), hcols)

        def err(wq):
            return float(np.mean((np.einsum("gok,gkn->gon", wq.reshape(g, n, -1), xq) - ref) ** 2))
        assert err(learned) < err(near)


class _FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_speed_selection_keeps_int8_only_where_faster_with_a_fake_timer():
    from edgepose.quantization import speed

    clock = _FakeClock()
    cost = {("fast", False): 1.0, ("fast", True): 0.5, ("slow", False): 1.0, ("slow", True): 1.4,
            ("even", False): 1.0, ("even", True): 0.99}
    calls = []

    def factory(model, int8, inp, out, x, threads, tmp, tag):
        name = model.layers[1].name
        assert model.layers[0].type == "Input" and model.layers[1].bottoms == ["in"]
        assert (model.layers[1].params.get(8, 0) != 0) == int8          # the int8 net holds the int8 layer

        def run():
            calls.append((name, int8))
            clock.t += cost[(name, int8)] * 1e-3
        return run

    rng = np.random.default_rng(0)
    layers = [_conv(n, "x", "y", 4, 4, 1, rng) for n in ("fast", "slow", "even")]
    speeds = speed.time_layers(NcnnModel(layers, 2), layers, {l.name: (4, 6, 6) for l in layers}, {},
                               timer=clock, runner_factory=factory, slices=5)
    assert speeds["fast"].ratio == pytest.approx(0.5)
    assert speeds["slow"].ratio == pytest.approx(1.4)
    fast, slow = speed.split_by_speed(speeds)
    assert fast == ["fast"] and slow == ["slow", "even"]          # 1% faster is within the margin
    # interleaved: float and int8 slices alternate for each layer
    seq = [c for c in calls if c[0] == "fast"]
    assert {c[1] for c in seq[:40]} == {False, True}


def test_interleaved_medians_ignore_a_load_spike():
    from edgepose.quantization.speed import interleaved_medians

    clock = _FakeClock()
    n = {"a": 0}

    def a():
        n["a"] += 1
        clock.t += 5e-3 if n["a"] == 4 else 1e-3            # one slice hit by a load burst

    def b():
        clock.t += 2e-3
    ta, tb = interleaved_medians([a, b], slices=7, slice_seconds=0.0, timer=clock)
    assert ta == pytest.approx(1e-3) and tb == pytest.approx(2e-3)


def test_int8_precision_accepts_a_mixed_model(rtmdet_dir, tmp_path):
    """A folder holding only a mixed model loads with precision="int8"; the model names its
    real precision (what the run summary prints)."""
    from edgepose.model_meta import ModelMeta, find_model
    from edgepose.runtime.detector import Detector

    src = find_model(str(rtmdet_dir))
    meta = ModelMeta.load(src)
    folder = tmp_path / "det-mixed"
    folder.mkdir()
    for f in (meta.param, meta.bin):
        shutil.copy(os.path.join(os.path.dirname(src), f), folder / f)
    data = json.loads(open(src).read())
    data["precision"] = "mixed"
    (folder / os.path.basename(src)).write_text(json.dumps(data))
    assert find_model(str(folder), "int8") == str(folder / os.path.basename(src))
    det = Detector(str(folder), precision="int8", threads=1)
    assert det.model.precision == "mixed"


def test_compare_scores_box_ap_at_the_config_test_threshold(rtmdet_dir, shared):
    from edgepose.quantization.compare import (DET_SCORE_THR, ap_score_threshold, compare_detector,
                                               load_dataset, resolve_variants)

    variants = resolve_variants([str(rtmdet_dir)], fp16=False)
    assert ap_score_threshold(variants[0].meta) == 0.05 < DET_SCORE_THR
    data = load_dataset(str(shared / "data" / "coco_kp17_val2017_merged"), max_images=4)
    out = compare_detector(variants, data, threads=1, progress=False)
    v = out["variants"][0]
    assert v["ap_score_threshold"] == 0.05
    assert "0.05" in out["ap_protocol"]
    # boxes under the pipeline's 0.3 threshold are scored: more boxes than the pipeline keeps
    from edgepose.runtime.detector import Detector
    pipeline = Detector(str(rtmdet_dir), precision="fp32", threads=1)
    from edgepose.runtime.image_input import read_image
    kept = sum(len(pipeline(read_image(it.path))[0]) for it in data.images)
    assert v["boxes"] > kept
    assert v["speed"]["threads"] == 1 and v["speed"]["vs_fp32"] == 1.0


def test_rounded_weights_keep_every_later_blob_in_place(tmp_path):
    """apply_rounded_weights must keep each weight's read mode: a dropped tag would shift every
    later layer's weights in the .bin (ncnn reads it sequentially)."""
    from edgepose.quantization.adaround import RoundingResult, apply_rounded_weights

    rng = np.random.default_rng(2)
    ip = ParamDict()
    for key, v in ((0, 4), (1, 1), (2, 4 * 8 * 6 * 6)):
        ip.set(key, v)
    fc = Layer("InnerProduct", "fc", ["x"], ["y"], ip,
               [WeightBlob.fp32("weight", rng.normal(size=4 * 8 * 36)), WeightBlob.fp32("bias", rng.normal(size=4), RAW)])
    model = NcnnModel([Layer("Input", "in0", [], ["in0"], ParamDict()), _conv("a", "in0", "x", 3, 8, 3, rng), fc], 3)
    new_w = np.round(fc.blob("weight").to_float() * 50) / 50
    rounded = {"fc": RoundingResult(new_w.astype(np.float32), 1.0, 0.5, 3, 1.0),
               "a": RoundingResult(model.layer("a").blob("weight").to_float(), 1.0, 1.0, 0, 1.0)}
    out = apply_rounded_weights(model, rounded, ["fc", "a"])
    write_model(out, str(tmp_path / "m.param"), str(tmp_path / "m.bin"))
    back = read_model(str(tmp_path / "m.param"), str(tmp_path / "m.bin"))
    np.testing.assert_array_equal(back.layer("fc").blob("weight").to_float(), new_w.astype(np.float32))
    np.testing.assert_array_equal(back.layer("fc").blob("bias").to_float(), fc.blob("bias").to_float())
    assert [b.mode for b in back.layer("fc").blobs] == [b.mode for b in fc.blobs]
    # a layer not chosen keeps its weights
    assert apply_rounded_weights(model, rounded, ["a"]).layer("fc").blob("weight").raw == fc.blob("weight").raw
