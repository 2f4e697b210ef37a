"""`edgepose demo`: get the models, convert them, run the pipeline, leave a picture and an FPS line.

Models, for the detector (--det) and the pose model (--pose / --model NAME):
- a converted model (folder, .json or .ncnn.param): used as is;
- a .pth checkpoint or .onnx file: converted once into the cache
  (`$EDGEPOSE_CACHE/converted/<stem>-<sha8>/`; needs the host toolchain,
  `pip install 'edgepose[convert]'`);
- nothing: the zoo model (`--model`, default dwpose-t; detector rtmdet-nano-person)
  is downloaded with `edgepose fetch` into the cache, then converted.
What was prepared is remembered in `$EDGEPOSE_CACHE/demo_models.json`, so that
`edgepose run SOURCE` works afterwards without --det/--pose.
Offline without models, the message names the files to provide and where.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
from typing import Dict, Optional

from edgepose.errors import (BadArgumentError, BadImageError, EdgeposeError, ModelNotFoundError, OfflineError,
                             with_context)
from edgepose.files import cache_dir, replace_file

DEFAULT_POSE = "dwpose-t"
DEFAULT_DET = "rtmdet-nano-person"


def _registry_path() -> str:
    return os.path.join(cache_dir(), "demo_models.json")


def cached_models() -> Dict[str, str]:
    """{"det": path, "pose": path} prepared by an earlier demo (entries whose files are gone are dropped)."""
    try:
        with open(_registry_path()) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if k in ("det", "pose") and isinstance(v, str) and os.path.exists(v)}


def _remember(det: str, pose: str) -> None:
    path = _registry_path()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        replace_file(path, json.dumps({"det": os.path.abspath(det), "pose": os.path.abspath(pose)}, indent=1))
    except OSError:
        pass  # only a convenience for later `edgepose run`


def add_arguments(p) -> None:
    p.add_argument("--input", metavar="IMAGE_OR_VIDEO", help="image or video to run on "
                                                             "(default: the RTMPose example image when available)")
    p.add_argument("--det", metavar="PATH", help="detector: converted model folder/.json, or .onnx/.pth to convert")
    p.add_argument("--pose", metavar="PATH", help="pose model: converted model folder/.json, or .onnx/.pth to convert")
    p.add_argument("--model", metavar="NAME", default=DEFAULT_POSE,
                   help=f"zoo pose model to fetch when --pose is not given (default {DEFAULT_POSE}; "
                        f"`edgepose fetch --list`)")
    p.add_argument("-o", "--output-dir", default="edgepose_demo", help="output folder (default ./edgepose_demo)")
    p.add_argument("--threads", type=int, default=None, help="ncnn threads")
    p.add_argument("--precision", choices=("fp32", "fp16", "int8"), default=None)
    from .run_cli import add_device_argument
    add_device_argument(p)


def _is_converted(path: str) -> bool:
    if os.path.isdir(path):
        return True
    return path.endswith(".json") or path.endswith(".ncnn.param") or path.endswith(".ncnn.bin")


def _short_hash(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:8]


def _convert_cached(source: str, flag: str) -> str:
    """Convert a .pth/.onnx once into the cache; return the converted model's folder."""
    stem = os.path.splitext(os.path.basename(source))[0]
    out_dir = os.path.join(cache_dir(), "converted", f"{stem}-{_short_hash(source)}")
    if os.path.isdir(out_dir) and any(f.endswith(".json") for f in os.listdir(out_dir)):
        return out_dir
    try:
        from edgepose.convert.api import convert
    except ModuleNotFoundError as e:
        raise EdgeposeError(
            f"{flag} {source}: converting needs the host toolchain ({e.name} is not installed). "
            f"Install it with pip install 'edgepose[convert]', or convert on a PC with "
            f"`edgepose convert {os.path.basename(source)} -o DIR` and pass {flag} DIR") from None
    print(f"edgepose demo: converting {source} -> {out_dir}")
    convert(source, out_dir)
    return out_dir


def prepare_model(given: Optional[str], zoo_name: str, flag: str, task: str) -> str:
    """A converted model path for `given` (a path) or, if None, the zoo model `zoo_name`."""
    if given is not None:
        if not os.path.exists(given):
            raise ModelNotFoundError(f"{flag} {given}: no such file or folder")
        if _is_converted(given):
            return given
        ext = os.path.splitext(given)[1].lower()
        if ext not in (".pth", ".pt", ".onnx"):
            raise BadArgumentError(f"{flag} {given}: expected a converted model folder/.json, or a .pth/.onnx to convert")
        return _convert_cached(given, flag)
    try:
        from edgepose.convert import zoo
    except ModuleNotFoundError:
        raise ModelNotFoundError(f"no {task} model: the model zoo (convert package) is not installed; "
                            f"pass {flag} with a converted model folder") from None
    try:
        entry = zoo.resolve(zoo_name)
        target = os.path.join(zoo.cache_dir(), entry["file"])
    except EdgeposeError as e:
        raise with_context(e, f"{flag}: ") from None
    if not os.path.isfile(target):
        try:
            zoo.fetch(zoo_name)
        except OfflineError as e:
            why = e.reason.rstrip(". ")
            raise ModelNotFoundError(
                f"no {task} model: {why}. Place that file at {target}, "
                f"or pass {flag} with a local .pth/.onnx file or a converted model folder") from None
    return _convert_cached(target, flag)


def main(args) -> int:
    from . import run_cli

    source = args.input
    if source is None:
        raise BadArgumentError("no input: pass --input IMAGE_OR_VIDEO (a photo or clip with people)")
    if not os.path.exists(source):
        raise BadImageError(f"--input {source}: no such file")
    # Report every missing model at once: an offline user fixes both in one go.
    found, problems = {}, []
    for key, given, zoo_name, flag, task in (("pose", args.pose, args.model, "--pose", "pose"),
                                             ("det", args.det, DEFAULT_DET, "--det", "detector")):
        try:
            found[key] = prepare_model(given, zoo_name, flag, task)
        except EdgeposeError as e:
            problems.append(e)
    if problems:
        # Report every missing model at once, with the first problem's class and code.
        combined = with_context(problems[0], "")
        combined.args = (" | ".join(str(p) for p in problems),)
        raise combined
    pose, det = found["pose"], found["det"]
    run_args = argparse.Namespace(
        source=source, det=det, pose=pose, precision=args.precision, threads=args.threads, device=args.device, det_every=5,
        no_smooth=False, output_dir=args.output_dir, openpose_json=False, draw_style="mmpose",
        show_fps=False, threshold=0.3, max_frames=None, no_draw=False)
    summary = run_cli.execute(run_args)
    _remember(det, pose)
    pictures = [p for p in summary.written if not p.endswith(".json")]
    what = "frames" if summary.kind in ("video", "camera") else "images"
    print(f"edgepose demo: {summary.persons} person(s) in {summary.processed} {what}, "
          f"{summary.fps:.1f} FPS (detector + pose, {summary.precision}) -> {', '.join(pictures) or args.output_dir}")
    return 0
