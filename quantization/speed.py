"""Per-layer precision by measured speed on the machine that runs `edgepose quantize`.

Each candidate layer is timed alone, float and int8, in a one-layer ncnn net fed with a
blob of the shape the layer sees in the model (stock ncnn runs an int8 layer as quantise
input -> int8 kernel -> dequantise output, so a layer's int8 cost does not depend on its
neighbours' precision and the one-layer nets price it as the model pays it). A layer whose
input is equalized per channel (channel_equalization.py) pays for its float Scale too, so
its int8 net holds the Scale. Timing a
whole model per candidate would bury a 0.05 ms difference under the model's run-to-run
noise on a shared machine; one layer at a time it is measured directly.

Robust to noise: float and int8 are timed in interleaved slices (order alternating
slice to slice, so a load burst hits both), each slice runs enough calls to last about
SLICE_SECONDS, and the per-call time is the MEDIAN over slices. A layer counts as faster in
int8 only if its int8 median is below float by more than MARGIN.

`timer` is injectable (tests use a fake clock); `whole_model_ratio` times two complete
models the same way to check that the chosen mix is not slower than fp32 end to end.
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from edgepose.errors import EdgeposeError
from edgepose.ncnn_io import RAW, Layer, NcnnModel, ParamDict, WeightBlob, input_mat, write_model

SLICES = 9              # interleaved slices per layer (median over them)
SLICE_SECONDS = 0.004   # target length of one slice
MARGIN = 0.03           # int8 must be >= 3% faster than float to count as faster

Timer = Callable[[], float]


@dataclass
class LayerSpeed:
    float_ms: float
    int8_ms: float

    @property
    def ratio(self) -> float:               # int8 time / float time
        return self.int8_ms / self.float_ms if self.float_ms > 0 else 1.0

    def faster_in_int8(self, margin: float = MARGIN) -> bool:
        return self.ratio < 1.0 - margin

    def as_dict(self) -> Dict[str, float]:
        return {"float_ms": round(self.float_ms, 5), "int8_ms": round(self.int8_ms, 5),
                "int8_over_float": round(self.ratio, 4)}


def _input_layer(shape: Tuple[int, ...]) -> Layer:
    p = ParamDict()
    dims = list(shape)[::-1]               # ncnn Input: 0=w 1=h 2=c
    for key, v in zip((0, 1, 2), dims):
        p.set(key, int(v))
    return Layer("Input", "in", [], ["in"], p, [])


def single_layer_model(layer: Layer, shape: Tuple[int, ...], scale_first: bool = False) -> NcnnModel:
    """Input (of `shape`, CHW without batch) -> a copy of `layer` reading it; with scale_first,
    a per-channel float Scale in between (what input equalization puts before an int8 layer)."""
    if not scale_first:
        copy = Layer(layer.type, layer.name, ["in"], ["out"], layer.params.copy(), list(layer.blobs))
        return NcnnModel([_input_layer(shape), copy], 2)
    p = ParamDict()
    p.set(0, int(shape[0]))
    p.set(1, 0)
    scale = Layer("Scale", "scale", ["in"], ["scaled"], p, [WeightBlob.fp32("scale", np.ones(int(shape[0])), mode=RAW)])
    copy = Layer(layer.type, layer.name, ["scaled"], ["out"], layer.params.copy(), list(layer.blobs))
    return NcnnModel([_input_layer(shape), scale, copy], 3)


def interleaved_medians(runners: Sequence[Callable[[], None]], slices: int = SLICES,
                        slice_seconds: float = SLICE_SECONDS, timer: Timer = time.perf_counter) -> List[float]:
    """Median seconds per call of each runner, timed in interleaved slices (order alternating)."""
    for run in runners:                      # warm-up: allocations, packing, first-touch
        run()
    t0 = timer()
    runners[0]()
    one = max(timer() - t0, 1e-6)
    calls = max(1, min(1000, int(slice_seconds / one)))
    per_call: List[List[float]] = [[] for _ in runners]
    order = list(range(len(runners)))
    for s in range(slices):
        seq = order if s % 2 == 0 else order[::-1]
        for i in seq:
            t0 = timer()
            for _ in range(calls):
                runners[i]()
            per_call[i].append((timer() - t0) / calls)
    return [float(np.median(v)) for v in per_call]


def _net_runner(model: NcnnModel, int8: bool, input_blob: str, output_blob: str, x: np.ndarray, threads: int,
                tmp: str, tag: str):
    from .calibration import make_net

    param, binf = os.path.join(tmp, f"{tag}.param"), os.path.join(tmp, f"{tag}.bin")
    write_model(model, param, binf)
    net = make_net(param, binf, int8=int8, threads=threads)
    mat = input_mat(x)

    def run():
        ex = net.create_extractor()
        ex.input(input_blob, mat)
        ret, _out = ex.extract(output_blob)
        if ret != 0:
            raise EdgeposeError(f"{tag}: ncnn forward failed (error {ret})")
    run.keep = (net, mat)               # keep the net and input alive as long as the runner
    return run


def time_layers(model: NcnnModel, layers: Sequence[Layer], shapes: Dict[str, Tuple[int, ...]],
                scales: Dict[str, float], threads: int = 1, slices: int = SLICES,
                progress: Optional[Callable] = None, timer: Timer = time.perf_counter,
                runner_factory: Optional[Callable] = None,
                scaled_in_int8: Sequence[str] = ()) -> Dict[str, LayerSpeed]:
    """Float vs int8 time of each layer alone (shapes: the layer's input blob shape). Layers in
    `scaled_in_int8` are timed in int8 with the equalizing Scale before them: their int8 cost."""
    from .int8_writer import quantize_layer

    wrap = progress or (lambda it, desc: it)
    factory = runner_factory or _net_runner
    rng = np.random.default_rng(0)
    out: Dict[str, LayerSpeed] = {}
    with tempfile.TemporaryDirectory(prefix="edgepose-speed-") as tmp:
        for layer in wrap(list(layers), f"timing layers float vs int8 ({threads} thread(s))"):
            shape = tuple(int(v) for v in shapes[layer.name])
            x = rng.standard_normal(shape).astype(np.float32)
            fmodel = single_layer_model(layer, shape)
            qlayer = quantize_layer(layer, scales.get(layer.name, 1.0))
            qmodel = single_layer_model(qlayer, shape, scale_first=layer.name in set(scaled_in_int8))
            runs = [factory(fmodel, False, "in", "out", x, threads, tmp, "float"),
                    factory(qmodel, True, "in", "out", x, threads, tmp, "int8")]
            f, q = interleaved_medians(runs, slices=slices, timer=timer)
            out[layer.name] = LayerSpeed(f * 1000.0, q * 1000.0)
    return out


def split_by_speed(speeds: Dict[str, LayerSpeed], margin: float = MARGIN) -> Tuple[List[str], List[str]]:
    """(layers faster in int8, layers not faster in int8), each in the order given."""
    fast = [n for n, s in speeds.items() if s.faster_in_int8(margin)]
    slow = [n for n in speeds if n not in fast]
    return fast, slow


def whole_model_ratio(param_a: str, bin_a: str, int8_a: bool, param_b: str, bin_b: str, int8_b: bool,
                      input_blob: str, output_blobs: Sequence[str], inputs: Sequence[np.ndarray],
                      threads: int = 1, slices: int = 7, timer: Timer = time.perf_counter) -> Tuple[float, float]:
    """Median seconds per forward of model A and model B (all outputs extracted), interleaved."""
    from .calibration import make_net

    nets = [make_net(param_a, bin_a, int8=int8_a, threads=threads), make_net(param_b, bin_b, int8=int8_b,
                                                                             threads=threads)]
    mats = [input_mat(x) for x in inputs]

    def runner(net):
        def run():
            for m in mats:
                ex = net.create_extractor()
                ex.input(input_blob, m)
                for b in output_blobs:
                    ex.extract(b)
        return run
    a, b = interleaved_medians([runner(nets[0]), runner(nets[1])], slices=slices, slice_seconds=0.0, timer=timer)
    return a / max(len(mats), 1), b / max(len(mats), 1)
