"""Work per inference in GMAC, counted from the ncnn graph itself.

Counting from the graph (not from a paper table) keeps the figure honest for the
exact model a user converted: input size, keypoint count and any graph rewrite
show up. Output shapes come from one real forward pass, so no shape inference
code has to mirror ncnn's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

import numpy as np

from edgepose.model_meta import ModelMeta

# Layers whose multiply-accumulates dominate; element-wise work is left out, as
# every published GMAC figure for these models does.
_CONV = ("Convolution", "ConvolutionDepthWise", "Convolution1D")
_COUNTED = _CONV + ("Deconvolution", "DeconvolutionDepthWise", "InnerProduct", "Gemm", "MatMul")


@dataclass
class LayerWork:
    name: str
    type: str
    macs: int


def _param_layers(param_path: str):
    # The param reader lives with the quantizer; it is numpy-only, so boards can use it.
    from edgepose.ncnn_io import parse_param

    with open(param_path) as f:
        return parse_param(f.read(), origin=param_path).layers


def _shape(mat) -> List[int]:
    return list(np.array(mat).shape)


def count_layers(meta: ModelMeta, meta_path: str) -> List[LayerWork]:
    import ncnn

    layers = _param_layers(meta.param_path(meta_path))
    net = ncnn.Net()
    net.opt.use_fp16_storage = False
    net.opt.use_fp16_packed = False
    net.opt.use_fp16_arithmetic = False
    net.opt.lightmode = False  # keep intermediate blobs so each one is computed once
    net.load_param(meta.param_path(meta_path))
    net.load_model(meta.bin_path(meta_path))
    image = np.full((3, meta.input_height, meta.input_width), 114.0, dtype=np.float32)
    ex = net.create_extractor()
    ex.input(meta.input_blob, ncnn.Mat(image))

    shapes: Dict[str, List[int]] = {}

    def shape_of(blob: str) -> List[int]:
        if blob not in shapes:
            ret, mat = ex.extract(blob)
            if ret != 0:
                raise RuntimeError(f"{meta.param}: cannot extract blob {blob} (ncnn error {ret})")
            shapes[blob] = _shape(mat)
        return shapes[blob]

    work: List[LayerWork] = []
    for layer in layers:
        if layer.type not in _COUNTED:
            continue
        out = shape_of(layer.tops[0])
        out_elems = int(np.prod(out))
        p = layer.params
        if layer.type in _CONV:
            spatial = out_elems // max(int(p.get(0, 1)), 1)
            macs = spatial * int(p.get(6, 0))
        elif layer.type.startswith("Deconvolution"):
            inp = shape_of(layer.bottoms[0])
            macs = int(np.prod(inp[1:])) * int(p.get(6, 0))
        elif layer.type == "InnerProduct":
            macs = (out_elems // max(int(p.get(0, 1)), 1)) * int(p.get(2, 0))  # 2=weight_data_size
        elif layer.type == "Gemm":
            if int(p.get(5, 0)) and int(p.get(9, 0)):  # constant B: K is stored
                k = int(p.get(9, 0))
            else:
                a = shape_of(layer.bottoms[0])
                k = a[-2] if int(p.get(2, 0)) else a[-1]
            macs = out_elems * k
        else:  # MatMul
            a = shape_of(layer.bottoms[0])
            macs = out_elems * a[-1]
        work.append(LayerWork(layer.name, layer.type, int(macs)))
    return work


def gmac(meta_path: str) -> float:
    from ..model_check import check_files
    meta = ModelMeta.load(meta_path)
    check_files(meta, meta_path)      # recorded checksums first: a damaged .param can crash ncnn
    return sum(w.macs for w in count_layers(meta, meta_path)) / 1e9
