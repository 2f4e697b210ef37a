"""Session-scoped converted models for every test that needs one (registered in conftest.py).

Each fixture converts a shared reference/detector ONNX once per test session into its
own temporary folder and returns that folder (the metadata file is `<stem>.json` in it;
`edgepose.model_meta.find_model(folder)` resolves it). The self-check is off here:
tests/test_convert_*.py test it; these fixtures only provide models quickly.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REFERENCE = "reference/official"
POSE_ONNX = {
    "wholebody_t": f"{REFERENCE}/rtmpose-t_wholebody_256x192.onnx",
    "body_t": f"{REFERENCE}/rtmpose-t_body8_256x192.onnx",
}
DETECTOR_ONNX = {
    "rtmdet": "models/rtmdet-nano-person/rtmdet-nano-person_raw-heads.onnx",
    "rtmdet_mmdeploy": "models/rtmdet-nano-person-mmdeploy/end2end.onnx",
    "yolox": "models/yolox-nano/yolox_nano_416x416.onnx",
}


# Folders made once by `python tests/model_fixtures.py DIR` on a host, for runs without the host
# toolchain (CI's board-install run): EDGEPOSE_TEST_MODELS=DIR makes the fixtures use them.
PREBUILT_ENV = "EDGEPOSE_TEST_MODELS"
BOARD_MODELS = {"wholebody_t": (POSE_ONNX["wholebody_t"], False), "wholebody_t_fp16": (POSE_ONNX["wholebody_t"], True),
                "body_t": (POSE_ONNX["body_t"], False), "rtmdet": (DETECTOR_ONNX["rtmdet"], False),
                "rtmdet_mmdeploy": (DETECTOR_ONNX["rtmdet_mmdeploy"], False), "yolox": (DETECTOR_ONNX["yolox"], False)}


def convert_into(shared: Path, rel: str, out: Path, fp16: bool = False) -> Path:
    from edgepose.convert.api import convert
    convert(str(shared / rel), str(out), fp16=fp16, check=False, log=lambda _msg: None)
    return out


def _converted(tmp_path_factory, shared: Path, rel: str, key: str, fp16: bool = False) -> Path:
    prebuilt = os.environ.get(PREBUILT_ENV)
    if prebuilt:
        folder = Path(prebuilt) / key
        if not any(folder.glob("*.json")):
            pytest.fail(f"{folder}: no pre-converted {key} model ({PREBUILT_ENV} is set; make the folder with "
                        f"`python tests/model_fixtures.py {prebuilt}` on a host)")
        return folder
    return convert_into(shared, rel, tmp_path_factory.mktemp(key), fp16)


@pytest.fixture(scope="session")
def wholebody_t_dir(tmp_path_factory, shared) -> Path:
    """RTMPose-t / DWPose-t whole-body 133 kp, 256x192, fp32 (reference seeded weights)."""
    return _converted(tmp_path_factory, shared, POSE_ONNX["wholebody_t"], "wholebody_t")


@pytest.fixture(scope="session")
def wholebody_t_fp16_dir(tmp_path_factory, shared) -> Path:
    """Same model written with `--fp16` (fp16 weights, precision 'fp16')."""
    return _converted(tmp_path_factory, shared, POSE_ONNX["wholebody_t"], "wholebody_t_fp16", fp16=True)


@pytest.fixture(scope="session")
def body_t_dir(tmp_path_factory, shared) -> Path:
    """RTMPose-t body8 17 kp, 256x192, fp32 (reference seeded weights)."""
    return _converted(tmp_path_factory, shared, POSE_ONNX["body_t"], "body_t")


@pytest.fixture(scope="session")
def rtmdet_dir(tmp_path_factory, shared) -> Path:
    """RTMDet-nano person (raw-heads ONNX), 320x320, roles cls_8/16/32 + box_8/16/32."""
    return _converted(tmp_path_factory, shared, DETECTOR_ONNX["rtmdet"], "rtmdet")


@pytest.fixture(scope="session")
def rtmdet_mmdeploy_dir(tmp_path_factory, shared) -> Path:
    """The other RTMDet-nano person checkpoint (deploy ONNX with NMS, cut to the raw heads)."""
    return _converted(tmp_path_factory, shared, DETECTOR_ONNX["rtmdet_mmdeploy"], "rtmdet_mmdeploy")


@pytest.fixture(scope="session")
def yolox_dir(tmp_path_factory, shared) -> Path:
    """YOLOX-nano COCO-80, 416x416, role `output` [3549,85]."""
    return _converted(tmp_path_factory, shared, DETECTOR_ONNX["yolox"], "yolox")


@pytest.fixture(scope="session")
def wholebody_t_pth_dir(tmp_path_factory, shared) -> Path:
    """The whole-body t model converted from its official-layout .pth (torch path)."""
    return _converted(tmp_path_factory, shared, f"{REFERENCE}/rtmpose-t_wholebody_256x192.pth", "wholebody_t_pth")


@pytest.fixture(scope="session")
def body_t_pth_dir(tmp_path_factory, shared) -> Path:
    """The body8 t model converted from its official-layout .pth (torch path)."""
    return _converted(tmp_path_factory, shared, f"{REFERENCE}/rtmpose-t_body8_256x192.pth", "body_t_pth")


# The GAU input of the whole-body RTMPose-t head scaled up so that every token's sum of squares in
# the GAU's ScaleNorm exceeds fp16's 65504 (about 3e5 on the example images): the shape of the
# known "RTMPose ncnn fp16 gives NaN" failure. Scaling head.mlp.1 (the Linear feeding the GAU) keeps
# every single activation well inside fp16; only the norm's sum overflows.
GAU_INPUT_SCALE = 64.0


@pytest.fixture(scope="session")
def wholebody_t_overflow_dir(tmp_path_factory, shared) -> Path:
    """Whole-body RTMPose-t (converted from .pth, fp16 mask on the ScaleNorms) with GAU_INPUT_SCALE."""
    import torch
    from edgepose.convert.api import convert
    ckpt = torch.load(shared / REFERENCE / "rtmpose-t_wholebody_256x192.pth", map_location="cpu")
    ckpt["state_dict"]["head.mlp.1.weight"] = ckpt["state_dict"]["head.mlp.1.weight"] * GAU_INPUT_SCALE
    src = tmp_path_factory.mktemp("overflow_src") / "rtmpose-t_wholebody_gau_x64.pth"
    torch.save(ckpt, src)
    out = tmp_path_factory.mktemp("wholebody_t_overflow")
    convert(str(src), str(out), check=False, log=lambda _msg: None)
    return out


if __name__ == "__main__":
    # python tests/model_fixtures.py DIR: the models the runtime tests use, converted on this host.
    from helpers import shared_dir

    root = Path(sys.argv[1])
    for key, (rel, fp16) in BOARD_MODELS.items():
        convert_into(shared_dir(), rel, root / key, fp16)
        print(f"{root / key}: {key}")
