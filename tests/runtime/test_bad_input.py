"""Bad input never crashes with a traceback: each case is a clear message or a handled case.

Through the CLI (`edgepose.cli.main`) and through the API.
"""
import json
import shutil

import cv2
import numpy as np
import pytest

from edgepose.cli import main
from edgepose.errors import EdgeposeError
from edgepose.runtime.sources import Source

PERSON = "data/calib_mmpose_examples/human-pose.jpeg"


def _run(argv, capsys):
    rc = main(["run"] + [str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return rc, out, err


@pytest.fixture(scope="module")
def models(rtmdet_dir, body_t_dir):
    return ["--det", str(rtmdet_dir), "--pose", str(body_t_dir), "--threads", "1"]


@pytest.fixture(scope="module")
def api(rtmdet_dir, body_t_dir):
    from edgepose.runtime.pose_tracker import PoseTracker
    from edgepose.runtime.solutions import Body
    return Body(det=str(rtmdet_dir), pose=str(body_t_dir), threads=1, precision="fp32"), PoseTracker


# -- unreadable files ---------------------------------------------------------------------------

def test_corrupt_and_empty_images_are_skipped_with_a_warning(shared, models, tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 10)
    (folder / "empty.png").write_bytes(b"")
    good = cv2.imread(str(shared / PERSON))
    data = cv2.imencode(".jpg", good)[1].tobytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])      # decodes partially or not at all
    cv2.imwrite(str(folder / "good.png"), good)
    rc, out, err = _run([folder, "-o", tmp_path / "out"] + models, capsys)
    assert rc == 0
    assert "corrupt.jpg" in err and "empty.png" in err and "skipped" in err
    res = json.loads((tmp_path / "out" / "imgs_keypoints.json").read_text())
    assert "good.png" in {r["file_name"] for r in res}
    assert "corrupt.jpg" not in {r["file_name"] for r in res}

    rc, out, err = _run([folder / "corrupt.jpg", "-o", tmp_path / "out2"] + models, capsys)
    assert rc == 2 and "corrupt.jpg" in err and "no frame or image could be processed" in err


def test_missing_source(models, tmp_path, capsys):
    rc, _, err = _run([tmp_path / "nope.mp4"] + models, capsys)
    assert rc == 2 and "nope.mp4" in err
    (tmp_path / "nothing").mkdir()
    rc, _, err = _run([tmp_path / "nothing"] + models, capsys)
    assert rc == 2 and "no image files" in err
    rc, _, err = _run(["97"] + models, capsys)                         # a camera index with no camera
    assert rc == 2 and "97" in err and "camera" in err
    (tmp_path / "junk.avi").write_bytes(b"RIFF0000AVI junk" * 4)
    rc, _, err = _run([tmp_path / "junk.avi"] + models, capsys)
    assert rc == 2 and "junk.avi" in err


# -- odd images -----------------------------------------------------------------------------------

def test_gray_rgba_16bit_and_tiny_images_through_cli(shared, models, tmp_path, capsys):
    img = cv2.imread(str(shared / PERSON))
    folder = tmp_path / "odd"
    folder.mkdir()
    cv2.imwrite(str(folder / "gray.png"), cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(folder / "rgba.png"), cv2.cvtColor(img, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(folder / "deep16.png"), img.astype(np.uint16) * 257)
    cv2.imwrite(str(folder / "one_pixel.png"), img[:1, :1])
    cv2.imwrite(str(folder / "one_row.png"), img[:1])
    rc, out, err = _run([folder, "-o", tmp_path / "out"] + models, capsys)
    assert rc == 0 and "5 images processed" in out
    res = json.loads((tmp_path / "out" / "odd_keypoints.json").read_text())
    found = {r["file_name"] for r in res}
    assert {"gray.png", "rgba.png", "deep16.png"} <= found          # the person is found in each
    assert cv2.imread(str(tmp_path / "out" / "one_pixel_pose.png")).shape[:2] == (1, 1)


def test_odd_frames_through_api(shared, api):
    models, PoseTracker = api
    img = cv2.imread(str(shared / PERSON))
    ref = PoseTracker(models, det_every=1, smooth=False)(img)
    assert len(ref) >= 1
    for variant in (cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.cvtColor(img, cv2.COLOR_BGR2BGRA),
                    img.astype(np.uint16) * 257, img[:1, :1], img[:1], img[:, :1]):
        res = PoseTracker(models, det_every=1, smooth=False)(variant)
        assert res.keypoints.shape[0] == res.scores.shape[0] == len(res.track_ids)
        assert np.isfinite(res.keypoints).all()
    deep = PoseTracker(models, det_every=1, smooth=False)(img.astype(np.uint16) * 257)
    np.testing.assert_allclose(deep.keypoints, ref.keypoints)       # 16-bit: same pixels, same answer
    tracker = PoseTracker(models)
    for bad in (np.zeros((0, 0, 3), np.uint8), np.zeros((10, 0, 3), np.uint8), np.zeros((4, 4, 2), np.uint8),
                None, "image.jpg"):
        with pytest.raises(EdgeposeError):
            tracker(bad)
    assert len(tracker(img)) >= 1                                    # still works after the errors


def test_boxes_partly_or_fully_outside_the_image(shared, api):
    from edgepose.runtime.draw import draw_mmpose, draw_openpose
    from edgepose.runtime.results_json import coco_results, openpose_frame
    models, PoseTracker = api
    img = cv2.imread(str(shared / PERSON))
    h, w = img.shape[:2]
    boxes = np.array([[-50, -50, w / 2, h / 2],            # partly outside
                      [w - 10, h - 10, w + 200, h + 300],  # mostly outside
                      [w + 100, h + 100, w + 300, h + 400],  # fully outside
                      [-500, -500, -100, -100],            # fully outside, negative
                      [10, 10, 10, 10]], np.float32)       # empty
    kp, sc = models.pose_estimator(img, boxes)
    assert kp.shape == (5, 17, 2) and np.isfinite(kp).all() and np.isfinite(sc).all()
    assert (sc[4] == 0).all()
    draw_mmpose(img, kp, sc, boxes)
    draw_openpose(img.shape, kp, sc)
    json.dumps(coco_results(0, boxes, np.ones(5), kp, sc))
    json.dumps(openpose_frame(kp, sc, w, h))

    # a detector that returns boxes outside the picture, inside the video pipeline
    class Outside:
        detector = staticmethod(lambda image: (boxes, np.ones(len(boxes), np.float32)))
        pose_estimator = models.pose_estimator
    tracker = PoseTracker(Outside, det_every=3)
    for _ in range(5):
        res = tracker(img)
        assert np.isfinite(res.keypoints).all()


def test_huge_image_8000x6000(shared, models, tmp_path, capsys):
    img = cv2.imread(str(shared / PERSON))
    big = cv2.resize(img, (8000, 6000), interpolation=cv2.INTER_NEAREST)
    path = tmp_path / "huge.jpg"
    cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 80])
    del big
    rc, out, err = _run([path, "-o", tmp_path / "out", "--no-draw"] + models, capsys)
    assert rc == 0 and "1 images processed" in out
    res = json.loads((tmp_path / "out" / "huge_keypoints.json").read_text())
    assert res and res[0]["bbox"][2] > 1000                          # the person, at full scale


# -- video cut mid-stream ---------------------------------------------------------------------------

def _make_video(path, shared, frames=20):
    img = cv2.resize(cv2.imread(str(shared / PERSON)), (160, 240))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 240))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.roll(img, 2 * i, axis=1))
    writer.release()


def test_video_cut_mid_stream_keeps_results_up_to_the_cut(shared, models, tmp_path, capsys):
    whole = tmp_path / "clip.avi"
    _make_video(whole, shared)
    cut = tmp_path / "cut.avi"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    n_cut = sum(1 for _ in Source(str(cut)))
    assert 0 < n_cut < 20
    rc, out, err = _run([cut, "-o", tmp_path / "out", "--det-every", "2"] + models, capsys)
    assert rc == 0 and f"{n_cut} frames processed" in out
    assert "ended" in err and "results up to frame" in err
    res = json.loads((tmp_path / "out" / "cut_keypoints.json").read_text())
    assert {r["image_id"] for r in res} == set(range(n_cut))          # one person in every frame read
    cap = cv2.VideoCapture(str(tmp_path / "out" / "cut_pose.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == n_cut


def test_output_never_overwrites_a_users_file(shared, models, tmp_path, capsys):
    src = tmp_path / "x.jpeg"
    shutil.copy(shared / PERSON, src)
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "x_keypoints.json"                  # a user's file under the name of our JSON output
    mine.write_text("users data")
    rc, _, err = _run([src, "-o", out] + models, capsys)
    assert rc == 2 and "x_keypoints.json" in err and "not written by edgepose" in err
    assert mine.read_text() == "users data"
    mine.unlink()
    # our own outputs are replaced by a second run into the same folder
    assert _run([src, "-o", out] + models, capsys)[0] == 0
    assert _run([src, "-o", out] + models, capsys)[0] == 0
    assert (out / "x_pose.jpeg").is_file() and not list(out.glob(".x*"))
    # the input folder as output folder: outputs get their own names, the input is untouched
    before = src.read_bytes()
    assert _run([src, "-o", tmp_path] + models, capsys)[0] == 0
    assert src.read_bytes() == before


# -- models -----------------------------------------------------------------------------------------

def test_missing_and_mismatched_models(shared, rtmdet_dir, body_t_dir, tmp_path, capsys):
    src = shared / PERSON
    rc, _, err = _run([src, "--det", tmp_path / "none", "--pose", body_t_dir], capsys)
    assert rc == 2 and "--det" in err and "none" in err
    rc, _, err = _run([src, "--det", body_t_dir, "--pose", body_t_dir], capsys)          # pose model as --det
    assert rc == 2 and "--det" in err and "not a detect model" in err
    rc, _, err = _run([src, "--det", rtmdet_dir, "--pose", rtmdet_dir], capsys)          # detector as --pose
    assert rc == 2 and "--pose" in err and "not a pose model" in err
    # a model folder whose weights file is gone / truncated
    broken = tmp_path / "broken"
    shutil.copytree(body_t_dir, broken)
    binf = next(broken.glob("*.ncnn.bin"))
    binf.write_bytes(binf.read_bytes()[:1000])
    rc, _, err = _run([src, "--det", rtmdet_dir, "--pose", broken], capsys)
    assert rc == 2 and "--pose" in err and ".ncnn.bin" in err
    binf.unlink()
    rc, _, err = _run([src, "--det", rtmdet_dir, "--pose", broken], capsys)
    assert rc == 2 and "missing" in err
    # a .param with no metadata beside it, and a random file
    lone = tmp_path / "lone.ncnn.param"
    lone.write_text("7767517\n")
    rc, _, err = _run([src, "--det", rtmdet_dir, "--pose", lone], capsys)
    assert rc == 2 and "lone.ncnn.param" in err
    rc, _, err = _run([src, "--det", src, "--pose", body_t_dir], capsys)
    assert rc == 2 and "--det" in err
    # bad numbers
    rc, _, err = _run([src, "--det", rtmdet_dir, "--pose", body_t_dir, "--det-every", "0"], capsys)
    assert rc == 2 and "--det-every" in err
