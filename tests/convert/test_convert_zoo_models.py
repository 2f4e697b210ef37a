"""Slow: every architecture family converts from an official-layout .pth and passes its self-check.

No trained weights exist here for these, so each checkpoint holds the freshly initialised
weights of our definition (state-dict layout identical to the official one).
"""
from __future__ import annotations

import pytest

from edgepose.model_meta import ModelMeta

CONFIGS = ["rtmw-m_wholebody_256x192", "rtmw-l_wholebody_384x288", "rtmw-x_wholebody_256x192",
           "rtmpose-l_wholebody_384x288", "rtmpose-m_halpe26_256x192", "rtmpose-m_hand5_256x256",
           "rtmpose-s_face6_256x256", "rtmdet-nano-person", "rtmdet-tiny",
           "rtmdet-m-person"]   # exp on the box branch (exp_on_reg)


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS)
def test_random_weight_checkpoint_converts_and_self_checks(config, tmp_path, capsys):
    import torch

    from edgepose.convert.checkpoint import build_model
    from edgepose.convert.models.configs import get_spec
    from edgepose.cli import main

    torch.manual_seed(0)
    spec = get_spec(config)
    model = build_model(spec)
    with torch.no_grad():     # non-trivial BN statistics so the fold and every layer matter
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    ckpt = tmp_path / f"{config}.pth"
    torch.save({"meta": {}, "state_dict": model.state_dict()}, str(ckpt))
    rc = main(["convert", str(ckpt), "-o", str(tmp_path / "out"), "--config", config])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "- OK" in out
    meta = ModelMeta.load(str(tmp_path / "out" / f"{config}.json"))
    w, h = spec.input_size
    assert (meta.input_width, meta.input_height) == (w, h) and meta.task == spec.task
    if spec.task == "pose":
        assert meta.num_keypoints == spec.num_keypoints and meta.keypoints["name"] == spec.keypoint_set
        # 4 layers per ScaleNorm: two in RTMPose's head, three in RTMW's; only fp16 arithmetic off
        # there (param 31 = 1: the storage bit as well crashes ncnn on ARMv8.2).
        from edgepose.ncnn_io import read_model
        assert len(meta.fp32_layers) in (8, 12)
        layers = read_model(meta.param_path(str(tmp_path / "out" / f"{config}.json"))).layers
        assert {l.name: l.params.get(31) for l in layers if 31 in l.params} == {n: 1 for n in meta.fp32_layers}
    else:
        assert sorted(meta.output_blobs) == sorted(f"{k}_{s}" for k in ("cls", "box") for s in (8, 16, 32))
