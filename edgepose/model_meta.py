"""The metadata file that travels beside every converted `.ncnn.param/.bin` pair.

One JSON file per model variant, `<stem>.json` next to `<stem>.ncnn.param` and
`<stem>.ncnn.bin`. Python (this module) and the C++ core (android_demo/core) both
read it, so every field is plain JSON: strings, numbers, lists, objects.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from .errors import BadModelError, EdgeposeError, ModelNotFoundError, WrongTaskError

FORMAT = "edgepose-model/1"


@dataclass
class ModelMeta:
    name: str                       # e.g. "rtmpose-t_wholebody_256x192"
    task: str                       # "pose" or "detect"
    param: str                      # file name of the .ncnn.param, relative to the json
    bin: str                        # file name of the .ncnn.bin, relative to the json
    input_blob: str                 # ncnn blob fed with the image
    input_width: int
    input_height: int
    # What the caller feeds: raw 8-bit pixels in this order and range when
    # normalization_folded is true (mean/std and channel swap live in the graph).
    channel_order: str = "bgr"
    pixel_range: List[float] = field(default_factory=lambda: [0.0, 255.0])
    normalization_folded: bool = True
    # mean/std as the official pipeline applies them, in the model's own channel
    # order (model_channel_order); kept for documentation and unfolded graphs.
    mean: List[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    std: List[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])
    model_channel_order: str = "rgb"
    # role -> blob name. Pose: {"simcc_x": ..., "simcc_y": ...}.
    # Detector: see edge_runtime/detector.py for the roles of each family.
    output_blobs: Dict[str, str] = field(default_factory=dict)
    precision: str = "fp32"         # fp32 | fp16 | int8 | mixed
    # Layers kept in fp32 when the device does fp16 arithmetic (also written into
    # the param file as ncnn feature masks, so stock ncnn honours them).
    fp32_layers: List[str] = field(default_factory=list)
    simcc_split_ratio: Optional[float] = None
    # Pose: {"name", "names", "skeleton", "flip_pairs", "sigmas", "parts"}.
    keypoints: Optional[Dict[str, Any]] = None
    # Detector: {"family": "rtmdet"|"yolox", "strides", "num_classes",
    #            "person_class", "pad_value", "keep_ratio", "score_threshold", "nms_iou"}.
    detector: Optional[Dict[str, Any]] = None
    # Where it came from: {"file", "sha256", "config", "tools": {...}}.
    source: Dict[str, Any] = field(default_factory=dict)
    # INT8 / mixed: {"method", "calibration_sha256", "float_layers": {...}, ...}.
    quantization: Optional[Dict[str, Any]] = None
    # sha256 of the .ncnn.param and .ncnn.bin as written ({file name: hex}); checked at load, so a
    # damaged or swapped weight file fails there (empty for models written before it existed).
    checksums: Dict[str, str] = field(default_factory=dict)
    format: str = FORMAT

    # -- paths -------------------------------------------------------------
    def param_path(self, json_path: str) -> str:
        return os.path.join(os.path.dirname(os.path.abspath(json_path)), self.param)

    def bin_path(self, json_path: str) -> str:
        return os.path.join(os.path.dirname(os.path.abspath(json_path)), self.bin)

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints["names"]) if self.keypoints else 0

    # -- io ----------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"

    def save(self, json_path: str) -> None:
        """Write atomically, never over a file edgepose did not write (edgepose.files)."""
        from .files import atomic_write
        atomic_write(json_path, self.to_json())

    @classmethod
    def from_dict(cls, data: Dict[str, Any], origin: str = "<dict>") -> "ModelMeta":
        if data.get("format") != FORMAT:
            raise EdgeposeError(
                f"{origin}: not an edgepose model file (format {data.get('format')!r}, expected {FORMAT!r})")
        known = set(cls.__dataclass_fields__)
        missing = [k for k in ("name", "task", "param", "bin", "input_blob", "input_width", "input_height")
                   if k not in data]
        if missing:
            raise EdgeposeError(f"{origin}: model metadata lacks {', '.join(missing)}")
        _check_fields(data, origin)
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def load(cls, json_path: str) -> "ModelMeta":
        try:
            with open(json_path) as f:
                data = json.load(f)
        except FileNotFoundError:
            raise EdgeposeError(f"{json_path}: model metadata file not found") from None
        except (OSError, ValueError) as e:
            raise EdgeposeError(f"{json_path}: cannot read model metadata ({e})") from None
        if not isinstance(data, dict):
            raise EdgeposeError(f"{json_path}: model metadata is not a JSON object")
        return cls.from_dict(data, origin=json_path)


_NUMBER = (int, float)
# JSON type of each field (None allowed where the field is Optional); checked on load so that a
# damaged file fails with its name here, not as a TypeError deep in the pipeline.
FIELD_TYPES: Dict[str, Tuple[Tuple[type, ...], bool]] = {
    "name": ((str,), False), "task": ((str,), False), "param": ((str,), False), "bin": ((str,), False),
    "input_blob": ((str,), False), "input_width": ((int,), False), "input_height": ((int,), False),
    "channel_order": ((str,), False), "pixel_range": ((list,), False), "normalization_folded": ((bool,), False),
    "mean": ((list,), False), "std": ((list,), False), "model_channel_order": ((str,), False),
    "output_blobs": ((dict,), False), "precision": ((str,), False), "fp32_layers": ((list,), False),
    "simcc_split_ratio": (_NUMBER, True), "keypoints": ((dict,), True), "detector": ((dict,), True),
    "source": ((dict,), False), "quantization": ((dict,), True), "checksums": ((dict,), False),
}
PRECISIONS = ("fp32", "fp16", "int8", "mixed")


def _check_fields(data: Dict[str, Any], origin: str) -> None:
    def bad(key: str, why: str) -> BadModelError:
        return BadModelError(f"{origin}: field {key!r} {why}; the metadata is damaged (re-convert the model)")

    for key, (types, optional) in FIELD_TYPES.items():
        if key not in data:
            continue
        v = data[key]
        if v is None and optional:
            continue
        if isinstance(v, bool) and bool not in types or not isinstance(v, types):
            raise bad(key, f"is {type(v).__name__} {str(v)[:40]!r}, expected {'/'.join(t.__name__ for t in types)}")
    for key in ("input_width", "input_height"):
        if not 8 <= data[key] <= 8192:
            raise bad(key, f"is {data[key]}, not a usable input size")
    for key in ("pixel_range", "mean", "std"):
        vals = data.get(key, [0.0, 1.0])
        if not all(isinstance(x, _NUMBER) and not isinstance(x, bool) and math.isfinite(x) for x in vals):
            raise bad(key, "holds a value that is not a finite number")
    if any(float(x) == 0.0 for x in data.get("std", [1.0])):
        raise bad("std", "holds 0")
    if data.get("task") not in ("pose", "detect"):
        raise bad("task", f"is {data.get('task')!r}, expected 'pose' or 'detect'")
    if data.get("precision", "fp32") not in PRECISIONS:
        raise bad("precision", f"is {data.get('precision')!r}, expected one of {', '.join(PRECISIONS)}")
    ratio = data.get("simcc_split_ratio")
    if ratio is not None and not (math.isfinite(ratio) and 0 < ratio <= 16):
        raise bad("simcc_split_ratio", f"is {ratio}")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in data.get("output_blobs", {}).items()):
        raise bad("output_blobs", "is not a map of role names to blob names")
    kp = data.get("keypoints")
    if kp is not None:
        names = kp.get("names")
        if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
            raise bad("keypoints.names", "is not a list of names")
        k = len(names)

        def index_pairs(v: Any) -> bool:
            return isinstance(v, list) and all(
                isinstance(p, list) and len(p) >= 2 and all(isinstance(i, int) and not isinstance(i, bool)
                                                           and 0 <= i < k for i in p[:2]) for p in v)
        for key in ("skeleton", "flip_pairs"):
            if kp.get(key) is not None and not index_pairs(kp[key]):
                raise bad(f"keypoints.{key}", f"is not a list of keypoint index pairs within 0..{k - 1}")
        parts = kp.get("parts") or {}
        if not (isinstance(parts, dict) and all(
                isinstance(v, list) and len(v) == 2 and all(isinstance(i, int) and not isinstance(i, bool) for i in v)
                and 0 <= v[0] <= v[1] <= k for v in parts.values())):
            raise bad("keypoints.parts", f"is not a map of part names to [start, stop] within 0..{k}")
        sig = kp.get("sigmas")
        if sig is not None and not (isinstance(sig, list) and len(sig) == k and all(
                isinstance(x, _NUMBER) and not isinstance(x, bool) and math.isfinite(x) and x > 0 for x in sig)):
            raise bad("keypoints.sigmas", f"is not {k} positive numbers")
    det = data.get("detector") or {}
    for key in ("score_threshold", "nms_iou"):
        v = det.get(key)
        if v is not None and not (isinstance(v, _NUMBER) and not isinstance(v, bool) and 0.0 <= v <= 1.0):
            raise bad(f"detector.{key}", f"is {v!r}, expected a number within 0..1")
    strides = det.get("strides")
    if strides is not None and not (isinstance(strides, list) and strides
                                    and all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in strides)):
        raise bad("detector.strides", f"is {strides!r}")
    for key, lo, hi in (("num_classes", 1, 100000), ("person_class", 0, 100000), ("pad_value", 0, 255)):
        v = det.get(key)
        if v is not None and not (isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi):
            raise bad(f"detector.{key}", f"is {v!r}")


def model_files(folder: str) -> List[Tuple[str, Dict[str, Any]]]:
    """(path, parsed JSON) of every edgepose metadata file in a folder, sorted by name."""
    found = []
    for fn in sorted(os.listdir(folder)):
        full = os.path.join(folder, fn)
        if not (fn.endswith(".json") and os.path.isfile(full)):
            continue
        try:
            with open(full) as f:
                data = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("format") == FORMAT:
            found.append((full, data))
    return found


def find_model(path: str, precision: Optional[str] = None, task: Optional[str] = None) -> str:
    """Resolve a user's model argument (a .json, a .param, or a folder) to a metadata path.

    In a folder holding several variants, pick the one whose precision matches
    (fp16 runs the fp32 files with fp16 storage/arithmetic when no fp16 file exists).
    """
    if os.path.isfile(path):
        if path.endswith(".json"):
            return path
        if path.endswith(".ncnn.param") or path.endswith(".ncnn.bin"):
            cand = path[: -len(".ncnn.param" if path.endswith(".param") else ".ncnn.bin")] + ".json"
            if os.path.isfile(cand):
                return cand
            raise ModelNotFoundError(f"{path}: no metadata file {os.path.basename(cand)} beside it "
                                f"(models come from `edgepose convert`)")
        raise EdgeposeError(f"{path}: not a model (expected a folder, .json or .ncnn.param)")
    if not os.path.isdir(path):
        raise ModelNotFoundError(f"{path}: model not found")
    metas, other_tasks = [], set()
    for full, data in model_files(path):
        if task is None or data.get("task") == task:
            metas.append((full, data.get("precision", "fp32")))
        else:
            other_tasks.add(str(data.get("task")))
    if not metas:
        if other_tasks:
            raise WrongTaskError(f"{path}: folder holds no converted {task} model "
                                f"(only {', '.join(sorted(other_tasks))} models)")
        raise ModelNotFoundError(f"{path}: folder holds no converted model (no {FORMAT} .json file)")
    if precision is None:
        for full, prec in metas:
            if prec == "fp32":
                return full
        return metas[0][0]
    for full, prec in metas:
        if prec == precision:
            return full
    if precision == "fp16":
        for full, prec in metas:
            if prec == "fp32":
                return full
    if precision == "int8":                 # a mixed model is an int8 model with some float layers
        for full, prec in metas:
            if prec == "mixed":
                return full
    have = ", ".join(sorted({p for _, p in metas}))
    raise ModelNotFoundError(f"{path}: no {precision} variant (have: {have}); "
                        f"make one with `edgepose quantize` or `edgepose convert --fp16`")
