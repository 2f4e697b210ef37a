"""Deploy ONNX -> ncnn: number-for-number parity, metadata, fused preprocessing, fp16 mask."""
from __future__ import annotations


import numpy as np
import pytest

from edgepose.convert import fold_input, selfcheck
from edgepose.convert.fp16_mask import FP32_FEATMASK
from edgepose.ncnn_io import read_model
from helpers import _meta, official_parity
from edgepose.files import MANIFEST

REF = "reference/official"
POSE_MODELS = {"wholebody_t_dir": "rtmpose-t_wholebody_256x192", "body_t_dir": "rtmpose-t_body8_256x192"}


@pytest.mark.parametrize("fixture", sorted(POSE_MODELS))
def test_onnx_pose_reproduces_official_outputs(fixture, request, shared):
    folder = request.getfixturevalue(fixture)
    max_abs, max_mag, argmax, _ = official_parity(folder, shared / REF / f"{POSE_MODELS[fixture]}.io.npz")
    print(f"{POSE_MODELS[fixture]} onnx->ncnn fp32: max abs {max_abs:.3g}, rel {max_abs / max_mag:.2g}")
    assert max_abs <= 1e-4 * max_mag
    assert argmax == 1.0


def test_fp16_weights_keep_argmax_within_one_bin(wholebody_t_fp16_dir, wholebody_t_dir, shared):
    _, meta = _meta(wholebody_t_fp16_dir)
    assert meta.precision == "fp16"
    _, meta32 = _meta(wholebody_t_dir)
    assert meta32.precision == "fp32"
    size16 = (wholebody_t_fp16_dir / meta.bin).stat().st_size
    size32 = (wholebody_t_dir / meta32.bin).stat().st_size
    assert size16 < 0.6 * size32           # weights really stored as fp16
    for fp16_run in (False, True):         # fp16 storage on where the CPU has it
        max_abs, max_mag, _, within_one = official_parity(
            wholebody_t_fp16_dir, shared / REF / "rtmpose-t_wholebody_256x192.io.npz", fp16=fp16_run)
        assert within_one >= 0.99


def test_pose_metadata(wholebody_t_dir, body_t_dir, shared):
    for folder, count, kp_name in ((wholebody_t_dir, 133, "coco_wholebody133"), (body_t_dir, 17, "coco17")):
        path, meta = _meta(folder)
        assert meta.task == "pose" and meta.input_blob == "in0"
        assert (meta.input_width, meta.input_height) == (192, 256)
        assert meta.channel_order == "bgr" and meta.normalization_folded and meta.pixel_range == [0.0, 255.0]
        assert meta.model_channel_order == "rgb" and meta.mean == [123.675, 116.28, 103.53]
        assert meta.output_blobs == {"simcc_x": "out0", "simcc_y": "out1"}
        assert meta.simcc_split_ratio == 2.0
        assert meta.keypoints["name"] == kp_name and len(meta.keypoints["names"]) == count
        assert meta.num_keypoints == count and meta.keypoints["skeleton"] and meta.keypoints["flip_pairs"]
        assert meta.precision == "fp32"
        assert len(meta.source["sha256"]) == 64 and meta.source["tools"]["pnnx"]
        # only the three outputs, nothing pnnx litters
        written = sorted(p.name for p in folder.iterdir() if p.name != MANIFEST)
        assert written == sorted([meta.param, meta.bin, meta.name + ".json"])


def test_fp32_mask_on_exactly_the_scalenorm_layers(body_t_dir):
    import ncnn
    path, meta = _meta(body_t_dir)
    pf = read_model(meta.param_path(path))
    masked = {l.name: l for l in pf.layers if 31 in l.params}
    assert set(masked) == set(meta.fp32_layers)
    assert all(l.params.get(31) == FP32_FEATMASK == 1 for l in masked.values())   # arithmetic bit only
    kinds = sorted(l.type for l in masked.values())
    # two ScaleNorms (head MLP + GAU): L2 reduction, scale multiply, clamp, x / norm
    assert kinds == sorted(["Reduction", "BinaryOp", "Clip", "BinaryOp"] * 2)
    for l in masked.values():
        if l.type == "Reduction":
            assert l.params.get(0) == 8   # L2
        if l.type == "BinaryOp" and len(l.bottoms) == 2:
            assert l.params.get(0) == 3   # the division ends the chain
    net = ncnn.Net()
    assert net.load_param(meta.param_path(path)) == 0
    assert net.load_model(meta.bin_path(path)) == 0


def test_fold_is_exact_at_image_borders(tmp_path):
    """Zero padding of the stem conv must happen in normalised space."""
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    from edgepose.convert import pnnx_export

    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32)

    def stem(pad):
        graph = helper.make_graph(
            [helper.make_node("Conv", ["input", "w"], ["out"], kernel_shape=[3, 3], pads=[pad] * 4)],
            "stem", [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1, 3, "h", "w"])],
            [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, None)],
            [numpy_helper.from_array(w, "w")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
        model.ir_version = 7
        return model

    mean, std = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
    folded = fold_input.fold_into_onnx(stem(1), "input", mean, std, "rgb", "bgr")
    param, binf = pnnx_export.run_pnnx(folded, [1, 3, 16, 12], str(tmp_path), False, "stem")
    pix = rng.integers(0, 256, (1, 3, 16, 12)).astype(np.float32)
    want = ort.InferenceSession(stem(1).SerializeToString()).run(
        None, {"input": fold_input.normalise_pixels(pix, mean, std, "rgb", "bgr")})[0][0]
    got = selfcheck.ncnn_forward(param, binf, "in0", ["out0"], pix[0])[0].reshape(want.shape)
    border = np.ones(want.shape[1:], bool)
    border[1:-1, 1:-1] = False
    scale = np.abs(want).max()
    assert np.abs(got - want)[:, border].max() <= 1e-5 * scale
    assert np.abs(got - want).max() <= 1e-5 * scale
    # What folding 1/std into the stem weights would compute: raw pixels padded with zero.
    padded = np.pad(pix, ((0, 0), (0, 0), (1, 1), (1, 1)))
    naive = ort.InferenceSession(stem(0).SerializeToString()).run(
        None, {"input": fold_input.normalise_pixels(padded, mean, std, "rgb", "bgr")})[0][0]
    assert np.abs(naive - want)[:, ~border].max() <= 1e-5 * scale
    assert np.abs(naive - want)[:, border].max() > 0.1 * scale    # the test can see a border error


def test_raw_pixel_inversion_roundtrip():
    rng = np.random.default_rng(1)
    pix = rng.uniform(0, 255, (2, 3, 5, 4)).astype(np.float32)
    mean, std = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
    x = fold_input.normalise_pixels(pix, mean, std, "rgb", "bgr")
    assert np.allclose(x[:, 0], (pix[:, 2] - mean[0]) / std[0], atol=1e-6)   # R from BGR's last channel
    back = fold_input.raw_pixels_from_normalised(x, mean, std, "rgb", "bgr")
    assert np.abs(back - pix).max() < 1e-3


DETECTORS = {
    "rtmdet_dir": ("models/rtmdet-nano-person/rtmdet-nano-person_raw-heads.onnx", "rtmdet", 320, 320),
    "rtmdet_mmdeploy_dir": ("models/rtmdet-nano-person-mmdeploy/end2end.onnx", "rtmdet", 320, 320),
    "yolox_dir": ("models/yolox-nano/yolox_nano_416x416.onnx", "yolox", 416, 416),
}


@pytest.mark.parametrize("fixture", sorted(DETECTORS))
def test_detector_metadata_and_raw_outputs_match_onnxruntime(fixture, request, shared):
    from edgepose.convert import api, onnx_source
    folder = request.getfixturevalue(fixture)
    rel, family, w, h = DETECTORS[fixture]
    path, meta = _meta(folder)
    assert meta.task == "detect" and meta.detector["family"] == family
    assert (meta.input_width, meta.input_height) == (w, h)
    assert meta.detector["pad_value"] == 114 and meta.detector["person_class"] == 0
    if family == "rtmdet":
        assert sorted(meta.output_blobs) == sorted(f"{k}_{s}" for k in ("cls", "box") for s in (8, 16, 32))
        assert meta.detector["num_classes"] == 1 and meta.detector["box_units"] == "stride"
        assert meta.mean == [103.53, 116.28, 123.675] and meta.model_channel_order == "bgr"
    else:
        assert meta.output_blobs == {"output": "out0"} and meta.detector["num_classes"] == 80
    src = onnx_source.inspect(str(shared / rel))
    reference = api._ort_reference(src.reference_model, src)
    coco = shared / "data/coco_kp17_val2017_merged"
    images, phrase = selfcheck.check_inputs("detect", w, h, 114, str(coco))
    assert phrase == f"images from {coco / 'val2017'}"
    roles = list(src.output_roles)
    result = selfcheck.compare(reference, meta.param_path(path), meta.bin_path(path), meta.input_blob,
                               [meta.output_blobs[r] for r in roles], images, phrase, pose=False, fp16=False)
    print(fixture, result.line())
    assert result.passed and result.rel <= 1e-3


def test_rtmdet_cut_heads_are_in_units_of_stride(shared):
    """The raw-heads file multiplies box distances by the stride; the cut keeps the conv output."""
    import onnxruntime as ort

    from edgepose.convert import onnx_source
    path = shared / "models/rtmdet-nano-person/rtmdet-nano-person_raw-heads.onnx"
    src = onnx_source.inspect(str(path))
    x = np.random.default_rng(0).normal(0, 1, (1, 3, 320, 320)).astype(np.float32)
    sess = ort.InferenceSession(src.reference_model.SerializeToString())
    cut = dict(zip(src.output_roles, sess.run(None, {"input": x})))
    full_model = onnx_source.load_onnx(str(path))
    onnx_source._set_input_shape(full_model, "input", [1, 3, 320, 320])
    full = ort.InferenceSession(full_model.SerializeToString()).run(None, {"input": x})
    for k, s in enumerate((8, 16, 32)):
        assert np.allclose(cut[f"cls_{s}"], full[k], atol=1e-5)
        assert np.allclose(cut[f"box_{s}"] * s, full[3 + k], rtol=1e-5, atol=1e-4)


def test_raw_pixel_stem_keeps_fp32_weights_and_mask_in_fp16_yolox(tmp_path, yolox_dir, shared):
    """YOLOX sees raw 0..255 pixels: its stem keeps fp32 weights and the fp32 feature mask."""

    from edgepose.convert import api, weight_precision
    src = shared / DETECTORS["yolox_dir"][0]
    path16 = api.convert(str(src), str(tmp_path), fp16=True, check=False, log=lambda _m: None)
    _, meta16 = _meta(tmp_path)
    assert meta16.precision == "fp16"
    path32, meta32 = _meta(yolox_dir)
    # reading the bin checks every byte is accounted for, layer by layer
    pf = read_model(meta16.param_path(path16), meta16.bin_path(path16))
    stem = weight_precision.input_stem_layers(pf)
    assert len(stem) == 2 and meta16.fp32_layers == stem and meta32.fp32_layers == stem
    assert all(pf.layer(n).params.get(31) == FP32_FEATMASK for n in stem)
    storage = {l.name: l.blobs[0].storage for l in pf.layers if l.type == "Convolution"}
    assert all(storage[n] == "fp32" for n in stem)
    assert sum(s == "fp16" for s in storage.values()) == len(storage) - len(stem)
    # the stem's output is bit-identical to the fp32 model's
    images, _ = selfcheck.check_inputs("detect", 416, 416, 114, None)
    pix = images[0].transpose(2, 0, 1).astype(np.float32)
    stem_out = pf.layer(stem[-1]).tops[0]
    a = selfcheck.ncnn_forward(meta16.param_path(path16), meta16.bin_path(path16), "in0", [stem_out], pix)[0]
    b = selfcheck.ncnn_forward(meta32.param_path(path32), meta32.bin_path(path32), "in0", [stem_out], pix)[0]
    assert np.array_equal(a, b)
