"""`edgepose` command line: one subcommand per module, imported only when used.

Each subcommand module defines `add_arguments(parser)` and `main(args) -> int`
and keeps heavy imports (torch, onnx, pnnx) inside `main`, so that `edgepose run`
works on a board that has only the runtime installed.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

from .errors import EdgeposeError

# name -> (module, one-line help, needs host toolchain)
COMMANDS = {
    "fetch": ("convert.zoo_cli", "download an official checkpoint into the cache (checksum verified)", False),
    "convert": ("convert.cli", "convert a .pth checkpoint or deploy .onnx to ncnn (+ metadata, self-check)", True),
    "quantize": ("quantization.quantize_cli", "INT8 / mixed-precision calibration of a converted model", False),
    "compare": ("quantization.compare_cli", "FP32 vs FP16 vs INT8 accuracy and speed report", False),
    "run": ("edge_runtime.run_cli", "pose on an image, folder, video or camera", False),
    "demo": ("edge_runtime.demo", "get the models, convert them, run the pipeline, print FPS", False),
    "bench": ("edge_runtime.bench_cli", "on-device FPS / latency benchmark vs ONNX Runtime", False),
}


def _load(module: str):
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name in ("torch", "onnx", "pnnx", "onnxruntime"):
            raise EdgeposeError(
                f"this command needs the host toolchain ({e.name} is not installed): "
                f"pip install 'edgepose[convert]'") from None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgepose",
        description="RTMPose / DWPose / RTMW whole-body pose on phones and boards through ncnn: "
                    "convert, quantize, run, compare, benchmark.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text, _) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        try:
            mod = _load(module)
        except (ImportError, EdgeposeError):
            # Subcommand not available in this install; it reports why when called.
            continue
        mod.add_arguments(p)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        mod = _load(args._module)
        return int(mod.main(args) or 0)
    except EdgeposeError as e:
        print(f"edgepose {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"edgepose {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
