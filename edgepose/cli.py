"""`edgepose` command line: one subcommand per module, and only the one asked for is imported.

Each subcommand module defines `add_arguments(parser)` and `main(args) -> int`. The runtime's
commands work on a board (numpy + ncnn + OpenCV); a host command there answers with the extra to
install. Errors print as one line and exit 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Dict, List, NamedTuple, Optional, Tuple

from .errors import EdgeposeError, MissingExtraError


class Command(NamedTuple):
    module: str
    help: str
    needs: Tuple[str, ...]   # host packages the command imports (checked before it runs)


COMMANDS: Dict[str, Command] = {
    "fetch": Command("edgepose.convert.zoo_cli", "download an official checkpoint into the cache (checksum verified)", ()),
    "convert": Command("edgepose.convert.cli", "convert a .pth checkpoint or deploy .onnx to ncnn (+ metadata, self-check)",
                       ("onnx", "pnnx", "torch", "onnxruntime")),
    "quantize": Command("edgepose.quantization.quantize_cli", "INT8 / mixed-precision calibration of a converted model", ()),
    "compare": Command("edgepose.quantization.compare_cli", "FP32 vs FP16 vs INT8 accuracy and speed report", ()),
    "run": Command("edgepose.runtime.run_cli", "pose on an image, folder, video or camera", ()),
    "demo": Command("edgepose.runtime.demo", "get the models, convert them, run the pipeline, print FPS", ()),
    "bench": Command("edgepose.runtime.bench_cli", "on-device FPS / latency benchmark vs ONNX Runtime", ()),
}
HOST_PACKAGES = ("torch", "onnx", "pnnx", "onnxruntime")


def _missing(packages: Tuple[str, ...]) -> Optional[str]:
    from importlib.util import find_spec
    for name in packages:
        if find_spec(name) is None:
            return name
    return None


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser; only `command`'s module is imported to add its arguments."""
    parser = argparse.ArgumentParser(
        prog="edgepose",
        description="RTMPose / DWPose / RTMW whole-body pose on phones and boards through ncnn: "
                    "convert, quantize, run, compare, benchmark.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.help)
        if name == command:
            importlib.import_module(cmd.module).add_arguments(p)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in COMMANDS else None
    try:
        if command is not None:
            missing = _missing(COMMANDS[command].needs)
            if missing:
                raise MissingExtraError(command, missing)
        args = build_parser(command).parse_args(argv)
        if not args.command:
            build_parser().print_help()
            return 2
        return int(importlib.import_module(COMMANDS[command].module).main(args) or 0)
    except EdgeposeError as e:
        print(f"edgepose {command}: error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        if e.name not in HOST_PACKAGES:
            raise
        print(f"edgepose {command}: error: {MissingExtraError(command or '', e.name)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"edgepose {command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
