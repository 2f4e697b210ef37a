"""One converted model (metadata + .ncnn.param/.bin) loaded into one `ncnn.Net`.

The net is shared; every inference gets its own extractor, so several threads can
run the same model at once (ncnn extractors are independent; the net is read-only).

Precision modes (ncnn options set before loading):
  "fp32"  fp16 and bf16 storage/packed/arithmetic off, int8 off: bit-for-bit the fp32 graph.
  "fp16"  fp16 storage, packed and arithmetic on (used where the CPU supports them: ARMv8.2+;
          x86 and older ARM fall back to fp32 inside ncnn).
  "int8"  use_int8_inference on (needs an int8 model file from `edgepose quantize`);
          the float layers follow the fp16 setting of the device.
  None    fp16 on ARM, fp32 elsewhere (ncnn's own default is fp16 everywhere it is supported).
`fp16=True/False` overrides the fp16 switches in any mode ("off when asked").

device: "cpu" (default) | "gpu" | "gpu:N" runs on ncnn's Vulkan backend (device.py). On a GPU the
default precision is fp16 storage + arithmetic where the device has them; the ScaleNorm layers keep
fp32 arithmetic there too (ncnn applies the per-layer feature mask 31=1 when it builds each
layer's Vulkan pipeline and when it runs it). INT8 models are refused on a GPU (see GPU_INT8).
"""
from __future__ import annotations

import os
import platform
from typing import Dict, Iterable, Optional, Tuple

import numpy as np

from edgepose.errors import BadArgumentError, EdgeposeError, WrongTaskError
from edgepose.model_meta import ModelMeta, find_model

from . import device as devices

PRECISIONS = ("fp32", "fp16", "int8")
# ncnn's Vulkan int8 kernels are not checked against the CPU's by edgepose: refuse rather than
# risk a silently different answer.
GPU_INT8 = ("int8 models run on the CPU only (edgepose has not validated ncnn's Vulkan int8 path); "
            "use device='cpu' or the fp16/fp32 model")


def is_arm() -> bool:
    return platform.machine().lower() in ("aarch64", "arm64", "armv7l", "armv8l", "armv7")


class NcnnModel:
    """Loaded model: `.meta` (ModelMeta), `.net` (ncnn.Net), `run(mat)` -> {role: array}."""

    def __init__(self, model: str, task: Optional[str] = None, threads: Optional[int] = None,
                 precision: Optional[str] = None, fp16: Optional[bool] = None, device: Optional[str] = None,
                 probe: bool = True):
        from .schedule import apply_to_option, default_plan, prepare_wait_policy
        prepare_wait_policy()  # before the first `import ncnn`: OpenMP reads it when it loads
        import ncnn  # the one binary dependency; imported here so metadata tools work without it

        if precision is not None and precision not in PRECISIONS:
            raise EdgeposeError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise EdgeposeError(f"threads must be a positive integer, got {threads!r}")
        self.json_path = find_model(os.fspath(model), precision, task)
        self.meta = meta = ModelMeta.load(self.json_path)
        if task is not None and meta.task != task:
            raise WrongTaskError(f"{self.json_path}: is a {meta.task!r} model, expected a {task!r} model")
        if precision == "int8" and meta.precision not in ("int8", "mixed"):
            raise EdgeposeError(f"{self.json_path}: is a {meta.precision} model; int8 needs a quantized "
                                f"model (make one with `edgepose quantize`)")
        param, binf = meta.param_path(self.json_path), meta.bin_path(self.json_path)
        for path in (param, binf):
            if not os.path.isfile(path):
                raise EdgeposeError(f"{path}: missing (named by {self.json_path}); re-run `edgepose convert`")
        if probe:
            from .model_check import check_files
            check_files(meta, self.json_path)   # recorded sha256 / int8 scales, before ncnn parses them

        self.gpu = gpu = devices.select_device(device)  # None: the CPU
        if gpu is not None:
            if meta.precision in ("int8", "mixed") or precision == "int8":
                raise BadArgumentError(f"{self.json_path}: device {device!r}: {GPU_INT8}")
            devices.check_fits(gpu, os.path.getsize(binf), str(binf))
        fp16_default = gpu.fp16_storage if gpu is not None else is_arm()
        # the summary names what runs: "mixed" for a mixed model asked for as int8
        self.precision = meta.precision if precision == "int8" else (precision or ("fp16" if fp16_default else "fp32"))
        if fp16 is not None:
            use_fp16 = bool(fp16)
        elif precision == "fp16":
            use_fp16 = True
        elif precision == "fp32":
            use_fp16 = False
        else:
            use_fp16 = fp16_default
        net = ncnn.Net()
        opt = net.opt
        opt.use_fp16_storage = opt.use_fp16_packed = opt.use_fp16_arithmetic = bool(use_fp16)
        opt.use_bf16_storage = False
        if hasattr(opt, "use_bf16_packed"):
            opt.use_bf16_packed = False
        opt.use_int8_inference = meta.precision in ("int8", "mixed")
        opt.use_vulkan_compute = gpu is not None
        if gpu is not None:
            net.set_vulkan_device(gpu.index)
        plan = default_plan()
        apply_to_option(opt, plan, threads if threads is not None else plan.cpus)
        self.fp16 = bool(use_fp16)
        self.threads = opt.num_threads
        if net.load_param(param) != 0:
            raise EdgeposeError(f"{param}: ncnn cannot parse this param file (unknown layer type or "
                                f"corrupt file; see the ncnn message above); re-convert with `edgepose convert`")
        if net.load_model(binf) != 0:
            raise EdgeposeError(f"{binf}: ncnn cannot read the weights (truncated or not matching "
                                f"{os.path.basename(param)}); re-convert with `edgepose convert`")
        blobs = {b.name for b in net.blobs()}
        wanted = [meta.input_blob] + list(meta.output_blobs.values())
        missing = [b for b in wanted if b not in blobs]
        if missing:
            raise EdgeposeError(f"{param}: has no blob named {', '.join(missing)} (named in {self.json_path}); "
                                f"the metadata does not belong to this param file")
        self.net = net
        self._ncnn = ncnn
        self._pixel_type, self._mean, self._norm = self._input_rule(meta, ncnn)
        if probe:
            from .model_check import validate
            validate(self)     # graph vs metadata, int8 scales, finite outputs (BadModelError)

    @staticmethod
    def _input_rule(meta: ModelMeta, ncnn):
        """How uint8 BGR pixels become the graph's input (pixel type, mean, norm for ncnn)."""
        P = ncnn.Mat.PixelType
        if meta.normalization_folded:
            order = meta.channel_order.lower()
            lo, hi = (float(v) for v in meta.pixel_range)
            if (lo, hi) == (0.0, 255.0):
                mean = norm = None
            else:  # v' = lo + v * (hi - lo) / 255
                k = (hi - lo) / 255.0
                mean, norm = [-lo / k] * 3, [k] * 3
        else:
            order = meta.model_channel_order.lower()
            mean = [float(m) for m in meta.mean]
            norm = [1.0 / float(s) for s in meta.std]
        if order not in ("bgr", "rgb"):
            raise EdgeposeError(f"{meta.name}: channel order {order!r} is not bgr or rgb")
        return (P.PIXEL_BGR if order == "bgr" else P.PIXEL_BGR2RGB), mean, norm

    @property
    def input_size(self) -> Tuple[int, int]:
        """Model input (width, height)."""
        return int(self.meta.input_width), int(self.meta.input_height)

    def mat_from_bgr(self, pixels: np.ndarray):
        """uint8 (H, W, 3) BGR -> the ncnn input Mat (float CHW), one conversion inside ncnn.

        The returned Mat owns its data (from_pixels copies), so `pixels` may be reused.
        """
        h, w = pixels.shape[:2]
        mat = self._ncnn.Mat.from_pixels(pixels, self._pixel_type, w, h)
        if self._mean is not None:
            mat.substract_mean_normalize(self._mean, self._norm)
        return mat

    def run(self, mat, roles: Optional[Iterable[str]] = None) -> Dict[str, np.ndarray]:
        """Run one input Mat on a fresh extractor; return {role: float32 array} (copies)."""
        meta = self.meta
        ex = self.net.create_extractor()
        try:
            if ex.input(meta.input_blob, mat) != 0:
                raise EdgeposeError(f"{meta.name}: ncnn refused the input blob {meta.input_blob!r}")
            out = {}
            for role in (roles if roles is not None else meta.output_blobs):
                blob = meta.output_blobs[role]
                ret, m = ex.extract(blob)
                if ret == devices.NCNN_ALLOC_FAILED and self.gpu is not None:
                    raise devices.out_of_memory(self.gpu, f"{meta.name}: blob {blob!r}")
                if ret != 0 or m.empty():  # np.array() of an empty Mat crashes
                    raise EdgeposeError(f"{meta.name}: ncnn produced no output for blob {blob!r} "
                                        f"(role {role}); the model file may be broken")
                out[role] = np.array(m, dtype=np.float32, copy=True)
            return out
        finally:
            ex.clear()
