"""Run the fp32 model over calibration inputs with stock ncnn and collect, for every
quantisable layer, statistics of its input blob (absmax, 2048-bin histogram of |x|,
elements per sample), as ncnn2table does in two passes.

Quantisable layers:
  Convolution, ConvolutionDepthWise, InnerProduct  int8 weights + a calibrated input scale
  Gemm with a constant B and a fed A              int8 B; ncnn quantises A per row at run time,
                                                   so it needs no activation statistics.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np

from edgepose.errors import EdgeposeError

from edgepose.ncnn_io import Layer, NcnnModel, input_mat
from .thresholds import NUM_BINS

ACTIVATION_CALIBRATED = ("Convolution", "ConvolutionDepthWise", "InnerProduct")


@dataclass
class BlobStats:
    blob: str
    absmax: float
    hist: np.ndarray        # NUM_BINS counts of |x| over [0, absmax], zeros skipped
    count: int              # elements per sample


def is_quantizable(layer: Layer) -> bool:
    """True for layers stock ncnn can run in int8 that still hold float weights."""
    p = layer.params
    if layer.type in ACTIVATION_CALIBRATED:
        w = layer.blob("weight")
        if w is None or w.storage not in ("fp32", "fp16"):
            return False
        if p.get(8, 0) or p.get(19, 0):
            return False
        if layer.type != "InnerProduct" and p.get(18, 0.0) != 0.0:
            return False        # padding value other than 0: the int8 path pads with 0
        return True
    if layer.type == "Gemm":
        b = layer.blob("B")
        return (p.get(5, 0) == 1 and p.get(4, 0) == 0 and p.get(18, 0) == 0
                and b is not None and b.storage in ("fp32", "fp16") and len(layer.bottoms) == 1)
    return False


def quantizable_layers(model: NcnnModel) -> List[Layer]:
    return [layer for layer in model.layers if is_quantizable(layer)]


def make_net(param_path: str, bin_path: str, int8: bool = False, threads: Optional[int] = None):
    """An ncnn.Net with fp16/bf16 off (float layers stay exact fp32), int8 on if asked."""
    import ncnn

    net = ncnn.Net()
    opt = net.opt
    opt.use_fp16_storage = opt.use_fp16_packed = opt.use_fp16_arithmetic = False
    opt.use_bf16_storage = False
    opt.use_vulkan_compute = False
    opt.use_int8_inference = bool(int8)
    # one thread by default: calibration runs many small passes, and OpenMP spinning on a
    # busy machine costs far more than it gains
    opt.num_threads = int(threads or 1)
    if net.load_param(param_path) != 0:
        raise EdgeposeError(f"{param_path}: stock ncnn cannot load this param file")
    if net.load_model(bin_path) != 0:
        raise EdgeposeError(f"{bin_path}: stock ncnn cannot load this bin file")
    return net


def run_net(net, input_blob: str, chw: np.ndarray, outputs: Sequence[str], light: bool = True) -> Dict[str, np.ndarray]:
    """One forward pass; returns copies of the requested blobs."""
    mat = input_mat(chw)
    ex = net.create_extractor()
    ex.set_light_mode(light)
    ex.input(input_blob, mat)
    result = {}
    for name in outputs:
        ret, out = ex.extract(name)
        if ret != 0 or out.empty():
            raise EdgeposeError(f"ncnn could not compute blob {name!r} (error {ret})")
        result[name] = np.array(out, copy=True)
    del mat
    return result


def collect_stats(param_path: str, bin_path: str, input_blob: str, blobs: Sequence[str],
                  inputs: Sequence[np.ndarray], progress: Optional[Callable[[Iterable, str], Iterable]] = None,
                  threads: Optional[int] = None) -> Dict[str, BlobStats]:
    """Two passes over `inputs` (CHW float arrays): absmax per blob, then histograms."""
    if not inputs:
        raise EdgeposeError("no calibration inputs")
    wrap = progress or (lambda it, desc: it)
    blobs = list(dict.fromkeys(blobs))
    if not blobs:
        return {}
    net = make_net(param_path, bin_path, threads=threads)
    absmax = {b: 0.0 for b in blobs}
    count = {b: 0 for b in blobs}
    for x in wrap(inputs, "calibration: absmax"):
        outs = run_net(net, input_blob, x, blobs, light=False)
        for b, v in outs.items():
            absmax[b] = max(absmax[b], float(np.abs(v).max()) if v.size else 0.0)
            count[b] = v.size
    hist = {b: np.zeros(NUM_BINS, np.int64) for b in blobs}
    for x in wrap(inputs, "calibration: histograms"):
        outs = run_net(net, input_blob, x, blobs, light=False)
        for b, v in outs.items():
            if absmax[b] <= 0:
                continue
            a = np.abs(v[v != 0]).astype(np.float32)
            idx = np.minimum((a / np.float32(absmax[b]) * NUM_BINS).astype(np.int64), NUM_BINS - 1)
            hist[b] += np.bincount(idx, minlength=NUM_BINS)
    return {b: BlobStats(b, absmax[b], hist[b], count[b]) for b in blobs}
