"""Board-runtime math without models: image input, top-down affine, letterbox, SimCC, NMS, decoders."""
import numpy as np
import pytest

from edgepose.runtime.detector import decode_rtmdet, decode_yolox, nms
from edgepose.errors import EdgeposeError
from edgepose.runtime.image_input import as_bgr8
from edgepose.runtime.pose import check_boxes
from edgepose.runtime.preprocess import (boxes_to_center_scale, crop_person, input_to_image, letterbox,
                                     letterbox_size, warp_matrix)
from edgepose.runtime.simcc import decode_simcc, simcc_maximum


# ----------------------------------------------------------------------------- image input
def test_as_bgr8_formats():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = as_bgr8(gray)
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8 and (out == gray[:, :, None]).all()
    assert (as_bgr8(gray[:, :, None]) == out).all()
    bgra = np.dstack([out, np.full((3, 4), 7, np.uint8)])
    assert (as_bgr8(bgra) == out).all()
    assert (as_bgr8(out.astype(np.uint16) * 257) == out).all()        # 8-bit data stored as 16-bit
    assert (as_bgr8(out.astype(np.float32) / 255.0) == out).all()    # float 0..1
    assert (as_bgr8(out.astype(np.float64)) == out).all()            # float 0..255
    assert (as_bgr8(np.ones((2, 2), bool)) == 255).all()
    f = np.array([[np.nan, 300.0]], np.float32)
    assert as_bgr8(f).tolist() == [[[0, 0, 0], [255, 255, 255]]]
    strided = np.zeros((4, 6, 3), np.uint8)[:, ::2]
    assert as_bgr8(strided).flags.c_contiguous
    assert as_bgr8(np.zeros((1, 1, 3), np.uint8)).shape == (1, 1, 3)


@pytest.mark.parametrize("bad", [None, np.zeros((0, 5, 3), np.uint8), np.zeros((5, 0), np.uint8),
                                 np.zeros((4, 4, 2), np.uint8), np.zeros((2, 2, 2, 3), np.uint8),
                                 np.zeros((2, 2), np.complex64), [[1, 2]]])
def test_as_bgr8_rejects(bad):
    with pytest.raises(EdgeposeError):
        as_bgr8(bad)


# ----------------------------------------------------------------------------- top-down affine
def test_center_scale_padding_and_aspect():
    c, s = boxes_to_center_scale(np.array([[10, 20, 110, 220]]), (192, 256))
    assert c.tolist() == [[60.0, 120.0]]
    assert s.tolist() == [[187.5, 250.0]]     # (100, 200) * 1.25, width grown to 0.75 * height
    c, s = boxes_to_center_scale(np.array([[0, 0, 400, 100]]), (192, 256))
    assert s.tolist() == [[500.0, 500.0 / 0.75]]


def test_warp_matrix_is_the_closed_form_and_input_to_image_inverts_it():
    center, scale, size = np.array([123.4, 56.7]), np.array([150.0, 200.0]), (192, 256)
    m = warp_matrix(center, scale, size)
    k = 192 / 150.0
    expect = np.array([[k, 0, 96 - k * 123.4], [0, k, 128 - k * 56.7]])
    assert np.allclose(m, expect, atol=1e-4)
    pts = np.array([[10.0, 20.0], [123.4, 56.7], [300.0, -5.0]])
    inp = pts @ m[:, :2].T + m[:, 2]
    back = input_to_image(inp[None], center[None], scale[None], size)[0]
    assert np.allclose(back, pts, atol=1e-3)


def test_crop_border_is_zero_raw_pixels():
    img = np.full((50, 40, 3), 200, np.uint8)
    c, s = boxes_to_center_scale(np.array([[-40, 0, 0, 50]]), (192, 256))   # box left of the image
    crop = crop_person(img, c[0], s[0], (192, 256))
    assert crop.shape == (256, 192, 3) and crop.dtype == np.uint8
    assert crop[:, :150].max() == 0 and crop[40:200, -10:].min() == 200   # outside 0, inside untouched


def test_check_boxes():
    b = check_boxes([[10, 20, 5, 2]], (100, 100, 3))
    assert b.tolist() == [[5, 2, 10, 20]]
    assert check_boxes(None, (30, 40, 3)).tolist() == [[0, 0, 40, 30]]
    assert check_boxes([], (30, 40, 3)).shape == (0, 4)
    with pytest.raises(EdgeposeError, match="box 1"):
        check_boxes([[0, 0, 1, 1], [0, np.nan, 1, 1]], (10, 10, 3))
    with pytest.raises(EdgeposeError):
        check_boxes([[0, 0, 1]], (10, 10, 3))


# ----------------------------------------------------------------------------- letterbox
def test_letterbox_rules():
    assert letterbox_size(640, 427, (320, 320), "mmdet") == (320, 214)   # int(213.5 + 0.5)
    assert letterbox_size(640, 427, (320, 320), "yolox") == (320, 213)   # int(213.5)
    assert letterbox_size(8000, 1, (320, 320), "mmdet") == (320, 1)      # never 0 pixels
    img = np.full((427, 640, 3), 9, np.uint8)
    canvas, (fx, fy) = letterbox(img, (320, 320), "mmdet")
    assert canvas.shape == (320, 320, 3)
    assert (canvas[:214] == 9).all() and (canvas[214:] == 114).all()
    assert fx == 0.5 and fy == 214 / 427
    canvas, (fx, fy) = letterbox(img, (416, 416), "yolox")
    assert fx == fy == 416 / 640


# ----------------------------------------------------------------------------- SimCC
def test_simcc_maximum_official_rules():
    sx = np.zeros((2, 3, 8), np.float32)
    sy = np.zeros((2, 3, 10), np.float32)
    sx[0, 0, [2, 5]] = 3.0            # tie: first maximum
    sy[0, 0, 7] = 1.5
    sx[0, 1, 4] = 2.0; sy[0, 1, 1] = 5.0
    sx[1, 2, :] = -1.0; sx[1, 2, 6] = -0.5; sy[1, 2, 3] = 4.0   # score <= 0: invalid
    locs, scores = simcc_maximum(sx, sy)
    assert locs[0, 0].tolist() == [2, 7] and scores[0, 0] == 1.5   # min of the two maxima
    assert locs[0, 1].tolist() == [4, 1] and scores[0, 1] == 2.0
    assert locs[1, 2].tolist() == [-1, -1] and scores[1, 2] == -0.5
    assert locs[0, 2].tolist() == [-1, -1]                           # all zero: score 0 is invalid
    pts, _ = decode_simcc(sx, sy, 2.0)
    assert pts[0, 0].tolist() == [1.0, 3.5]


# ----------------------------------------------------------------------------- NMS and decoders
def test_nms():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    assert nms(boxes, scores, 0.6).tolist() == [3, 2]
    assert nms(boxes, scores, 0.99).tolist() == [3, 1, 2]     # IoU(0,1) = 9/11, identical boxes IoU 1
    assert nms(boxes, scores, 0.6, max_keep=1).tolist() == [3]
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).tolist() == []


def test_decode_rtmdet_point_and_distances():
    outs = {}
    for s, n in ((8, 40), (16, 20), (32, 10)):
        outs[f"cls_{s}"] = np.full((1, n, n), -10.0, np.float32)
        outs[f"box_{s}"] = np.ones((4, n, n), np.float32)
    outs["cls_8"][0, 2, 3] = 2.0
    outs["box_8"][:, 2, 3] = [1, 2, 3, 4]
    outs["cls_32"][0, 9, 9] = 0.0
    boxes, scores = decode_rtmdet(outs, [8, 16, 32], 0, 0.3, (320, 300))
    assert boxes.tolist()[0] == [16.0, 0.0, 48.0, 48.0]        # (24 - 8, 16 - 16, 24 + 24, 16 + 32)
    assert np.isclose(scores[0], 1 / (1 + np.exp(-2.0)))
    assert boxes.tolist()[1] == [256.0, 256.0, 320.0, 300.0]   # clamped to the resized image
    assert np.isclose(scores[1], 0.5)


def test_decode_yolox_grid():
    n = 52 * 52 + 26 * 26 + 13 * 13
    out = np.zeros((n, 85), np.float32)
    row = 52 * 52 + 26 * 3 + 5          # stride 16, grid (x=5, y=3)
    out[row, :4] = [0.5, 0.25, np.log(2.0), np.log(4.0)]
    out[row, 4] = 0.9; out[row, 5] = 0.8; out[row, 6] = 1.0
    out[0, 4] = 0.9; out[0, 6] = 0.9    # a confident non-person
    boxes, scores = decode_yolox(out, [8, 16, 32], (416, 416), 0, 0.3)
    assert len(boxes) == 1 and np.isclose(scores[0], 0.72)
    cx, cy, w, h = (5.5) * 16, (3.25) * 16, 32, 64
    assert np.allclose(boxes[0], [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    with pytest.raises(EdgeposeError):
        decode_yolox(out[:10], [8, 16, 32], (416, 416), 0, 0.3)
