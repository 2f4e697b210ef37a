"""RTMDet detector: CSPNeXt + CSPNeXtPAFPN + RTMDetSepBNHead (separate BN per level).

forward(x) takes the normalised BGR tensor and returns the raw heads as the official
head's forward does: (cls_8, cls_16, cls_32, box_8, box_16, box_32); cls are logits
(pre-sigmoid) [N, C, H, W]; box are (l, t, r, b) distances from each grid point in
units of the level stride (exp'd when the config has exp_on_reg), the project's
`box_*` convention; the official head multiplies them by the stride afterwards, and
so does the decoder. Decoding and NMS live outside the network."""
from __future__ import annotations

import torch.nn as nn

from .blocks import conv_unit
from .configs import ArchSpec
from .cspnext import CSPNeXt, CSPNeXtPAFPN, stage_channels


class RTMDetSepBNHead(nn.Module):
    def __init__(self, num_classes: int, in_channels: int, feat_channels: int, strides=(8, 16, 32),
                 stacked_convs: int = 2, share_conv: bool = True, use_depthwise: bool = False,
                 exp_on_reg: bool = False, pred_kernel_size: int = 1):
        super().__init__()
        self.strides = tuple(strides)
        self.exp_on_reg = exp_on_reg
        conv = conv_unit(use_depthwise)
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        self.rtm_cls = nn.ModuleList()
        self.rtm_reg = nn.ModuleList()
        pad = pred_kernel_size // 2
        for _ in self.strides:
            self.cls_convs.append(nn.ModuleList(
                [conv(in_channels if i == 0 else feat_channels, feat_channels, 3, 1, 1) for i in range(stacked_convs)]))
            self.reg_convs.append(nn.ModuleList(
                [conv(in_channels if i == 0 else feat_channels, feat_channels, 3, 1, 1) for i in range(stacked_convs)]))
            self.rtm_cls.append(nn.Conv2d(feat_channels, num_classes, pred_kernel_size, padding=pad))
            self.rtm_reg.append(nn.Conv2d(feat_channels, 4, pred_kernel_size, padding=pad))
        if share_conv:
            # Convolutions shared across levels, BN separate: the state dict still lists
            # the shared weight under every level's name, as the official head does.
            for n in range(1, len(self.strides)):
                for i in range(stacked_convs):
                    self.cls_convs[n][i].conv = self.cls_convs[0][i].conv
                    self.reg_convs[n][i].conv = self.reg_convs[0][i].conv

    def forward(self, feats):
        cls_out, box_out = [], []
        for idx, x in enumerate(feats):
            c = x
            for layer in self.cls_convs[idx]:
                c = layer(c)
            r = x
            for layer in self.reg_convs[idx]:
                r = layer(r)
            reg = self.rtm_reg[idx](r)
            if self.exp_on_reg:
                reg = reg.exp()
            cls_out.append(self.rtm_cls[idx](c))
            box_out.append(reg)
        return tuple(cls_out) + tuple(box_out)


class RTMDet(nn.Module):
    def __init__(self, spec: ArchSpec):
        super().__init__()
        self.spec = spec
        chans = stage_channels(spec.widen_factor)[2:]
        self.backbone = CSPNeXt(spec.deepen_factor, spec.widen_factor, out_indices=(2, 3, 4),
                                use_depthwise=spec.use_depthwise)
        self.neck = CSPNeXtPAFPN(chans, spec.neck_out_channels, spec.num_csp_blocks,
                                 use_depthwise=spec.use_depthwise)
        self.bbox_head = RTMDetSepBNHead(spec.num_classes, spec.neck_out_channels, spec.feat_channels,
                                         spec.strides, share_conv=spec.share_conv,
                                         use_depthwise=spec.use_depthwise, exp_on_reg=spec.exp_on_reg)

    def forward(self, x):
        return self.bbox_head(self.neck(self.backbone(x)))


def build_rtmdet(spec: ArchSpec) -> RTMDet:
    if spec.family != "rtmdet":
        raise ValueError(f"{spec.name}: not an RTMDet config")
    return RTMDet(spec).eval()
