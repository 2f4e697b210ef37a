"""`edgepose run` end to end through the CLI entry point, with the real RTMDet-nano detector.

The pose model has seeded random weights (keypoints meaningless), so these tests check
the mechanics: frames, files, JSON structure, tracking/smoothing wiring, summaries.
"""
import json

import cv2
import numpy as np
import pytest

from edgepose.cli import main

CLIP = "data/video_mmpose_demo/demo.mp4"             # 5 frames, street, several people
STREET = "data/video_openpose_street_crowd/video.avi"  # 205 frames, crowd
PERSON = "data/calib_mmpose_examples/human-pose.jpeg"


def _run(argv, capsys):
    rc = main(["run"] + [str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def _frame_count(path):
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_video_clip_writes_video_json_and_tracking_summary(shared, rtmdet_dir, body_t_dir, tmp_path, capsys):
    out = tmp_path / "out"
    rc, stdout, _ = _run([shared / CLIP, "--det", rtmdet_dir, "--pose", body_t_dir, "-o", out,
                          "--openpose-json", "--threads", "1", "--show-fps"], capsys)
    assert rc == 0
    assert "5 frames processed" in stdout and "tracks:" in stdout and "id switches:" in stdout
    assert _frame_count(out / "demo_pose.mp4") == 5
    assert [p.name for p in out.glob(".*")] == [".edgepose-manifest"]   # no temporary files left
    res = json.loads((out / "demo_keypoints.json").read_text())
    assert res and {r["image_id"] for r in res} <= set(range(5)) and 0 in {r["image_id"] for r in res}
    assert all(len(r["keypoints"]) == 17 * 3 and r["category_id"] == 1 and "track_id" in r for r in res)
    per_frame = [sum(r["image_id"] == i for r in res) for i in range(5)]
    ops = sorted((out / "openpose").glob("demo_*_keypoints.json"))
    assert len(ops) == 5
    for i, path in enumerate(ops):
        frame = json.loads(path.read_text())
        assert len(frame["people"]) == per_frame[i]
        assert all(len(p["pose_keypoints_2d"]) == 54 for p in frame["people"])
    # the people of the street clip are tracked: ids persist over the frames
    ids0 = {r["track_id"] for r in res if r["image_id"] == 0}
    ids4 = {r["track_id"] for r in res if r["image_id"] == 4}
    assert ids0 and ids0 & ids4


def test_smoothing_changes_video_keypoints_but_not_first_frame(shared, rtmdet_dir, body_t_dir, tmp_path, capsys):
    results = {}
    for name, extra in (("smooth", []), ("raw", ["--no-smooth"])):
        rc, _, _ = _run([shared / CLIP, "--det", rtmdet_dir, "--pose", body_t_dir, "-o", tmp_path / name,
                         "--threads", "1", "--no-draw", "--det-every", "1"] + extra, capsys)
        assert rc == 0
        results[name] = json.loads((tmp_path / name / "demo_keypoints.json").read_text())
    s, r = results["smooth"], results["raw"]
    assert [e["bbox"] for e in s] == [e["bbox"] for e in r]     # same boxes (detector every frame)
    first = [e["keypoints"] for e in s if e["image_id"] == 0]
    assert first == [e["keypoints"] for e in r if e["image_id"] == 0]
    later_s = np.array([e["keypoints"] for e in s if e["image_id"] == 4])
    later_r = np.array([e["keypoints"] for e in r if e["image_id"] == 4])
    assert later_s.shape == later_r.shape and np.abs(later_s - later_r).max() > 0.5


def test_image_and_folder(shared, rtmdet_dir, wholebody_t_dir, tmp_path, capsys):
    out = tmp_path / "img"
    rc, stdout, _ = _run([shared / PERSON, "--det", rtmdet_dir, "--pose", wholebody_t_dir, "-o", out,
                          "--openpose-json"], capsys)
    assert rc == 0 and "1 images processed" in stdout and "tracks" not in stdout
    pic = cv2.imread(str(out / "human-pose_pose.jpeg"))
    assert pic.shape == cv2.imread(str(shared / PERSON)).shape
    res = json.loads((out / "human-pose_keypoints.json").read_text())
    assert len(res) >= 1 and len(res[0]["keypoints"]) == 133 * 3 and res[0]["file_name"] == "human-pose.jpeg"
    assert "track_id" not in res[0]
    op = json.loads((out / "openpose" / "human-pose_000000000000_keypoints.json").read_text())
    assert len(op["people"][0]["hand_left_keypoints_2d"]) == 63

    folder = tmp_path / "folder"
    folder.mkdir()
    img = cv2.imread(str(shared / PERSON))
    cv2.imwrite(str(folder / "a.png"), img)
    cv2.imwrite(str(folder / "b.jpg"), img[:, ::-1])
    (folder / "notes.txt").write_text("not an image")
    rc, stdout, _ = _run([folder, "--det", rtmdet_dir, "--pose", wholebody_t_dir, "-o", tmp_path / "fo",
                          "--draw-style", "openpose"], capsys)
    assert rc == 0 and "2 images processed" in stdout
    res = json.loads((tmp_path / "fo" / "folder_keypoints.json").read_text())
    assert {r["file_name"] for r in res} == {"a.png", "b.jpg"}
    black = cv2.imread(str(tmp_path / "fo" / "a_pose.png"))
    assert black.shape == img.shape and (black.sum(axis=2) == 0).mean() > 0.5   # OpenPose style: on black


def test_demo_with_local_models(shared, rtmdet_dir, wholebody_t_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EDGEPOSE_CACHE", str(tmp_path / "cache"))
    rc = main(["demo", "--input", str(shared / PERSON), "--det", str(rtmdet_dir), "--pose", str(wholebody_t_dir),
               "-o", str(tmp_path / "demo")])
    out, err = capsys.readouterr()
    assert rc == 0 and "FPS" in out and "Traceback" not in err
    assert (tmp_path / "demo" / "human-pose_pose.jpeg").is_file()
    # the demo's models become the defaults of `edgepose run`
    rc, stdout, _ = _run([shared / PERSON, "-o", tmp_path / "run2"], capsys)
    assert rc == 0 and (tmp_path / "run2" / "human-pose_keypoints.json").is_file()


def test_demo_offline_without_models_says_what_to_provide(tmp_path, capsys, monkeypatch, shared):
    monkeypatch.setenv("EDGEPOSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("EDGEPOSE_FETCH_TIMEOUT", "2")
    # make any download attempt fail at once, as offline
    import urllib.request

    def offline(*a, **k):
        raise OSError("network is unreachable")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    rc = main(["demo", "--input", str(shared / PERSON)])
    out, err = capsys.readouterr()
    assert rc == 2 and "Traceback" not in err
    assert "--pose" in err and "--det" in err and str(tmp_path / "cache") in err and ".pth" in err


def test_run_without_models_says_what_to_pass(tmp_path, capsys, monkeypatch, shared):
    monkeypatch.setenv("EDGEPOSE_CACHE", str(tmp_path / "empty-cache"))
    rc, _, err = _run([shared / PERSON], capsys)
    assert rc == 2 and "--det" in err and "edgepose demo" in err


@pytest.mark.slow
def test_street_crowd_video_all_frames(shared, rtmdet_dir, wholebody_t_dir, tmp_path, capsys):
    """Acceptance 3: all 205 frames, video + JSON, track count and id switches reported."""
    out = tmp_path / "street"
    rc, stdout, _ = _run([shared / STREET, "--det", rtmdet_dir, "--pose", wholebody_t_dir, "-o", out,
                          "--threads", "1"], capsys)
    assert rc == 0 and "205 frames processed" in stdout
    assert "tracks:" in stdout and "id switches:" in stdout
    assert _frame_count(out / "video_pose.mp4") == 205
    res = json.loads((out / "video_keypoints.json").read_text())
    assert {r["image_id"] for r in res} == set(range(205))
    print(stdout)


@pytest.mark.slow
@pytest.mark.host
def test_demo_converts_local_onnx_files_once(shared, tmp_path, capsys, monkeypatch):
    """`edgepose demo --det X.onnx --pose Y.onnx`: converted into the cache, reused the second time."""
    monkeypatch.setenv("EDGEPOSE_CACHE", str(tmp_path / "cache"))
    argv = ["demo", "--input", str(shared / PERSON),
            "--det", str(shared / "models/rtmdet-nano-person/rtmdet-nano-person_raw-heads.onnx"),
            "--pose", str(shared / "reference/official/rtmpose-t_wholebody_256x192.onnx"),
            "-o", str(tmp_path / "demo")]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "converting" in out and "FPS" in out and "Traceback" not in err
    assert len(list((tmp_path / "cache" / "converted").iterdir())) == 2
    assert main(argv) == 0
    out, _ = capsys.readouterr()
    assert "converting" not in out and "FPS" in out
