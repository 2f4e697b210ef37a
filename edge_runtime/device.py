"""Which device a model runs on: "cpu", "gpu" (ncnn's default Vulkan device) or "gpu:N".

ncnn itself falls back to the CPU without a word when Vulkan is missing or a device index is out
of range; here every such case is an error of its own, so that `device="gpu"` never silently
means the CPU:
  no Vulkan loader (libvulkan)        -> NoVulkanLoaderError
  a loader but no Vulkan device       -> NoGpuError
  "gpu:N" with N >= the device count  -> BadDeviceError (also for a malformed device string)
  model larger than the device heap   -> GpuOutOfMemoryError (and at run time, ncnn's -100)

Capabilities (fp16/int8 storage and arithmetic) are what ncnn itself decides for the device:
a probe net asks for everything and reads back the options ncnn kept after sanitising them
against the device (the Python binding does not expose GpuInfo's support_* queries).

The loader check looks for the library ncnn's own minimal loader (simplevk) opens: the file
NCNN_VULKAN_DRIVER names, else libvulkan.so / libvulkan.so.1 (Linux), libvulkan.dylib /
libvulkan.1.dylib (macOS), vulkan-1.dll (Windows). EDGEPOSE_VULKAN_LOADER replaces that list by
one name; pointing it to a missing file tests the no-loader path.
"""
from __future__ import annotations

import ctypes
import os
import sys
import threading
from dataclasses import dataclass
from typing import List, Optional

from edgepose.errors import BadDeviceError, GpuOutOfMemoryError, NoGpuError, NoVulkanLoaderError

DEVICE_TYPES = {0: "discrete", 1: "integrated", 2: "virtual", 3: "cpu"}
if sys.platform == "darwin":
    LOADER_NAMES = ("libvulkan.dylib", "libvulkan.1.dylib")
elif sys.platform == "win32":
    LOADER_NAMES = ("vulkan-1.dll",)
else:
    LOADER_NAMES = ("libvulkan.so", "libvulkan.so.1")
# ncnn's Layer::forward returns -100 when an allocation fails (its blob allocators give null).
NCNN_ALLOC_FAILED = -100
# Weights on the device plus the largest activations and staging buffers: a model needs a
# few times its file size. 3x the .bin is conservative for our conv nets at batch 1.
MODEL_MEMORY_FACTOR = 3

_PROBE_PARAM = "7767517\n1 1\nInput in 0 1 in 0=4\n"
_lock = threading.Lock()
_cache: dict = {}


@dataclass(frozen=True)
class GpuDevice:
    index: int
    name: str
    type: str                 # discrete / integrated / virtual / cpu (lavapipe is "cpu")
    fp16_storage: bool
    fp16_arithmetic: bool
    int8_storage: bool
    int8_arithmetic: bool
    heap_budget_mb: int

    def describe(self) -> str:
        yn = {True: "yes", False: "no"}
        return (f"Vulkan device {self.index}: {self.name} ({self.type}), fp16 storage "
                f"{yn[self.fp16_storage]} / arithmetic {yn[self.fp16_arithmetic]}, int8 storage "
                f"{yn[self.int8_storage]} / arithmetic {yn[self.int8_arithmetic]}, "
                f"heap budget {self.heap_budget_mb} MB")


def parse_device(device: Optional[str]) -> Optional[int]:
    """"cpu"/None -> None; "gpu" -> -1 (ncnn's default device); "gpu:N" -> N."""
    if device is None:
        return None
    if not isinstance(device, str):
        raise BadDeviceError(f"device must be 'cpu', 'gpu' or 'gpu:N', got {device!r}")
    d = device.strip().lower()
    if d == "cpu":
        return None
    if d in ("gpu", "vulkan"):
        return -1
    head, _, tail = d.partition(":")
    if head in ("gpu", "vulkan") and tail.isdigit():
        return int(tail)
    raise BadDeviceError(f"device must be 'cpu', 'gpu' or 'gpu:N' (N a Vulkan device index), got {device!r}")


def loader_names() -> tuple:
    chosen = os.environ.get("EDGEPOSE_VULKAN_LOADER") or os.environ.get("NCNN_VULKAN_DRIVER")
    return (chosen,) if chosen else LOADER_NAMES


def vulkan_loader_present() -> bool:
    for name in loader_names():
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False


def _probe(ncnn, index: int) -> GpuDevice:
    info = ncnn.get_gpu_info(index)
    net = ncnn.Net()
    opt = net.opt
    opt.use_vulkan_compute = True
    for flag in ("use_fp16_storage", "use_fp16_packed", "use_fp16_arithmetic",
                 "use_int8_storage", "use_int8_arithmetic"):
        setattr(opt, flag, True)
    net.set_vulkan_device(index)
    net.load_param_mem(_PROBE_PARAM)  # load_param sanitises the options against the device
    kept = net.opt
    dev = GpuDevice(index=index, name=str(info.device_name()), type=DEVICE_TYPES.get(int(info.type()), "unknown"),
                    fp16_storage=bool(kept.use_fp16_storage), fp16_arithmetic=bool(kept.use_fp16_arithmetic),
                    int8_storage=bool(kept.use_int8_storage), int8_arithmetic=bool(kept.use_int8_arithmetic),
                    heap_budget_mb=int(ncnn.get_gpu_device(index).get_heap_budget()))
    net.clear()
    return dev


def gpu_count() -> int:
    """Vulkan devices ncnn sees (0 without a loader or a device)."""
    if not vulkan_loader_present():
        return 0
    import ncnn
    return int(ncnn.get_gpu_count())


def list_gpus() -> List[GpuDevice]:
    """Every Vulkan device ncnn sees, with its capabilities (empty without Vulkan)."""
    import ncnn
    return [gpu_device(i, ncnn) for i in range(gpu_count())]


def gpu_device(index: int, ncnn=None) -> GpuDevice:
    if ncnn is None:
        import ncnn
    with _lock:
        if index not in _cache:
            _cache[index] = _probe(ncnn, index)
        return _cache[index]


def select_device(device: Optional[str]) -> Optional[GpuDevice]:
    """The GpuDevice `device` names (None for the CPU), or one clear error why it cannot be used."""
    index = parse_device(device)
    if index is None:
        return None
    if not vulkan_loader_present():
        raise NoVulkanLoaderError(
            f"device {device!r}: no Vulkan loader ({' / '.join(loader_names())} not found); "
            "install the GPU driver's Vulkan support (Debian/Ubuntu: libvulkan1 plus a driver, "
            "Jetson: the L4T graphics libraries) or use device='cpu'")
    import ncnn
    count = int(ncnn.get_gpu_count())
    if count == 0:
        raise NoGpuError(f"device {device!r}: the Vulkan loader found no device (no Vulkan driver installed, "
                         f"or VK_ICD_FILENAMES points to none); use device='cpu'")
    if index == -1:
        index = int(ncnn.get_default_gpu_index())
    if index >= count:
        raise BadDeviceError(f"device {device!r}: there is no Vulkan device {index} "
                             f"({count} device{'s' if count != 1 else ''}: gpu:0..gpu:{count - 1})")
    return gpu_device(index, ncnn)


def check_fits(dev: GpuDevice, model_bytes: int, what: str) -> None:
    """Refuse a model that cannot fit the device heap before ncnn tries (it would fail mid-run)."""
    need_mb = MODEL_MEMORY_FACTOR * model_bytes / 2**20
    if dev.heap_budget_mb > 0 and need_mb > dev.heap_budget_mb:
        raise GpuOutOfMemoryError(f"{what}: needs about {need_mb:.0f} MB of GPU memory, {dev.name} (gpu:{dev.index}) "
                                  f"has a budget of {dev.heap_budget_mb} MB; use device='cpu' or a smaller model")


def out_of_memory(dev: GpuDevice, what: str) -> GpuOutOfMemoryError:
    return GpuOutOfMemoryError(f"{what}: out of GPU memory on {dev.name} (gpu:{dev.index}, budget "
                               f"{dev.heap_budget_mb} MB); run fewer persons at once or use device='cpu'")
