"""Load an official OpenMMLab checkpoint (.pth) into our model definitions.

Safety: files are read with torch's weights-only unpickler. Official checkpoints may
carry numpy arrays in `meta['dataset_meta']` (allowed: plain data) and, in unpublished
training checkpoints, OpenMMLab bookkeeping objects (replaced by inert stand-ins, never
imported). Anything else that a pickle would import or call is refused.
"""
from __future__ import annotations

import math
import os
import pickle
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn as nn

from edgepose.errors import EdgeposeError
from edgepose.keypoint_sets import set_name_for_count

from .models.configs import (SIZES, ArchSpec, custom_spec, find_spec, get_spec,
                             list_configs)
from .models.cspnext import stage_channels, stage_depths
from .models.pose_model import build_pose_model
from .models.rtmdet import build_rtmdet

ZIP_MAGIC = b"PK\x03\x04"
LEGACY_MAGIC = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19"  # pickled torch.save magic number
# Classes of OpenMMLab training bookkeeping that may sit beside the weights; they are
# loaded as inert stand-ins (nothing from those packages is imported or run).
FOREIGN_PREFIXES = ("mmengine.", "mmcv.", "mmpose.", "mmdet.")


@dataclass
class LoadedModel:
    model: nn.Module          # eval mode, weights loaded with strict=True
    spec: ArchSpec
    config: str               # spec.name
    inferred: bool            # True when the architecture was not named by the caller
    note: str                 # how the architecture was chosen, for the user
    path: str = ""
    meta: Dict[str, Any] = field(default_factory=dict)


class _ForeignObject:
    """Inert stand-in for a bookkeeping class of the training framework."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state):
        self.state = state


def _numpy_globals() -> List[Any]:
    import numpy as np
    found: List[Any] = [np.ndarray, np.dtype]
    for modname in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            mod = __import__(modname, fromlist=["_reconstruct"])
        except ImportError:
            continue
        found += [getattr(mod, n) for n in ("_reconstruct", "scalar") if hasattr(mod, n)]
        break
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        found += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    return found


def _global_name(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def _refused(path: str, what: str) -> EdgeposeError:
    return EdgeposeError(
        f"{path}: refused: the file holds pickled objects the safe (weights-only) loader does not accept "
        f"({what}); loading it could run code. If you trust its source, re-save just the weights "
        f"(torch.save({{'state_dict': ckpt['state_dict']}}, 'clean.pth')) and pass that file")


def _damaged(path: str, why: str) -> EdgeposeError:
    return EdgeposeError(f"{path}: not a readable PyTorch checkpoint ({why}); the file may be truncated "
                         f"or not a .pth at all: download it again (edgepose fetch) or pass the right file")


def read_checkpoint_file(path: str) -> Any:
    """torch.load in weights-only mode, with clear errors for the ways it fails."""
    if not os.path.isfile(path):
        raise EdgeposeError(f"{path}: checkpoint file not found")
    with open(path, "rb") as f:
        head = f.read(len(LEGACY_MAGIC))
    if not (head.startswith(ZIP_MAGIC) or head == LEGACY_MAGIC):
        raise _damaged(path, "neither torch.save's zip format nor its legacy format")
    import numpy as np
    allowed: List[Any] = []
    numpy_names = {_global_name(g) for g in _numpy_globals()}

    def allow(name: str) -> bool:
        if name in numpy_names:
            # numpy arrays also need dtype classes a scan does not list: allow the whole set.
            if np.ndarray not in allowed:
                allowed.extend(_numpy_globals())
            return True
        if name.startswith(FOREIGN_PREFIXES):
            allowed.append((_ForeignObject, name))
            return True
        return False

    if head.startswith(ZIP_MAGIC):
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception as e:  # a zip that cannot be read: truncated or damaged
            raise _damaged(path, _first_line(e)) from None
        for name in unsafe:
            if not allow(name):
                raise _refused(path, f"it would import {name}")
    seen = set()
    while True:  # legacy files cannot be scanned up front: allow acceptable globals as met
        try:
            with torch.serialization.safe_globals(allowed):
                return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            msg = str(e)
            m = re.search(r"GLOBAL (\S+)", msg)
            # A truncated legacy file can stop inside a global's name ("coll."): that is damage.
            if not m or not re.fullmatch(r"[A-Za-z_][\w.]*\.[A-Za-z_]\w*", m.group(1)):
                raise _damaged(path, _last_error_line(msg)) from None
            name = m.group(1)
            if name in seen or not allow(name):
                raise _refused(path, f"it would import {name}") from None
            seen.add(name)
        except (RuntimeError, EOFError, ValueError, OSError, KeyError, IndexError) as e:
            raise _damaged(path, _first_line(e)) from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    line = text.splitlines()[0] if text else type(e).__name__
    return line.split(". ")[0][:200]


def _last_error_line(msg: str) -> str:
    lines = [ln.strip() for ln in msg.splitlines() if ln.strip() and "documentation" not in ln]
    return (lines[-1] if lines else "unpickling failed")[:200]


def extract_state_dict(ckpt: Any, path: str) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any], List[str]]:
    """(state_dict, meta, notes) as the official loaders see it: `state_dict` if present,
    `module.` prefixes stripped; a distillation checkpoint keeps its `student.` weights."""
    notes: List[str] = []
    if not isinstance(ckpt, dict):
        raise EdgeposeError(f"{path}: not a model checkpoint (holds a {type(ckpt).__name__}, expected a dict "
                            "of tensors or {'meta', 'state_dict'})")
    meta = ckpt.get("meta") if isinstance(ckpt.get("meta"), dict) else {}
    sd = ckpt.get("state_dict", ckpt)
    if not isinstance(sd, dict):
        raise EdgeposeError(f"{path}: 'state_dict' is a {type(sd).__name__}, not a dict of tensors")
    tensors = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise EdgeposeError(f"{path}: no weight tensors found (keys: {', '.join(map(str, list(sd)[:5]))})")
    tensors = {re.sub(r"^module\.", "", k): v for k, v in tensors.items()}
    if any(k.startswith("student.") for k in tensors):
        tensors = {k[len("student."):]: v for k, v in tensors.items() if k.startswith("student.")}
        notes.append("distillation checkpoint: using its student weights")
    dropped = [k for k in tensors if k.startswith("data_preprocessor.")]
    for k in dropped:
        del tensors[k]
    return tensors, meta, notes


# -- architecture inference ----------------------------------------------------------

def _blocks_per_stage(sd: Dict[str, torch.Tensor]) -> Tuple[int, ...]:
    counts = []
    for i in range(1, 5):
        idx = {int(m.group(1)) for k in sd for m in [re.match(rf"backbone\.stage{i}\.\d+\.blocks\.(\d+)\.", k)] if m}
        counts.append(len(idx))
    return tuple(counts)


def _size_from_backbone(sd: Dict[str, torch.Tensor], path: str) -> str:
    key = "backbone.stem.2.conv.weight"
    if key not in sd:
        raise EdgeposeError(f"{path}: no CSPNeXt backbone in the checkpoint ({key} missing); "
                            "not an RTMPose/RTMW/RTMDet checkpoint?")
    width, depths = sd[key].shape[0], _blocks_per_stage(sd)
    for size, (d, w) in SIZES.items():
        if stage_channels(w)[0] == width and stage_depths(d) == depths:
            return size
    raise EdgeposeError(f"{path}: backbone (stem width {width}, blocks per stage {depths}) matches no released "
                        f"CSPNeXt size ({', '.join(SIZES)}); pass --config")


def _infer_pose(sd, path: str) -> Tuple[ArchSpec, str]:
    family = "rtmw" if "neck.reduce_layers.0.conv.weight" in sd else "rtmpose"
    size = _size_from_backbone(sd, path)
    final = sd.get("head.final_layer.conv.weight" if family == "rtmw" else "head.final_layer.weight")
    try:
        num_kp = final.shape[0]
        len_x, len_y = sd["head.cls_x.weight"].shape[0], sd["head.cls_y.weight"].shape[0]
        flatten = sd["head.mlp.1.weight"].shape[1]
    except (AttributeError, KeyError) as e:
        raise EdgeposeError(f"{path}: pose head incomplete ({e} missing); not an RTMPose/RTMW checkpoint?") from None
    # simcc lengths are (w, h) * ratio and the head flattens a (w/32) x (h/32) map.
    ratio = math.sqrt(len_x * len_y / (1024.0 * flatten))
    ratio = round(ratio * 4) / 4
    wh = (int(round(len_x / ratio)), int(round(len_y / ratio)))
    why = (f"from state-dict shapes: {family} size {size}, {num_kp} keypoints, SimCC {len_x}x{len_y} -> input "
           f"{wh[0]}x{wh[1]} (w x h), split ratio {ratio:g}")
    for name in list_configs("pose"):
        s = get_spec(name)
        if (s.family, (s.deepen_factor, s.widen_factor), s.input_size, s.num_keypoints, s.simcc_split_ratio) == \
                (family, SIZES[size], wh, num_kp, ratio):
            return s, why
    d, w = SIZES[size]
    base = get_spec("rtmw-l_wholebody_256x192" if family == "rtmw" else "rtmpose-m_body8_256x192")
    spec = custom_spec(base, name=f"{family}-{size}_{num_kp}kp_{wh[1]}x{wh[0]}", size=size, deepen_factor=d,
                       widen_factor=w, input_size=wh, num_keypoints=num_kp, simcc_split_ratio=ratio,
                       keypoint_set=set_name_for_count(num_kp), official_config="", config_path="",
                       aliases=())
    return spec, why + " (no official config with these; built to match)"


def _infer_detector(sd, path: str) -> Tuple[ArchSpec, str]:
    size = _size_from_backbone(sd, path)
    num_classes, feat = sd["bbox_head.rtm_cls.0.weight"].shape[:2]
    depthwise = "backbone.stage1.0.depthwise_conv.conv.weight" in sd
    shared = all(torch.equal(sd[f"bbox_head.cls_convs.{n}.0.conv.weight"], sd["bbox_head.cls_convs.0.0.conv.weight"])
                 for n in (1, 2) if f"bbox_head.cls_convs.{n}.0.conv.weight" in sd)
    why = f"from state-dict shapes: RTMDet size {size}, {num_classes} classes, head width {feat}"
    for name in list_configs("detect"):
        s = get_spec(name)
        if ((s.deepen_factor, s.widen_factor), s.num_classes, s.feat_channels, s.use_depthwise) == \
                (SIZES[size], num_classes, feat, depthwise):
            return s, why
    d, w = SIZES[size]
    neck_blocks = len({int(m.group(1)) for k in sd
                       for m in [re.match(r"neck\.top_down_blocks\.0\.blocks\.(\d+)\.", k)] if m})
    spec = custom_spec(get_spec("rtmdet-tiny"), name=f"rtmdet-{size}_{num_classes}cls", size=size,
                       deepen_factor=d, widen_factor=w, num_classes=num_classes, feat_channels=feat,
                       neck_out_channels=feat, use_depthwise=depthwise, share_conv=shared,
                       num_csp_blocks=max(neck_blocks, 1),
                       # Released RTMDet m/l/x regress exp(distance); tiny/s/nano do not.
                       exp_on_reg=size in ("m", "l", "x"), official_config="", config_path="", aliases=())
    return spec, why + " (no official config with these; built to match, exp_on_reg guessed from size)"


def infer_spec(sd: Dict[str, torch.Tensor], meta: Dict[str, Any], path: str) -> Tuple[ArchSpec, str]:
    for key in ("config", "cfg_name", "experiment_name"):
        value = meta.get(key)
        if isinstance(value, str) and value:
            # experiment_name carries a run timestamp: <config>_<YYYYMMDD_HHMMSS>
            spec = find_spec(re.sub(r"_\d{8}_\d{6}$", "", value))
            if spec is not None and not shape_mismatches(build_model(spec, meta_device=True), sd):
                return spec, f"from the checkpoint's meta[{key!r}] = {value!r}"
    cfg = meta.get("cfg")
    if isinstance(cfg, str):
        for stem in re.findall(r"([\w.-]+?)(?:\.py)?['\"]", cfg):
            spec = find_spec(stem)
            if spec is not None and not shape_mismatches(build_model(spec, meta_device=True), sd):
                return spec, f"from the config text in the checkpoint's meta (names {spec.official_config})"
    if "bbox_head.rtm_cls.0.weight" in sd:
        return _infer_detector(sd, path)
    if "head.cls_x.weight" in sd:
        return _infer_pose(sd, path)
    raise EdgeposeError(f"{path}: cannot tell the architecture: no RTMPose/RTMW head (head.cls_x) and no RTMDet "
                        f"head (bbox_head.rtm_cls) in its {len(sd)} weights; pass --config with an official name")


# -- building and checking ------------------------------------------------------------

def build_model(spec: ArchSpec, meta_device: bool = False) -> nn.Module:
    def build():
        return build_pose_model(spec) if spec.task == "pose" else build_rtmdet(spec)
    if meta_device:
        with torch.device("meta"):
            return build()
    return build()


def shape_mismatches(model: nn.Module, sd: Dict[str, torch.Tensor]) -> List[str]:
    """Human-readable differences between a model's state dict and checkpoint weights."""
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    out = []
    for k, shape in want.items():
        if k not in sd:
            if not k.endswith("num_batches_tracked"):
                out.append(f"missing {k} {list(shape)}")
        elif tuple(sd[k].shape) != shape:
            out.append(f"{k}: checkpoint {list(sd[k].shape)} vs model {list(shape)}")
    out += [f"unexpected {k} {list(sd[k].shape)}" for k in sd if k not in want]
    return out


def load_checkpoint(path: str, config: Optional[str] = None) -> LoadedModel:
    """Load `path` into our definition of `config` (official/short/zoo name), or of the
    architecture inferred from the checkpoint when config is None."""
    path = os.fspath(path)
    raw = read_checkpoint_file(path)
    sd, meta, notes = extract_state_dict(raw, path)
    if config:
        spec, why, inferred = get_spec(config), f"named by the caller ({config})", False
    else:
        (spec, why), inferred = infer_spec(sd, meta, path), True
    model = build_model(spec, meta_device=True)
    bad = shape_mismatches(model, sd)
    if bad:
        hint = ""
        if config:
            try:
                guess, _ = infer_spec(sd, meta, path)
                hint = f"; the checkpoint looks like {guess.name}: omit --config or pass that"
            except EdgeposeError:
                pass
        raise EdgeposeError(f"{path}: does not fit config {spec.name} ({len(bad)} differences; first: "
                            f"{'; '.join(bad[:3])}){hint}")
    model = build_model(spec)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise EdgeposeError(f"{path}: weights do not load into {spec.name}: {_first_line(e)}") from None
    model.eval()
    note = f"{spec.name}: {why}"
    if notes:
        note += "; " + "; ".join(notes)
    return LoadedModel(model=model, spec=spec, config=spec.name, inferred=inferred, note=note, path=path,
                       meta={k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool))})
