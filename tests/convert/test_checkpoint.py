"""load_checkpoint: official layout, strict loading, architecture inference, refusals."""
import os

import numpy as np
import pytest

import torch

from edgepose.convert.checkpoint import LoadedModel, load_checkpoint  # noqa: E402
from edgepose.convert.models.configs import get_spec  # noqa: E402
from edgepose.convert.models.pose_model import build_pose_model  # noqa: E402
from edgepose.convert.models.rtmdet import build_rtmdet  # noqa: E402
from edgepose.errors import EdgeposeError  # noqa: E402

REF = "reference/official"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def wholebody_sd(shared):
    return torch.load(shared / REF / "rtmpose-t_wholebody_256x192.pth", weights_only=True)["state_dict"]


@pytest.mark.parametrize("stem", ["rtmpose-t_wholebody_256x192", "rtmpose-t_body8_256x192"])
def test_official_outputs_reproduced(shared, stem):
    loaded = load_checkpoint(shared / REF / f"{stem}.pth")
    assert isinstance(loaded, LoadedModel)
    assert loaded.config == stem and loaded.inferred and "meta" in loaded.note
    assert not loaded.model.training
    io = np.load(shared / REF / f"{stem}.io.npz")
    with torch.no_grad():
        sx, sy = loaded.model(torch.from_numpy(io["input"]))
    for got, want in ((sx.numpy(), io["simcc_x"]), (sy.numpy(), io["simcc_y"])):
        assert got.shape == want.shape
        rel = np.abs(got - want).max() / np.abs(want).max()
        assert rel < 1e-5, rel
        assert (got.argmax(-1) == want.argmax(-1)).all()


def test_config_name_forms(shared):
    path = shared / REF / "rtmpose-t_body8_256x192.pth"
    for name in ("rtmpose-t_8xb256-420e_body8-256x192", "rtmpose-t_body8_256x192", "rtmpose-t",
                 "body_2d_keypoint/rtmpose/body8/rtmpose-t_8xb256-420e_body8-256x192.py"):
        loaded = load_checkpoint(path, name)
        assert loaded.config == "rtmpose-t_body8_256x192" and not loaded.inferred


def test_wrong_config_names_file_and_first_mismatch(shared):
    path = shared / REF / "rtmpose-t_body8_256x192.pth"
    with pytest.raises(EdgeposeError) as e:
        load_checkpoint(path, "rtmpose-m_8xb64-270e_coco-wholebody-256x192")
    msg = str(e.value)
    assert str(path) in msg and "rtmpose-m_wholebody_256x192" in msg
    assert "backbone.stem.0.conv.weight: checkpoint [12, 3, 3, 3] vs model [24, 3, 3, 3]" in msg
    assert "looks like rtmpose-t_body8_256x192" in msg


def test_same_size_other_keypoints_is_refused(shared):
    # t-size backbone fits; the head does not (17 vs 133 keypoints)
    with pytest.raises(EdgeposeError, match=r"head\.final_layer\.weight: checkpoint \[17"):
        load_checkpoint(shared / REF / "rtmpose-t_body8_256x192.pth", "rtmpose-t_wholebody_256x192")


def test_inferred_from_shapes_without_meta(tmp_path, wholebody_sd):
    # DataParallel-style prefixes, no meta: the official loader strips `module.`.
    path = tmp_path / "bare.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in wholebody_sd.items()}}, path)
    loaded = load_checkpoint(path)
    assert loaded.config == "rtmpose-t_wholebody_256x192" and loaded.inferred
    assert "state-dict shapes" in loaded.note and "133 keypoints" in loaded.note
    ref = build_pose_model(get_spec("rtmpose-t_wholebody_256x192"))
    ref.load_state_dict(wholebody_sd)
    x = torch.randn(1, 3, 256, 192)
    with torch.no_grad():
        assert torch.equal(loaded.model(x)[0], ref(x)[0])


def test_plain_state_dict_and_student_weights(tmp_path, wholebody_sd):
    plain = tmp_path / "plain.pth"
    torch.save(dict(wholebody_sd), plain)
    assert load_checkpoint(plain).config == "rtmpose-t_wholebody_256x192"
    distilled = tmp_path / "dis.pth"
    sd = {"student." + k: v for k, v in wholebody_sd.items()}
    sd["teacher.backbone.stem.0.conv.weight"] = torch.zeros(40, 3, 3, 3)
    torch.save({"state_dict": sd}, distilled)
    loaded = load_checkpoint(distilled)
    assert loaded.config == "rtmpose-t_wholebody_256x192" and "student" in loaded.note


@pytest.mark.parametrize("zipped", [True, False])
def test_numpy_metadata_is_accepted(tmp_path, wholebody_sd, zipped):
    # Real OpenMMLab checkpoints keep dataset_meta with numpy arrays beside the weights.
    path = tmp_path / "np.pth"
    torch.save({"meta": {"dataset_meta": {"sigmas": np.array([0.026, 0.025]), "n": np.int64(3)},
                         "experiment_name": "rtmpose-t_8xb64-270e_coco-ubody-wholebody-256x192_20230101_120000"},
                "state_dict": wholebody_sd}, path, _use_new_zipfile_serialization=zipped)
    loaded = load_checkpoint(path)
    assert loaded.config == "rtmpose-t_wholebody_256x192" and "experiment_name" in loaded.note


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("zipped", [True, False])
def test_code_running_pickle_is_refused(tmp_path, zipped):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "x": _RunsCode(str(marker))}, path,
               _use_new_zipfile_serialization=zipped)
    with pytest.raises(EdgeposeError, match="refused.*would import .*open"):
        load_checkpoint(path)
    assert not marker.exists()


def test_truncated_and_foreign_files(tmp_path, shared):
    data = (shared / REF / "rtmpose-t_body8_256x192.pth").read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(EdgeposeError, match=r"cut\.pth: not a readable PyTorch checkpoint"):
        load_checkpoint(cut)
    legacy = tmp_path / "legacy.pth"
    torch.save({"state_dict": {"backbone.x": torch.zeros(3)}}, legacy, _use_new_zipfile_serialization=False)
    cut_legacy = tmp_path / "cut_legacy.pth"
    cut_legacy.write_bytes(legacy.read_bytes()[:60])
    with pytest.raises(EdgeposeError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(cut_legacy)
    with pytest.raises(EdgeposeError, match=r"\.onnx: not a readable PyTorch checkpoint"):
        load_checkpoint(shared / REF / "rtmpose-t_body8_256x192.onnx")
    with pytest.raises(EdgeposeError, match="checkpoint file not found"):
        load_checkpoint(tmp_path / "missing.pth")
    with pytest.raises(EdgeposeError, match="cannot tell the architecture"):
        load_checkpoint(legacy)
    other = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], other)
    with pytest.raises(EdgeposeError, match="not a model checkpoint"):
        load_checkpoint(other)


def _saved(model, path):
    torch.save({"meta": {}, "state_dict": model.state_dict()}, path)
    return path


def test_detectors_inferred(tmp_path):
    torch.manual_seed(0)
    nano = load_checkpoint(_saved(build_rtmdet(get_spec("rtmdet-nano-person")), tmp_path / "nano.pth"))
    assert nano.config == "rtmdet-nano-person" and nano.spec.task == "detect"
    tiny = load_checkpoint(_saved(build_rtmdet(get_spec("rtmdet-tiny")), tmp_path / "tiny.pth"))
    assert tiny.config == "rtmdet-tiny" and tiny.spec.share_conv


def test_unofficial_keypoint_count_builds_a_matching_spec(tmp_path):
    # e.g. a CrowdPose (14 keypoints) RTMPose-s: no entry in our registry, inferred and loaded.
    spec = get_spec("rtmpose-s_body8_256x192")
    from edgepose.convert.models.configs import custom_spec
    model = build_pose_model(custom_spec(spec, num_keypoints=14, keypoint_set=None))
    loaded = load_checkpoint(_saved(model, tmp_path / "crowd.pth"))
    assert loaded.spec.num_keypoints == 14 and loaded.spec.size == "s"
    assert "no official config" in loaded.note
    assert os.path.basename(loaded.path) == "crowd.pth"


def test_training_bookkeeping_loads_without_importing_it(tmp_path, monkeypatch, wholebody_sd):
    # An unpublished training checkpoint pickles OpenMMLab objects (message hub buffers);
    # they load as inert stand-ins and the framework is never imported.
    import sys
    import types

    class HistoryBuffer:
        def __init__(self):
            self.log = np.array([1.0, 2.0])
    HistoryBuffer.__module__ = "mmengine.logging.history_buffer"
    HistoryBuffer.__qualname__ = "HistoryBuffer"
    for name in ("mmengine", "mmengine.logging", "mmengine.logging.history_buffer"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    sys.modules["mmengine.logging.history_buffer"].HistoryBuffer = HistoryBuffer
    path = tmp_path / "train.pth"
    torch.save({"state_dict": wholebody_sd, "message_hub": {"loss": HistoryBuffer()}}, path)
    for name in ("mmengine", "mmengine.logging", "mmengine.logging.history_buffer"):
        monkeypatch.delitem(sys.modules, name)
    assert load_checkpoint(path).config == "rtmpose-t_wholebody_256x192"
    assert "mmengine" not in sys.modules
