"""Our model definitions have exactly the official state-dict keys and shapes."""
import json

import pytest

import torch

from edgepose.convert.models.configs import get_spec, list_configs  # noqa: E402
from edgepose.convert.models.pose_model import build_pose_model  # noqa: E402
from edgepose.convert.models.rtmdet import build_rtmdet  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def meta_state_shapes(spec):
    with torch.device("meta"):
        model = build_pose_model(spec) if spec.task == "pose" else build_rtmdet(spec)
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def test_all_official_configs_match_keys_json(shared):
    ref = json.loads((shared / "reference/official/keys.json").read_text())
    assert len(ref) == 14
    for name, entry in ref.items():
        spec = get_spec(name)
        # the official config path in keys.json resolves to the same spec
        assert get_spec(entry["config"]) is spec, name
        assert [spec.input_size[1], spec.input_size[0]] == entry["input_hw"], name
        assert spec.num_keypoints == entry["num_keypoints"], name
        assert spec.simcc_split_ratio == entry["simcc_split_ratio"], name
        got = meta_state_shapes(spec)
        want = entry["state_dict"]
        missing = [k for k in want if k not in got]
        extra = [k for k in got if k not in want]
        wrong = [(k, got[k], want[k]) for k in want if k in got and got[k] != want[k]]
        assert not missing and not extra and not wrong, (name, missing[:3], extra[:3], wrong[:3])
        assert list(got) == list(want), name  # same order as the official modules register them


def test_every_registered_config_builds_consistently():
    for name in list_configs():
        spec = get_spec(name)
        shapes = meta_state_shapes(spec)
        if spec.task == "pose":
            kx, ky = spec.simcc_lengths
            assert shapes["head.cls_x.weight"][0] == kx and shapes["head.cls_y.weight"][0] == ky, name
            fw, fh = spec.input_size[0] // 32, spec.input_size[1] // 32
            assert shapes["head.mlp.1.weight"][1] == fw * fh, name
            assert spec.channel_order == "rgb" and spec.keypoint_set, name
        else:
            assert shapes["bbox_head.rtm_cls.0.weight"][0] == spec.num_classes, name
            assert spec.channel_order == "bgr", name


def test_name_forms_resolve_to_one_spec():
    spec = get_spec("rtmpose-m_wholebody_256x192")
    assert get_spec("rtmpose-m_8xb64-270e_coco-wholebody-256x192") is spec
    assert get_spec("rtmpose-m_8xb64-270e_coco-ubody-wholebody-256x192") is spec
    assert get_spec("configs/wholebody_2d_keypoint/rtmpose/ubody/rtmpose-m_8xb64-270e_coco-ubody-wholebody-256x192.py") is spec
    assert get_spec("rtmpose-m-wholebody") is spec          # zoo name
    assert get_spec("dwpose-l").input_size == (192, 256)   # zoo name of a DWPose model


def test_unknown_config_is_a_clear_error():
    from edgepose.errors import EdgeposeError
    with pytest.raises(EdgeposeError, match="unknown model config 'rtmpose-q'"):
        get_spec("rtmpose-q")


def test_rtmdet_shared_head_convs_appear_under_every_level():
    model = build_rtmdet(get_spec("rtmdet-tiny"))
    sd = model.state_dict()
    assert sd["bbox_head.cls_convs.2.1.conv.weight"].data_ptr() == sd["bbox_head.cls_convs.0.1.conv.weight"].data_ptr()
    assert sd["bbox_head.cls_convs.2.1.bn.weight"].data_ptr() != sd["bbox_head.cls_convs.0.1.bn.weight"].data_ptr()
    nano = build_rtmdet(get_spec("rtmdet-nano-person")).state_dict()
    assert nano["bbox_head.cls_convs.1.0.depthwise_conv.conv.weight"].data_ptr() != \
        nano["bbox_head.cls_convs.0.0.depthwise_conv.conv.weight"].data_ptr()


def test_rtmdet_outputs_per_level_shapes():
    spec = get_spec("rtmdet-nano-person")
    with torch.no_grad():
        outs = build_rtmdet(spec)(torch.zeros(1, 3, 320, 320))
    assert [tuple(o.shape) for o in outs] == [(1, 1, 40, 40), (1, 1, 20, 20), (1, 1, 10, 10),
                                              (1, 4, 40, 40), (1, 4, 20, 20), (1, 4, 10, 10)]
