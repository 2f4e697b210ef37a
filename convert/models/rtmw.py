"""RTMW head: two-scale SimCC head fed by a CSPNeXt-PAFPN neck (stride 16 and 32 maps)."""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn as nn

from .blocks import ConvModule
from .cspnext import CSPNeXtPAFPN, stage_channels
from .rtmcc_head import RTMCCBlock, ScaleNorm, simcc_lengths


def build_rtmw_neck(widen_factor: float) -> CSPNeXtPAFPN:
    """Neck as in the official RTMW configs: stages 2..4 in, stride 16 and 32 out."""
    return CSPNeXtPAFPN(stage_channels(widen_factor)[2:], None, num_csp_blocks=2, out_indices=(1, 2))


class RTMWHead(nn.Module):
    def __init__(self, in_channels: int, num_keypoints: int, input_size: Tuple[int, int],
                 simcc_split_ratio: float = 2.0, final_layer_kernel_size: int = 7,
                 hidden_dims: int = 256, s: int = 128, expansion_factor: int = 2, act: str = "SiLU"):
        super().__init__()
        k, pad = final_layer_kernel_size, final_layer_kernel_size // 2
        flatten_dims = (input_size[0] // 32) * (input_size[1] // 32)
        ps = 2
        self.ps = nn.PixelShuffle(ps)
        self.conv_dec = ConvModule(in_channels // ps ** 2, in_channels // 4, k, 1, pad, act="ReLU")
        self.final_layer = ConvModule(in_channels, num_keypoints, k, 1, pad, act="ReLU")
        self.final_layer2 = ConvModule(in_channels // ps + in_channels // 4, num_keypoints, k, 1, pad,
                                       act="ReLU")
        self.mlp = nn.Sequential(ScaleNorm(flatten_dims), nn.Linear(flatten_dims, hidden_dims // 2, bias=False))
        self.mlp2 = nn.Sequential(ScaleNorm(flatten_dims * ps ** 2),
                                  nn.Linear(flatten_dims * ps ** 2, hidden_dims // 2, bias=False))
        wx, wy = simcc_lengths(input_size, simcc_split_ratio)
        self.gau = RTMCCBlock(num_keypoints, hidden_dims, hidden_dims, expansion_factor, s, act=act)
        self.cls_x = nn.Linear(hidden_dims, wx, bias=False)
        self.cls_y = nn.Linear(hidden_dims, wy, bias=False)

    def forward(self, feats):
        enc_b, enc_t = feats  # stride 16 (C/2 channels), stride 32 (C channels)
        feats_t = self.mlp(torch.flatten(self.final_layer(enc_t), 2))
        dec_t = self.conv_dec(self.ps(enc_t))
        enc_b = torch.cat([dec_t, enc_b], dim=1)
        feats_b = self.mlp2(torch.flatten(self.final_layer2(enc_b), 2))
        x = self.gau(torch.cat([feats_t, feats_b], dim=2))
        return self.cls_x(x), self.cls_y(x)
