"""Self-check inputs: real crops from the shared data, the user's images, or a synthetic image."""
from __future__ import annotations

import numpy as np
import pytest

from edgepose.convert import selfcheck
from edgepose.cli import main


def test_pose_check_uses_real_person_crops_from_a_coco_folder(shared):
    coco = shared / "data/coco_kp17_val2017_merged"
    images, phrase = selfcheck.check_inputs("pose", 192, 256, 114, str(coco))
    assert phrase == f"COCO person crops from {coco}" and len(images) == selfcheck.POSE_CROPS
    assert all(im.shape == (256, 192, 3) and im.dtype == np.uint8 for im in images)
    assert all(im.std() > 10 for im in images)      # real content, not a blank canvas


def test_without_check_images_says_synthetic_and_user_images_are_used(tmp_path, monkeypatch, shared):
    import cv2
    # Installed code never looks for the development checkout's data, whatever the environment says.
    monkeypatch.setenv("EDGEPOSE_SHARED", str(shared))
    images, phrase = selfcheck.check_inputs("detect", 320, 320, 114, None)
    assert "synthetic" in phrase and "--check-images" in phrase and len(images) == 1
    mine = tmp_path / "mine"
    mine.mkdir()
    src = sorted((shared / "data/coco_kp17_val2017_merged/val2017").iterdir())[:2]
    for f in src:
        cv2.imwrite(str(mine / f.name), cv2.imread(str(f)))
    images, phrase = selfcheck.check_inputs("detect", 320, 320, 114, str(mine))
    assert phrase == f"images from {mine}" and len(images) == 2
    assert images[0].shape == (320, 320, 3)
    with pytest.raises(Exception, match="no images"):
        selfcheck.check_inputs("pose", 192, 256, 114, str(tmp_path))


def test_cli_self_check_with_user_images(tmp_path, monkeypatch, shared, capsys):
    import cv2
    monkeypatch.setenv("EDGEPOSE_SHARED", str(tmp_path / "nowhere"))
    mine = tmp_path / "mine"
    mine.mkdir()
    f = sorted((shared / "data/coco_kp17_val2017_merged/val2017").iterdir())[0]
    cv2.imwrite(str(mine / f.name), cv2.imread(str(f)))
    rc = main(["convert", str(shared / "models/rtmdet-nano-person/rtmdet-nano-person_raw-heads.onnx"),
               "-o", str(tmp_path / "out"), "--check-images", str(mine)])
    out = capsys.readouterr().out
    assert rc == 0 and f"self-check on 1 images from {mine}" in out and "OK" in out


def test_letterbox_keeps_ratio_and_pads_bottom_right():
    img = np.full((100, 200, 3), 7, np.uint8)
    out = selfcheck.letterbox(img, 320, 320, 114)
    assert out.shape == (320, 320, 3)
    assert (out[:160] == 7).all() and (out[160:] == 114).all()
