"""Top-down pose model: CSPNeXt backbone [+ PAFPN neck for RTMW] + SimCC head.

forward(x) takes the normalised image tensor (N, 3, H, W) in the model's channel
order (RGB for the official pose models) and returns (simcc_x, simcc_y) of shapes
(N, K, W*ratio) and (N, K, H*ratio), exactly what the official deploy ONNX returns."""
from __future__ import annotations

import torch.nn as nn

from .configs import ArchSpec
from .cspnext import CSPNeXt, stage_channels
from .rtmcc_head import RTMCCHead
from .rtmw import RTMWHead, build_rtmw_neck


class TopdownPoseModel(nn.Module):
    def __init__(self, spec: ArchSpec):
        super().__init__()
        self.spec = spec
        head_kw = dict(in_channels=stage_channels(spec.widen_factor)[-1], num_keypoints=spec.num_keypoints,
                       input_size=spec.input_size, simcc_split_ratio=spec.simcc_split_ratio,
                       final_layer_kernel_size=spec.final_layer_kernel_size, hidden_dims=spec.hidden_dims,
                       s=spec.gau_s, expansion_factor=spec.gau_expansion)
        if spec.family == "rtmw":
            self.backbone = CSPNeXt(spec.deepen_factor, spec.widen_factor, out_indices=(2, 3, 4))
            self.neck = build_rtmw_neck(spec.widen_factor)
            self.head = RTMWHead(**head_kw)
        elif spec.family == "rtmpose":
            self.backbone = CSPNeXt(spec.deepen_factor, spec.widen_factor, out_indices=(4,))
            self.neck = None
            self.head = RTMCCHead(**head_kw)
        else:
            raise ValueError(f"{spec.name}: not a pose model family ({spec.family})")

    def forward(self, x):
        feats = self.backbone(x)
        if self.neck is not None:
            feats = self.neck(feats)
        return self.head(feats)


def build_pose_model(spec: ArchSpec) -> TopdownPoseModel:
    """A freshly initialised model in eval mode (load weights with load_state_dict)."""
    return TopdownPoseModel(spec).eval()
