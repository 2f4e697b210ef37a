"""Registry: official config names -> ArchSpec (everything needed to build the model
and to pre-process its input the way the official pipeline does).

Short names are `<model>-<size>_<dataset>_<h>x<w>` (the keys.json naming, e.g.
`rtmpose-t_wholebody_256x192`); each spec also answers to its official config
file stem (e.g. `rtmpose-t_8xb64-270e_coco-ubody-wholebody-256x192`) and aliases.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Tuple

from edgepose.errors import EdgeposeError
from edgepose.keypoint_sets import SET_BY_COUNT

# (deepen_factor, widen_factor) of the released sizes.
SIZES = {
    "nano": (0.33, 0.25),
    "t": (0.167, 0.375),
    "tiny": (0.167, 0.375),
    "s": (0.33, 0.5),
    "m": (0.67, 0.75),
    "l": (1.0, 1.0),
    "x": (1.33, 1.25),
}

POSE_MEAN_RGB = (123.675, 116.28, 103.53)
POSE_STD_RGB = (58.395, 57.12, 57.375)
DET_MEAN_BGR = (103.53, 116.28, 123.675)
DET_STD_BGR = (57.375, 57.12, 58.395)



@dataclass(frozen=True)
class ArchSpec:
    name: str                      # short name, e.g. "rtmpose-t_wholebody_256x192"
    task: str                      # "pose" | "detect"
    family: str                    # "rtmpose" | "rtmw" | "rtmdet"
    size: str                      # "t", "s", "m", "l", "x", "nano", "tiny"
    deepen_factor: float
    widen_factor: float
    input_size: Tuple[int, int]    # (w, h) of the network input
    official_config: str = ""      # official config file stem
    config_path: str = ""          # path inside the official repo's configs/
    aliases: Tuple[str, ...] = ()
    # pose
    num_keypoints: int = 0
    keypoint_set: Optional[str] = None
    simcc_split_ratio: float = 2.0
    final_layer_kernel_size: int = 7
    hidden_dims: int = 256
    gau_s: int = 128
    gau_expansion: int = 2
    # pre-processing as the official pipeline does it, in the model's own channel order
    mean: Tuple[float, float, float] = POSE_MEAN_RGB
    std: Tuple[float, float, float] = POSE_STD_RGB
    channel_order: str = "rgb"     # channel order the network expects
    # detector
    num_classes: int = 0
    use_depthwise: bool = False
    neck_out_channels: int = 0
    num_csp_blocks: int = 1
    feat_channels: int = 0
    share_conv: bool = True
    exp_on_reg: bool = False
    strides: Tuple[int, ...] = (8, 16, 32)
    pad_value: float = 114.0
    score_threshold: float = 0.05
    nms_iou: float = 0.6

    @property
    def simcc_lengths(self) -> Tuple[int, int]:
        return int(self.input_size[0] * self.simcc_split_ratio), int(self.input_size[1] * self.simcc_split_ratio)

    def summary(self) -> str:
        w, h = self.input_size
        if self.task == "pose":
            return (f"{self.family} size {self.size} (deepen {self.deepen_factor}, widen {self.widen_factor}), "
                    f"input {w}x{h} (w x h), {self.num_keypoints} keypoints ({self.keypoint_set})")
        return (f"{self.family} size {self.size} (deepen {self.deepen_factor}, widen {self.widen_factor}), "
                f"input {w}x{h}, {self.num_classes} classes")


def _pose(name: str, family: str, size: str, wh: Tuple[int, int], num_kp: int, config_path: str,
          aliases: Tuple[str, ...] = ()) -> ArchSpec:
    d, w = SIZES[size]
    stem = config_path.rsplit("/", 1)[-1][:-3]
    return ArchSpec(name=name, task="pose", family=family, size=size, deepen_factor=d, widen_factor=w,
                    input_size=wh, official_config=stem, config_path=config_path, aliases=aliases,
                    num_keypoints=num_kp, keypoint_set=SET_BY_COUNT[num_kp])


def _registry() -> List[ArchSpec]:
    specs: List[ArchSpec] = []
    W256, W384, SQ = (192, 256), (288, 384), (256, 256)
    wb = "wholebody_2d_keypoint/rtmpose/ubody/"
    for s in "tsmlx":
        specs.append(_pose(f"rtmpose-{s}_wholebody_256x192", "rtmpose", s, W256, 133,
                           f"{wb}rtmpose-{s}_8xb64-270e_coco-ubody-wholebody-256x192.py",
                           (f"rtmpose-{s}_8xb64-270e_coco-wholebody-256x192",) if s in "ml" else ()))
    for s in "lx":
        specs.append(_pose(f"rtmpose-{s}_wholebody_384x288", "rtmpose", s, W384, 133,
                           f"{wb}rtmpose-{s}_8xb32-270e_coco-ubody-wholebody-384x288.py",
                           (f"rtmpose-{s}_8xb32-270e_coco-wholebody-384x288",)))
    # DWPose: distilled RTMPose whole-body weights, the same architectures.
    for s in "tsml":
        specs.append(_pose(f"dwpose-{s}_wholebody_256x192", "rtmpose", s, W256, 133,
                           f"{wb}rtmpose-{s}_8xb64-270e_coco-ubody-wholebody-256x192.py"))
    specs.append(_pose("dwpose-l_wholebody_384x288", "rtmpose", "l", W384, 133,
                       f"{wb}rtmpose-l_8xb32-270e_coco-ubody-wholebody-384x288.py"))
    c14 = "wholebody_2d_keypoint/rtmpose/cocktail14/"
    specs.append(_pose("rtmw-m_wholebody_256x192", "rtmw", "m", W256, 133, f"{c14}rtmw-m_8xb1024-270e_cocktail14-256x192.py"))
    specs.append(_pose("rtmw-l_wholebody_256x192", "rtmw", "l", W256, 133, f"{c14}rtmw-l_8xb1024-270e_cocktail14-256x192.py"))
    specs.append(_pose("rtmw-x_wholebody_256x192", "rtmw", "x", W256, 133, f"{c14}rtmw-x_8xb704-270e_cocktail14-256x192.py"))
    specs.append(_pose("rtmw-l_wholebody_384x288", "rtmw", "l", W384, 133, f"{c14}rtmw-l_8xb320-270e_cocktail14-384x288.py"))
    specs.append(_pose("rtmw-x_wholebody_384x288", "rtmw", "x", W384, 133, f"{c14}rtmw-x_8xb320-270e_cocktail14-384x288.py"))
    b8 = "body_2d_keypoint/rtmpose/body8/"
    for s in "tsml":
        specs.append(_pose(f"rtmpose-{s}_body8_256x192", "rtmpose", s, W256, 17,
                           f"{b8}rtmpose-{s}_8xb256-420e_body8-256x192.py",
                           (f"rtmpose-{s}_8xb256-420e_coco-256x192", f"rtmpose-{s}_8xb256-420e_aic-coco-256x192")))
    for s in "ml":
        specs.append(_pose(f"rtmpose-{s}_body8_384x288", "rtmpose", s, W384, 17,
                           f"{b8}rtmpose-{s}_8xb256-420e_body8-384x288.py",
                           (f"rtmpose-{s}_8xb256-420e_aic-coco-384x288",)))
    for s, batch in (("t", "8xb1024"), ("s", "8xb1024"), ("m", "8xb512"), ("l", "8xb512")):
        specs.append(_pose(f"rtmpose-{s}_halpe26_256x192", "rtmpose", s, W256, 26,
                           f"{b8}rtmpose-{s}_{batch}-700e_body8-halpe26-256x192.py"))
    for s, batch in (("m", "8xb512"), ("l", "8xb512"), ("x", "8xb256")):
        specs.append(_pose(f"rtmpose-{s}_halpe26_384x288", "rtmpose", s, W384, 26,
                           f"{b8}rtmpose-{s}_{batch}-700e_body8-halpe26-384x288.py"))
    specs.append(_pose("rtmpose-m_hand5_256x256", "rtmpose", "m", SQ, 21,
                       "hand_2d_keypoint/rtmpose/hand5/rtmpose-m_8xb256-210e_hand5-256x256.py",
                       ("rtmpose-m_8xb32-210e_coco-wholebody-hand-256x256",)))
    for s in "tsm":
        specs.append(_pose(f"rtmpose-{s}_face6_256x256", "rtmpose", s, SQ, 106,
                           f"face_2d_keypoint/rtmpose/face6/rtmpose-{s}_8xb256-120e_face6-256x256.py",
                           ("rtmpose-m_8xb64-120e_lapa-256x256",) if s == "m" else ()))
    specs.append(_pose("rtmpose-m_wholebody-face_256x256", "rtmpose", "m", SQ, 68,
                       "face_2d_keypoint/rtmpose/coco_wholebody_face/rtmpose-m_8xb32-60e_coco-wholebody-face-256x256.py"))
    # Person/object detectors (mmdet CSPNeXt + CSPNeXtPAFPN + RTMDetSepBNHead).
    det = dict(task="detect", family="rtmdet", mean=DET_MEAN_BGR, std=DET_STD_BGR, channel_order="bgr")
    d, w = SIZES["nano"]
    specs.append(ArchSpec(name="rtmdet-nano-person", size="nano", deepen_factor=d, widen_factor=w,
                          input_size=(320, 320), official_config="rtmdet_nano_320-8xb32_coco-person",
                          config_path="projects/rtmpose/rtmdet/person/rtmdet_nano_320-8xb32_coco-person.py",
                          num_classes=1, use_depthwise=True, neck_out_channels=64, num_csp_blocks=1,
                          feat_channels=64, share_conv=False, exp_on_reg=False,
                          score_threshold=0.05, nms_iou=0.6, **det))
    d, w = SIZES["tiny"]
    specs.append(ArchSpec(name="rtmdet-tiny", size="tiny", deepen_factor=d, widen_factor=w,
                          input_size=(640, 640), official_config="rtmdet_tiny_8xb32-300e_coco",
                          config_path="configs/rtmdet/rtmdet_tiny_8xb32-300e_coco.py",
                          num_classes=80, neck_out_channels=96, num_csp_blocks=1, feat_channels=96,
                          share_conv=True, exp_on_reg=False, score_threshold=0.001, nms_iou=0.65, **det))
    d, w = SIZES["m"]
    specs.append(ArchSpec(name="rtmdet-m-person", size="m", deepen_factor=d, widen_factor=w,
                          input_size=(640, 640), official_config="rtmdet_m_640-8xb32_coco-person",
                          config_path="projects/rtmpose/rtmdet/person/rtmdet_m_640-8xb32_coco-person.py",
                          num_classes=1, neck_out_channels=192, num_csp_blocks=2, feat_channels=192,
                          share_conv=True, exp_on_reg=True, score_threshold=0.05, nms_iou=0.6, **det))
    return specs


_SPECS: Dict[str, ArchSpec] = {s.name: s for s in _registry()}
_LOOKUP: Dict[str, str] = {}
for _s in _SPECS.values():
    # DWPose shares its official config with RTMPose whole-body: the config name
    # resolves to the RTMPose entry (registered first).
    for _n in (_s.name, _s.official_config, *_s.aliases):
        _LOOKUP.setdefault(_n.lower(), _s.name)


def _normalise(name: str) -> str:
    n = name.strip().replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in (".py", ".pth"):
        if n.endswith(suffix):
            n = n[: -len(suffix)]
    return n.lower()


def list_configs(task: Optional[str] = None) -> List[str]:
    return [n for n, s in _SPECS.items() if task is None or s.task == task]


def find_spec(name: str) -> Optional[ArchSpec]:
    """The spec for a short name, official config name/path, or alias; None if unknown."""
    key = _normalise(name)
    if key in _LOOKUP:
        return _SPECS[_LOOKUP[key]]
    return None


def get_spec(name: str) -> ArchSpec:
    spec = find_spec(name)
    if spec is None:
        # Zoo names map to a config in convert/zoo.json; resolve lazily (no cycle at import).
        try:
            from edgepose.convert.zoo import load_manifest
            entry = load_manifest().get(name)
        except Exception:
            entry = None
        if entry and entry.get("config"):
            spec = find_spec(entry["config"])
    if spec is None:
        raise EdgeposeError(f"unknown model config {name!r}; known: {', '.join(list_configs())} "
                            "(official config names such as rtmpose-m_8xb64-270e_coco-wholebody-256x192 work too)")
    return spec


def custom_spec(base: ArchSpec, **changes) -> ArchSpec:
    return replace(base, **changes)
