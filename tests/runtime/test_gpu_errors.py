"""Device selection errors: each is one clear line and its own class, with or without a GPU here.

No Vulkan device is needed: the no-loader case points EDGEPOSE_VULKAN_LOADER at a missing file,
the no-device case points the Vulkan loader's driver list (VK_ICD_FILENAMES) at nothing, each in
a child process so this process's ncnn GPU instance is untouched.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest


NO_LOADER = {"EDGEPOSE_VULKAN_LOADER": "/nonexistent/libvulkan.so.1"}
NO_DEVICE = {"VK_ICD_FILENAMES": "/nonexistent/edgepose_no_icd.json"}

SELECT = ("import sys\nfrom edgepose.runtime.device import select_device\n"
          "try:\n    select_device(sys.argv[1])\n    print('OK')\n"
          "except Exception as e:\n    print(type(e).__name__, e.code, e)\n")


def _select_in_child(device: str, env: dict):
    # No cwd=checkout: its `edgepose/` folder would shadow the installed wheel (tests/board_install.sh).
    r = subprocess.run([sys.executable, "-c", SELECT, device], capture_output=True, text=True,
                       env={**os.environ, **env}, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("text, index", [("cpu", None), (None, None), ("gpu", -1), ("GPU", -1),
                                         ("gpu:0", 0), ("gpu:12", 12), ("vulkan:1", 1)])
def test_parse_device(text, index):
    from edgepose.runtime.device import parse_device
    assert parse_device(text) == index


@pytest.mark.parametrize("text", ["gpu:", "gpu:-1", "gpu:x", "cuda", "gpu0", "", 3])
def test_bad_device_strings(text):
    from edgepose.errors import BadArgumentError, BadDeviceError
    from edgepose.runtime.device import parse_device
    with pytest.raises(BadDeviceError) as e:
        parse_device(text)
    assert isinstance(e.value, BadArgumentError) and "'cpu', 'gpu' or 'gpu:N'" in str(e.value)


def test_no_vulkan_loader():
    from edgepose.errors import ERR_NOT_FOUND
    line = _select_in_child("gpu", NO_LOADER)
    assert line.startswith(f"NoVulkanLoaderError {ERR_NOT_FOUND} ")
    assert "no Vulkan loader" in line and "/nonexistent/libvulkan.so.1" in line


def test_no_vulkan_device():
    from edgepose.errors import ERR_NOT_FOUND
    from edgepose.runtime.device import vulkan_loader_present
    line = _select_in_child("gpu:0", NO_DEVICE)
    want = "NoGpuError" if vulkan_loader_present() else "NoVulkanLoaderError"
    assert line.startswith(f"{want} {ERR_NOT_FOUND} ")


def test_cpu_needs_no_vulkan_at_all():
    assert _select_in_child("cpu", {**NO_LOADER, **NO_DEVICE}) == "OK"


def test_cli_device_errors_are_one_line(rtmdet_dir, wholebody_t_dir, tmp_path, shared):
    image = shared / "data/coco_wholebody_val_gt/images/000000000785.jpg"
    for env, flag, words in ((NO_LOADER, "gpu", "no Vulkan loader"), ({}, "gpu:x", "'cpu', 'gpu' or 'gpu:N'")):
        r = subprocess.run([sys.executable, "-m", "edgepose.cli", "run", str(image), "--det", str(rtmdet_dir),
                            "--pose", str(wholebody_t_dir), "--device", flag, "--no-draw", "-o", str(tmp_path / "o")],
                           capture_output=True, text=True, env={**os.environ, **env}, cwd=tmp_path, timeout=300)
        assert r.returncode == 2
        ours = [ln for ln in r.stderr.splitlines() if ln.startswith("edgepose")]
        assert len(ours) == 1 and words in ours[0], r.stderr
        assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def _fake_gpu(budget_mb=64):
    from edgepose.runtime.device import GpuDevice
    return GpuDevice(index=0, name="fake", type="cpu", fp16_storage=True, fp16_arithmetic=True,
                     int8_storage=False, int8_arithmetic=False, heap_budget_mb=budget_mb)


def test_model_larger_than_gpu_heap_is_refused():
    from edgepose.errors import ERR_INFERENCE, GpuOutOfMemoryError
    from edgepose.runtime.device import check_fits
    check_fits(_fake_gpu(64), 4 * 2**20, "small.bin")      # 12 MB needed: fits
    with pytest.raises(GpuOutOfMemoryError, match="big.bin: needs about 60 MB of GPU memory") as e:
        check_fits(_fake_gpu(16), 20 * 2**20, "big.bin")
    assert e.value.code == ERR_INFERENCE


def test_allocation_failure_on_gpu_is_out_of_memory(wholebody_t_dir):
    """ncnn reports a failed GPU allocation as -100 from extract: that becomes GpuOutOfMemoryError."""
    from edgepose.errors import EdgeposeError, GpuOutOfMemoryError
    from edgepose.runtime.ncnn_model import NcnnModel
    model = NcnnModel(wholebody_t_dir, precision="fp32")

    class FailingExtractor:
        def input(self, name, mat):
            return 0

        def extract(self, name):
            return -100, model._ncnn.Mat()

        def clear(self):
            pass

    class FailingNet:
        def create_extractor(self):
            return FailingExtractor()

    model.net = FailingNet()
    mat = model.mat_from_bgr(np.zeros((256, 192, 3), np.uint8))
    model.gpu = _fake_gpu()
    with pytest.raises(GpuOutOfMemoryError, match="out of GPU memory on fake"):
        model.run(mat)
    model.gpu = None                                   # on the CPU the same failure is a plain error
    with pytest.raises(EdgeposeError) as e:
        model.run(mat)
    assert not isinstance(e.value, GpuOutOfMemoryError)
