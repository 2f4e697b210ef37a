"""Official-layout .pth -> ncnn through our torch definitions: parity with the official outputs."""
from __future__ import annotations

import pytest

from edgepose.model_meta import ModelMeta, find_model

from helpers import official_parity
from edgepose.files import MANIFEST

REF = "reference/official"
PTH_MODELS = {"wholebody_t_pth_dir": "rtmpose-t_wholebody_256x192", "body_t_pth_dir": "rtmpose-t_body8_256x192"}


@pytest.mark.parametrize("fixture", sorted(PTH_MODELS))
def test_pth_reproduces_official_outputs(fixture, request, shared):
    folder = request.getfixturevalue(fixture)
    max_abs, max_mag, argmax, _ = official_parity(folder, shared / REF / f"{PTH_MODELS[fixture]}.io.npz")
    print(f"{PTH_MODELS[fixture]} pth->ncnn fp32: max abs {max_abs:.3g}, rel {max_abs / max_mag:.2g}")
    assert max_abs <= 1e-4 * max_mag
    assert argmax == 1.0


def test_pth_metadata_names_config_and_checksum(body_t_pth_dir, shared):
    import hashlib
    meta = ModelMeta.load(find_model(str(body_t_pth_dir)))
    assert meta.source["file"] == "rtmpose-t_body8_256x192.pth"
    want = hashlib.sha256((shared / REF / "rtmpose-t_body8_256x192.pth").read_bytes()).hexdigest()
    assert meta.source["sha256"] == want
    assert "rtmpose-t" in meta.source["config"] and "body8" in meta.source["config"]
    assert any("inferred" in n for n in meta.source["notes"])
    assert meta.keypoints["name"] == "coco17" and meta.simcc_split_ratio == 2.0
    assert len(meta.fp32_layers) == 8   # two ScaleNorms x (L2 reduction, scale, clamp, x / norm)


def test_cli_converts_pth_with_named_config_and_prints_self_check(tmp_path, shared, capsys):
    from edgepose.cli import main
    src = shared / REF / "rtmpose-t_body8_256x192.pth"
    rc = main(["convert", str(src), "-o", str(tmp_path / "out"), "--config",
               "rtmpose-t_8xb256-420e_body8-256x192", "--name", "body",
               "--check-images", str(shared / "data/coco_kp17_val2017_merged")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "self-check on 8 COCO person crops" in out and "argmax agreement 100.0%" in out and "OK" in out
    written = sorted(p.name for p in (tmp_path / "out").iterdir() if p.name != MANIFEST)
    assert written == ["body.json", "body.ncnn.bin", "body.ncnn.param"]
