"""Run pnnx on a (normalised, folded) ONNX graph or a torch model and check what it wrote.

pnnx's own default stores weights in fp16 (`fp16=1`), which alone costs ~7e-4 of the
output range; fp32 models are always written with `fp16=0`.
"""
from __future__ import annotations

import os
import subprocess
from typing import List, Sequence, Tuple

import onnx

from edgepose.errors import EdgeposeError

from edgepose.ncnn_io import read_model

PNNX_TIMEOUT_S = 600
# pnnx's bundled onnxruntime reads IR <= 13 (and crashes on newer); IR 10 covers opset <= 21.
PNNX_MAX_IR_VERSION = 10


def pnnx_executable() -> str:
    try:
        import pnnx
    except ImportError:
        raise EdgeposeError("pnnx is not installed: pip install 'edgepose[convert]'") from None
    path = pnnx.EXEC_PATH
    if not os.path.isfile(path):
        raise EdgeposeError(f"pnnx executable missing at {path}; reinstall pnnx")
    return path


def pnnx_version() -> str:
    try:
        from importlib.metadata import version
        return version("pnnx")
    except Exception:
        return "unknown"


def torch_to_onnx(model, input_shape: Sequence[int], path: str, output_names: List[str]) -> None:
    """TorchScript-based export at opset 11, as the official deploy tools do: the form
    pnnx reads faithfully (the dynamo exporter writes opset 18 Reduce ops)."""
    import warnings

    import torch
    model.eval()
    dummy = torch.zeros(*input_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (dummy,), path, dynamo=False, opset_version=11,
                          input_names=["input"], output_names=output_names, do_constant_folding=True)


def run_pnnx(model: onnx.ModelProto, input_shape: Sequence[int], work_dir: str, fp16: bool,
             origin: str) -> Tuple[str, str]:
    """Convert `model` with pnnx inside `work_dir`; return (param, bin) paths there."""
    work_dir = os.path.abspath(work_dir)
    src = os.path.join(work_dir, "model.onnx")
    if model.ir_version > PNNX_MAX_IR_VERSION:
        model = onnx.ModelProto.FromString(model.SerializeToString())
        model.ir_version = PNNX_MAX_IR_VERSION
    onnx.save(model, src)
    shape = "[" + ",".join(str(int(v)) for v in input_shape) + "]"
    cmd = [pnnx_executable(), src, f"inputshape={shape}", f"fp16={1 if fp16 else 0}"]
    try:
        proc = subprocess.run(cmd, cwd=work_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=PNNX_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise EdgeposeError(f"{origin}: pnnx did not finish within {PNNX_TIMEOUT_S} s") from None
    param, binf = os.path.join(work_dir, "model.ncnn.param"), os.path.join(work_dir, "model.ncnn.bin")
    if proc.returncode != 0 or not (os.path.isfile(param) and os.path.isfile(binf)):
        tail = " | ".join(ln.strip() for ln in proc.stdout.strip().splitlines()[-4:])
        raise EdgeposeError(f"{origin}: pnnx failed (exit {proc.returncode}): {tail}")
    check_ncnn_layers(param, origin)
    return param, binf


def check_ncnn_layers(param_path: str, origin: str) -> None:
    """Refuse a graph with layers stock ncnn cannot run (pnnx leaves unknown ops in place)."""
    import ncnn
    pf = read_model(param_path)
    unknown = [(l.type, l.name) for l in pf.layers if ncnn.layer_to_index(l.type) < 0]
    if unknown:
        kinds = sorted({t for t, _ in unknown})
        first = unknown[0]
        raise EdgeposeError(
            f"{origin}: ncnn has no layer for {', '.join(kinds)} (e.g. layer {first[1]!r}); "
            f"this operator is not supported by pnnx/ncnn, replace it in the model before export")


def output_blobs(param_path: str, count: int) -> List[str]:
    pf = read_model(param_path)
    tops = {t for l in pf.layers for t in l.tops}
    names = [f"out{i}" for i in range(count)]
    missing = [n for n in names if n not in tops]
    if missing:
        raise EdgeposeError(f"{param_path}: pnnx output blobs {missing} not found; "
                            f"the graph does not have {count} outputs after conversion")
    return names
