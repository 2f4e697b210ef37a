"""Learned weight rounding (AdaRound, Nagel et al. 2020), per layer, fitted on calibration data.

Nearest rounding of each weight is optimal per weight but not for the layer's output: the
rounding errors of one output channel add up over its inputs. For every int8 layer we learn,
per weight, whether to round down or up so that the layer's int8 output on calibration
inputs matches its fp32 output:

    minimise  mean || (floor(W*s) + h(V)) / s @ Xq  -  W @ X ||^2  +  lam * sum(1 - |2h(V) - 1|^beta)

X: columns of the layer's fp32 input sampled over the calibration inputs (im2col at random
output positions), Xq: the same columns through the layer's int8 input quantiser (scale
from the activation-range step), so the rounding also absorbs part of the input's
quantisation error ("asymmetric" reconstruction). h is the rectified sigmoid; the
regulariser (beta annealed 20 -> 2) drives every h to 0 or 1. The per-channel scale s is
ncnn's (127 / absmax); the largest-magnitude weight of each channel keeps its nearest
rounding so that the scale the writer recomputes is unchanged.

Result: the layer's float weights replaced by their chosen int8 grid values divided by the
scale, i.e. weights already on the int8 grid: int8_writer, layer_sim and bias correction
then round them to exactly the learned integers with no other change. Layers that stay
float keep their original weights (apply_rounded_weights applies only to int8 layers).

Optimised with torch (a host-only layer); each layer is a small least-squares problem.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np

from edgepose.errors import EdgeposeError
from edgepose.ncnn_io import Layer, NcnnModel, WeightBlob

from .calibration import make_net, run_net
from .layer_sim import _geometry, _groups, _weight_groups
from .thresholds import float2int8, weight_scales

COLUMNS = 2048          # sampled input columns per layer
ITERATIONS = 400
ZETA, GAMMA = 1.1, -0.1
LAMBDA = 0.01
HOLDOUT = 0.25         # share of the sampled columns kept out of the fit, to validate it
MAX_WORK = 4e8          # cout * K * columns above which a layer keeps nearest rounding (cost per step)


@dataclass
class RoundingResult:
    weight: np.ndarray          # new float weights (on the int8 grid), ncnn order
    nearest_mse: float          # output MSE with nearest rounding, on held-out columns
    learned_mse: float          # output MSE with the rounding kept (learned, or nearest if not better), same columns
    flipped: int                # weights rounded differently from nearest
    output_power: float         # mean fp32 output^2, to read the mse relatively

    def as_dict(self) -> Dict[str, float]:
        return {"nearest_mse": float(self.nearest_mse), "learned_mse": float(self.learned_mse),
                "flipped_weights": int(self.flipped), "output_power": float(self.output_power)}


def sample_columns(layer: Layer, x: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """(groups, K, count) input columns of `layer` at random output positions of input x (C,H,W);
    InnerProduct: (1, K, 1) (the whole flattened input)."""
    if layer.type == "InnerProduct":
        return np.asarray(x, np.float32).reshape(1, -1, 1)
    kh, kw, dh, dw, sh, sw, (pt, pb, pl, pr) = _geometry(layer)
    c = x.shape[0]
    g = _groups(layer)
    xp = np.pad(np.asarray(x, np.float32), ((0, 0), (pt, pb), (pl, pr)))
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    ho = (xp.shape[1] - eh) // sh + 1
    wo = (xp.shape[2] - ew) // sw + 1
    if ho <= 0 or wo <= 0:
        raise EdgeposeError(f"layer {layer.name}: input {x.shape} smaller than its kernel")
    pos = rng.integers(0, ho * wo, size=count)
    ys, xs = (pos // wo) * sh, (pos % wo) * sw
    iy = ys[:, None] + np.arange(kh)[None, :] * dh            # count, kh
    ix = xs[:, None] + np.arange(kw)[None, :] * dw            # count, kw
    cols = xp[:, iy[:, :, None], ix[:, None, :]]              # C, count, kh, kw
    cols = cols.reshape(g, c // g, count, kh * kw).transpose(0, 1, 3, 2)
    return np.ascontiguousarray(cols.reshape(g, (c // g) * kh * kw, count))


def collect_columns(param_path: str, bin_path: str, input_blob: str, layers: Sequence[Layer],
                    inputs: Sequence[np.ndarray], columns: int = COLUMNS,
                    progress: Optional[Callable[[Iterable, str], Iterable]] = None,
                    threads: Optional[int] = None, seed: int = 0) -> Dict[str, np.ndarray]:
    """Per layer name: (groups, K, N) fp32 input columns sampled evenly over the inputs."""
    wrap = progress or (lambda it, desc: it)
    rng = np.random.default_rng(seed)
    net = make_net(param_path, bin_path, threads=threads)
    per_input = max(1, columns // max(len(inputs), 1))
    blobs = list(dict.fromkeys(layer.bottoms[0] for layer in layers))
    parts: Dict[str, List[np.ndarray]] = {layer.name: [] for layer in layers}
    for x in wrap(list(inputs), "adaround: input columns"):
        feats = run_net(net, input_blob, x, blobs, light=False)
        for layer in layers:
            parts[layer.name].append(sample_columns(layer, feats[layer.bottoms[0]], per_input, rng))
    return {n: np.concatenate(p, axis=2) for n, p in parts.items()}


def _rect_sigmoid(torch, v):
    return torch.clamp(torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)


def learn_rounding(layer: Layer, cols: np.ndarray, input_scale: float, iterations: int = ITERATIONS,
                   seed: int = 0) -> RoundingResult:
    """AdaRound for one layer on its sampled input columns (groups, K, N)."""
    import torch

    torch.manual_seed(seed)
    w = layer.blob("weight").to_float().astype(np.float32)
    n_scales = _weight_groups(layer)
    s = weight_scales(w, n_scales, 127.0)
    cout = int(layer.params.get(0, 0))
    g = cols.shape[0]
    k = cols.shape[1]
    if w.size != cout * k:
        raise EdgeposeError(f"layer {layer.name}: {w.size} weights do not match {cout} outputs x {k} inputs")
    wm = w.reshape(g, cout // g, k).astype(np.float64)
    srow = np.repeat(s, cout // n_scales).reshape(g, cout // g, 1).astype(np.float64)
    scaled = wm * srow
    floor = np.floor(scaled)
    rest = scaled - floor
    nearest = float2int8(scaled.reshape(cout, -1)).reshape(scaled.shape).astype(np.float64)
    # the largest |w| of each output channel keeps nearest rounding: the writer's scale stays the same
    amax = np.abs(scaled).reshape(-1, k).argmax(axis=1)
    fixed = np.zeros(scaled.shape, bool).reshape(-1, k)
    fixed[np.arange(fixed.shape[0]), amax] = True
    fixed = fixed.reshape(scaled.shape)

    # the last HOLDOUT share of the columns (the last calibration inputs: collect_columns
    # concatenates per input) is never fitted; the learned rounding is kept only if it beats
    # nearest rounding there too (measured: fitted on too few columns per weight, the rounding
    # lowers the fitted error but raises the error elsewhere and cost RTMDet-nano all-int8 box AP)
    n_fit = int(cols.shape[2] * (1 - HOLDOUT))
    s_in = float(input_scale)
    xq_all = float2int8(cols * np.float32(s_in)).astype(np.float32) / np.float32(s_in)
    hx, hxq = torch.from_numpy(cols[:, :, n_fit:].astype(np.float32)), torch.from_numpy(xq_all[:, :, n_fit:])
    x = torch.from_numpy(cols[:, :, :n_fit].astype(np.float32))
    xq = torch.from_numpy(np.ascontiguousarray(xq_all[:, :, :n_fit]))
    wt = torch.from_numpy(wm.astype(np.float32))
    target = torch.bmm(wt, x)                                    # g, cout/g, N
    power = float(target.pow(2).mean())
    st = torch.from_numpy(srow.astype(np.float32))
    fl = torch.from_numpy(floor.astype(np.float32))
    free = torch.from_numpy((~fixed).astype(np.float32))
    near_t = torch.from_numpy(nearest.astype(np.float32))

    def out_of(q):
        return torch.bmm(q / st, xq)

    with torch.no_grad():
        nearest_mse = float((out_of(near_t) - target).pow(2).mean())
    r = torch.from_numpy(np.clip(rest, 1e-3, 1 - 1e-3).astype(np.float32))
    v = torch.log((r - GAMMA) / (ZETA - r)).clone().requires_grad_(True)   # h(v) = rest at start
    opt = torch.optim.Adam([v], lr=1e-2)
    norm = max(power, 1e-12)
    for it in range(iterations):
        h = _rect_sigmoid(torch, v)
        q = fl + h
        q = free * q + (1 - free) * near_t
        rec = (out_of(q) - target).pow(2).mean() / norm
        warm = 0.2 * iterations
        if it < warm:
            loss = rec
        else:
            beta = 20.0 + (2.0 - 20.0) * (it - warm) / max(iterations - warm, 1)
            reg = (1 - (2 * h - 1).abs().pow(beta)).sum() / h.numel()
            loss = rec + LAMBDA * reg
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        hard = (_rect_sigmoid(torch, v) >= 0.5).float()
        q = torch.clamp(fl + hard, -127, 127)
        q = free * q + (1 - free) * near_t
        learned_mse = float((out_of(q) - target).pow(2).mean())
        h_target = torch.bmm(wt, hx)
        held_nearest = float((torch.bmm(near_t / st, hxq) - h_target).pow(2).mean())
        held_learned = float((torch.bmm(q / st, hxq) - h_target).pow(2).mean())
    q_np = q.numpy().astype(np.float64)
    if held_learned >= held_nearest:              # never worse than nearest on held-out columns
        q_np, learned_mse = nearest, nearest_mse
    nearest_mse, learned_mse = held_nearest, min(held_learned, held_nearest)
    flipped = int((q_np != nearest).sum())
    new_w = (q_np / srow).astype(np.float32).reshape(-1)
    return RoundingResult(new_w, nearest_mse, learned_mse, flipped, power)


def learn_model_rounding(model: NcnnModel, layers: Sequence[Layer], param_path: str, bin_path: str,
                         input_blob: str, inputs: Sequence[np.ndarray], scales: Dict[str, float],
                         iterations: int = ITERATIONS, columns: int = COLUMNS,
                         progress: Optional[Callable[[Iterable, str], Iterable]] = None,
                         threads: Optional[int] = None) -> Dict[str, RoundingResult]:
    """AdaRound for every layer in `layers` (Convolution, ConvolutionDepthWise, InnerProduct)."""
    wrap = progress or (lambda it, desc: it)
    layers = [layer for layer in layers if layer.name in scales]
    cols = collect_columns(param_path, bin_path, input_blob, layers, inputs, columns, wrap, threads)
    import torch

    out: Dict[str, RoundingResult] = {}
    skipped: List[str] = []
    # one torch thread: these problems are tiny, and thread hand-offs on a busy machine cost
    # ~10x the arithmetic (measured: 29 s vs 3 s per layer with 2 threads vs 1)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for layer in wrap(layers, "adaround: learning weight rounding"):
            c = cols.pop(layer.name)
            work = float(layer.params.get(0, 0)) * c.shape[1] * c.shape[2]
            if work > MAX_WORK:
                # e.g. RTMPose's 7x7 head conv (133 x 18816 weights): minutes per layer on one core;
                # it keeps nearest rounding, reported as such
                skipped.append(layer.name)
                continue
            out[layer.name] = learn_rounding(layer, c, scales[layer.name], iterations)
    finally:
        torch.set_num_threads(before)
    return out  # layers in `skipped` keep nearest rounding (quantize_api reports them)


def apply_rounded_weights(model: NcnnModel, rounded: Dict[str, RoundingResult],
                          int8_layers: Iterable[str]) -> NcnnModel:
    """Copy of `model` with the learned grid weights in the named (int8) layers only."""
    chosen = set(int8_layers)
    out = model.copy()
    for i, layer in enumerate(out.layers):
        if layer.name in chosen and layer.name in rounded:
            # same read mode as the original blob: ncnn reads the .bin sequentially, a dropped
            # tag would shift every later layer's weights
            w = WeightBlob.fp32("weight", rounded[layer.name].weight, mode=layer.blob("weight").mode)
            out.layers[i] = Layer(layer.type, layer.name, list(layer.bottoms), list(layer.tops), layer.params.copy(),
                                  [w if b.name == "weight" else b for b in layer.blobs])
    return out
