"""CSPNeXt backbone (RTMDet / RTMPose / RTMW) and the CSP layer it is built from."""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
import torch.nn as nn

from .blocks import BN_EPS, ConvModule, DepthwiseSeparableConvModule, conv_unit

# P5 stages: (in, out, blocks, add_identity, use_spp) before widen/deepen scaling.
P5_STAGES = ((64, 128, 3, True, False), (128, 256, 6, True, False),
             (256, 512, 6, True, False), (512, 1024, 3, False, True))


class ChannelAttention(nn.Module):
    """Squeeze (global average) -> 1x1 conv with bias -> hard sigmoid -> rescale channels."""

    def __init__(self, channels: int):
        super().__init__()
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Conv2d(channels, channels, 1, 1, 0, bias=True)
        self.act = nn.Hardsigmoid()

    def forward(self, x):
        return x * self.act(self.fc(self.global_avgpool(x)))


class CSPNeXtBlock(nn.Module):
    """3x3 conv then 5x5 depthwise-separable conv, with optional identity shortcut."""

    def __init__(self, in_ch: int, out_ch: int, add_identity: bool, use_depthwise: bool,
                 kernel_size: int = 5, bn_eps: float = BN_EPS):
        super().__init__()
        self.conv1 = conv_unit(use_depthwise)(in_ch, out_ch, 3, 1, 1, bn_eps=bn_eps)
        self.conv2 = DepthwiseSeparableConvModule(out_ch, out_ch, kernel_size, 1, kernel_size // 2,
                                                  bn_eps=bn_eps)
        self.add_identity = add_identity and in_ch == out_ch

    def forward(self, x):
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class CSPLayer(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, num_blocks: int, add_identity: bool,
                 use_depthwise: bool = False, expand_ratio: float = 0.5,
                 channel_attention: bool = False, bn_eps: float = BN_EPS):
        super().__init__()
        mid = int(out_ch * expand_ratio)
        self.channel_attention = channel_attention
        self.main_conv = ConvModule(in_ch, mid, 1, bn_eps=bn_eps)
        self.short_conv = ConvModule(in_ch, mid, 1, bn_eps=bn_eps)
        self.final_conv = ConvModule(2 * mid, out_ch, 1, bn_eps=bn_eps)
        self.blocks = nn.Sequential(*[CSPNeXtBlock(mid, mid, add_identity, use_depthwise, bn_eps=bn_eps)
                                      for _ in range(num_blocks)])
        if channel_attention:
            self.attention = ChannelAttention(2 * mid)

    def forward(self, x):
        x_short = self.short_conv(x)
        x_main = self.blocks(self.main_conv(x))
        out = torch.cat((x_main, x_short), dim=1)
        if self.channel_attention:
            out = self.attention(out)
        return self.final_conv(out)


class SPPBottleneck(nn.Module):
    """1x1 conv, parallel max-pools (5, 9, 13) concatenated with the input, 1x1 conv."""

    def __init__(self, in_ch: int, out_ch: int, kernel_sizes: Sequence[int] = (5, 9, 13),
                 bn_eps: float = BN_EPS):
        super().__init__()
        mid = in_ch // 2
        self.conv1 = ConvModule(in_ch, mid, 1, bn_eps=bn_eps)
        self.poolings = nn.ModuleList([nn.MaxPool2d(k, 1, k // 2) for k in kernel_sizes])
        self.conv2 = ConvModule(mid * (len(kernel_sizes) + 1), out_ch, 1, bn_eps=bn_eps)

    def forward(self, x):
        x = self.conv1(x)
        x = torch.cat([x] + [p(x) for p in self.poolings], dim=1)
        return self.conv2(x)


def stage_channels(widen_factor: float) -> Tuple[int, ...]:
    """Output channels of stem and stages 1..4 (what the neck/head sees)."""
    return (int(P5_STAGES[0][0] * widen_factor),) + tuple(int(s[1] * widen_factor) for s in P5_STAGES)


def stage_depths(deepen_factor: float) -> Tuple[int, ...]:
    return tuple(max(round(s[2] * deepen_factor), 1) for s in P5_STAGES)


class CSPNeXt(nn.Module):
    def __init__(self, deepen_factor: float, widen_factor: float, out_indices: Sequence[int] = (2, 3, 4),
                 use_depthwise: bool = False, expand_ratio: float = 0.5,
                 channel_attention: bool = True, bn_eps: float = BN_EPS):
        super().__init__()
        self.out_indices = tuple(out_indices)
        stem_out = int(P5_STAGES[0][0] * widen_factor)
        self.stem = nn.Sequential(
            ConvModule(3, stem_out // 2, 3, 2, 1, bn_eps=bn_eps),
            ConvModule(stem_out // 2, stem_out // 2, 3, 1, 1, bn_eps=bn_eps),
            ConvModule(stem_out // 2, stem_out, 3, 1, 1, bn_eps=bn_eps))
        # The official code computes stem width as int(64 * w // 2), which equals
        # int(64 * w) // 2 for every released widen factor.
        self.layers = ["stem"]
        for i, (cin, cout, nblocks, add_identity, use_spp) in enumerate(P5_STAGES):
            cin, cout = int(cin * widen_factor), int(cout * widen_factor)
            nblocks = max(round(nblocks * deepen_factor), 1)
            stage = [conv_unit(use_depthwise)(cin, cout, 3, 2, 1, bn_eps=bn_eps)]
            if use_spp:
                stage.append(SPPBottleneck(cout, cout, bn_eps=bn_eps))
            stage.append(CSPLayer(cout, cout, nblocks, add_identity, use_depthwise, expand_ratio,
                                  channel_attention, bn_eps=bn_eps))
            self.add_module(f"stage{i + 1}", nn.Sequential(*stage))
            self.layers.append(f"stage{i + 1}")

    def forward(self, x):
        outs = []
        for i, name in enumerate(self.layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


class CSPNeXtPAFPN(nn.Module):
    """Top-down then bottom-up path aggregation with CSP layers.

    `out_channels=None` (RTMW) keeps the aggregated maps as they are; otherwise each
    level gets a 3x3 output conv (RTMDet)."""

    def __init__(self, in_channels: Sequence[int], out_channels, num_csp_blocks: int,
                 use_depthwise: bool = False, expand_ratio: float = 0.5,
                 out_indices: Sequence[int] = (0, 1, 2), bn_eps: float = BN_EPS):
        super().__init__()
        self.in_channels = list(in_channels)
        self.out_indices = tuple(out_indices)
        conv = conv_unit(use_depthwise)
        n = len(in_channels)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.reduce_layers = nn.ModuleList()
        self.top_down_blocks = nn.ModuleList()
        for idx in range(n - 1, 0, -1):
            self.reduce_layers.append(ConvModule(in_channels[idx], in_channels[idx - 1], 1, bn_eps=bn_eps))
            self.top_down_blocks.append(CSPLayer(in_channels[idx - 1] * 2, in_channels[idx - 1],
                                                 num_csp_blocks, False, use_depthwise, expand_ratio,
                                                 bn_eps=bn_eps))
        self.downsamples = nn.ModuleList()
        self.bottom_up_blocks = nn.ModuleList()
        for idx in range(n - 1):
            self.downsamples.append(conv(in_channels[idx], in_channels[idx], 3, 2, 1, bn_eps=bn_eps))
            self.bottom_up_blocks.append(CSPLayer(in_channels[idx] * 2, in_channels[idx + 1],
                                                  num_csp_blocks, False, use_depthwise, expand_ratio,
                                                  bn_eps=bn_eps))
        self.out_convs = None
        if out_channels is not None:
            self.out_convs = nn.ModuleList([conv(c, out_channels, 3, 1, 1, bn_eps=bn_eps) for c in in_channels])

    def forward(self, inputs):
        n = len(self.in_channels)
        inner = [inputs[-1]]
        for idx in range(n - 1, 0, -1):
            high = self.reduce_layers[n - 1 - idx](inner[0])
            inner[0] = high
            inner.insert(0, self.top_down_blocks[n - 1 - idx](
                torch.cat([self.upsample(high), inputs[idx - 1]], 1)))
        outs = [inner[0]]
        for idx in range(n - 1):
            down = self.downsamples[idx](outs[-1])
            outs.append(self.bottom_up_blocks[idx](torch.cat([down, inner[idx + 1]], 1)))
        if self.out_convs is not None:
            outs = [conv(o) for conv, o in zip(self.out_convs, outs)]
        return tuple(outs[i] for i in self.out_indices)
