"""Conv + BN + activation units named like mmcv's ConvModule, so state-dict keys match.

mmcv names the parts `conv`, `bn` (for BN/SyncBN) and `activate`; a depthwise-separable
unit holds `depthwise_conv` and `pointwise_conv`, each a ConvModule.
"""
from __future__ import annotations

from typing import Optional

import torch.nn as nn

# All official RTMPose/RTMW/RTMDet configs override the code default (eps=1e-3) with
# plain BN/SyncBN, i.e. PyTorch's eps=1e-5.
BN_EPS = 1e-5


def make_act(name: Optional[str]) -> nn.Module:
    if name is None:
        return nn.Identity()
    if name in ("SiLU", "Swish"):
        return nn.SiLU()
    if name == "ReLU":
        return nn.ReLU()
    raise ValueError(f"unsupported activation {name!r}")


class ConvModule(nn.Module):
    """Conv2d (no bias, since BN follows) -> BatchNorm2d -> activation."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, groups: int = 1, act: Optional[str] = "SiLU",
                 bn_eps: float = BN_EPS):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_ch, eps=bn_eps)
        self.activate = make_act(act)

    def forward(self, x):
        return self.activate(self.bn(self.conv(x)))


class DepthwiseSeparableConvModule(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, act: Optional[str] = "SiLU", bn_eps: float = BN_EPS):
        super().__init__()
        self.depthwise_conv = ConvModule(in_ch, in_ch, kernel_size, stride, padding, groups=in_ch,
                                         act=act, bn_eps=bn_eps)
        self.pointwise_conv = ConvModule(in_ch, out_ch, 1, act=act, bn_eps=bn_eps)

    def forward(self, x):
        return self.pointwise_conv(self.depthwise_conv(x))


def conv_unit(depthwise: bool):
    """The 3x3 unit a config selects with `use_depthwise`."""
    return DepthwiseSeparableConvModule if depthwise else ConvModule
