"""The metadata file that travels beside every converted `.ncnn.param/.bin` pair.

One JSON file per model variant, `<stem>.json` next to `<stem>.ncnn.param` and
`<stem>.ncnn.bin`. Python (this module) and the C++ core (android_demo/core) both
read it, so every field is plain JSON: strings, numbers, lists, objects.
"""
from __future__ import annotations

import json
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

    def save(self, json_path: str) -> None:
        """Write atomically: a reader never sees a half-written file."""
        tmp = json_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.to_dict(), f, indent=1)
            f.write("\n")
        os.replace(tmp, json_path)

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
