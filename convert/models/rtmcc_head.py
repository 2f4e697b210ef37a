"""RTMCC head: 7x7 conv to one map per keypoint, flatten, ScaleNorm+Linear, one GAU
block across keypoint tokens, then SimCC x/y classifiers."""
from __future__ import annotations

import math
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


class ScaleNorm(nn.Module):
    """x / max(||x|| * dim**-0.5, eps) * g, over the last axis."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.scale = dim ** -0.5
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1))

    def forward(self, x):
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True) * self.scale
        return x / norm.clamp(min=self.eps) * self.g


class Scale(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * self.scale


class RTMCCBlock(nn.Module):
    """Gated attention unit (self-attention over keypoint tokens).

    Every official RTMPose/RTMW config uses: no relative position bias, no rotary
    position encoding, no dropout; so those branches are not built (their parameters
    would not be in the checkpoints either)."""

    def __init__(self, num_token: int, in_dims: int, out_dims: int, expansion_factor: int = 2,
                 s: int = 128, eps: float = 1e-5, act: str = "SiLU"):
        super().__init__()
        self.s = s
        self.num_token = num_token
        self.e = int(in_dims * expansion_factor)
        self.o = nn.Linear(self.e, out_dims, bias=False)
        self.uv = nn.Linear(in_dims, 2 * self.e + s, bias=False)
        self.gamma = nn.Parameter(torch.rand((2, s)))
        self.beta = nn.Parameter(torch.rand((2, s)))
        self.ln = ScaleNorm(in_dims, eps=eps)
        self.act_fn = nn.SiLU() if act == "SiLU" else nn.ReLU()
        self.shortcut = in_dims == out_dims
        if self.shortcut:
            self.res_scale = Scale(in_dims)
        self.sqrt_s = math.sqrt(s)

    def _attend(self, x):
        x = self.ln(x)
        uv = self.act_fn(self.uv(x))
        u, v, base = torch.split(uv, [self.e, self.e, self.s], dim=2)
        base = base.unsqueeze(2) * self.gamma[None, None, :] + self.beta
        q, k = torch.unbind(base, dim=2)
        qk = torch.bmm(q, k.permute(0, 2, 1))
        kernel = torch.square(F.relu(qk / self.sqrt_s))
        return self.o(u * torch.bmm(kernel, v))

    def forward(self, x):
        if self.shortcut:
            return self.res_scale(x) + self._attend(x)
        return self._attend(x)


def simcc_lengths(input_size: Tuple[int, int], split_ratio: float) -> Tuple[int, int]:
    """(len_x, len_y) of the SimCC vectors for an input of (w, h)."""
    return int(input_size[0] * split_ratio), int(input_size[1] * split_ratio)


class RTMCCHead(nn.Module):
    def __init__(self, in_channels: int, num_keypoints: int, input_size: Tuple[int, int],
                 simcc_split_ratio: float = 2.0, final_layer_kernel_size: int = 7,
                 hidden_dims: int = 256, s: int = 128, expansion_factor: int = 2, act: str = "SiLU"):
        super().__init__()
        fw, fh = input_size[0] // 32, input_size[1] // 32
        flatten_dims = fw * fh
        self.final_layer = nn.Conv2d(in_channels, num_keypoints, final_layer_kernel_size, 1,
                                     final_layer_kernel_size // 2)
        self.mlp = nn.Sequential(ScaleNorm(flatten_dims), nn.Linear(flatten_dims, hidden_dims, bias=False))
        wx, wy = simcc_lengths(input_size, simcc_split_ratio)
        self.gau = RTMCCBlock(num_keypoints, hidden_dims, hidden_dims, expansion_factor, s, act=act)
        self.cls_x = nn.Linear(hidden_dims, wx, bias=False)
        self.cls_y = nn.Linear(hidden_dims, wy, bias=False)

    def forward(self, feats):
        x = self.final_layer(feats[-1])
        x = torch.flatten(x, 2)
        x = self.gau(self.mlp(x))
        return self.cls_x(x), self.cls_y(x)
