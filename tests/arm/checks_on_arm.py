"""Checks run by pytest INSIDE the emulated arm64 root (tests/test_arm_emulation.py starts them).

Not named test_*.py: the host's pytest must not collect them; inside the root they are named
explicitly. Environment (set by the host test through run_in_arm.sh --env):
  EDGEPOSE_ARM_CASE         case folder (case.json, images, models, x86 results x86.npz)
  EDGEPOSE_ARM_PRECISIONS   comma list of the case's precisions to run (fp32,fp16,int8)
  EDGEPOSE_ARM_OUT          where to write the results (.npz)
  EDGEPOSE_ARM_EXPECT_FP16  "1" if the emulated CPU has fp16 arithmetic (ARMv8.2), else "0"
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_case  # noqa: E402

HOST_TOOLCHAIN = ("torch", "onnx", "pnnx", "onnxruntime")
FP32_KEYPOINT_TOLERANCE_PX = 0.5


def test_machine_is_aarch64_with_expected_fp16_arithmetic():
    import ncnn
    assert platform.machine() == "aarch64"
    expected = os.environ["EDGEPOSE_ARM_EXPECT_FP16"] == "1"
    assert bool(ncnn.cpu_support_arm_asimdhp()) == expected


def test_installed_distributions_are_runtime_only():
    from importlib.metadata import distributions
    names = {d.metadata["Name"].lower().replace("_", "-") for d in distributions()}
    assert {"ncnn", "numpy", "opencv-python-headless", "edgepose"} <= names
    assert not names & set(HOST_TOOLCHAIN), sorted(names & set(HOST_TOOLCHAIN))


def test_every_runtime_module_imports_without_host_toolchain():
    # A fresh interpreter: the core and the runtime alone, nothing pytest pulled in.
    probe = (
        "import importlib, json, pkgutil, sys, edgepose, edgepose.runtime\n"
        "names = ['edgepose.cli', 'edgepose.files', 'edgepose.ncnn_io'] + [\n"
        "    m.name for m in pkgutil.walk_packages(edgepose.runtime.__path__, 'edgepose.runtime.')]\n"
        "for n in names: importlib.import_module(n)\n"
        "print(json.dumps({'modules': names, 'loaded': sorted(sys.modules)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.splitlines()[-1])
    assert {"edgepose.runtime.pose", "edgepose.runtime.detector", "edgepose.runtime.run_cli"} <= set(report["modules"])
    leaked = [m for m in report["loaded"] if m.split(".")[0] in HOST_TOOLCHAIN]
    assert not leaked, leaked


def test_models_run_finite_and_fp32_matches_x86():
    case_dir = os.environ["EDGEPOSE_ARM_CASE"]
    precisions = os.environ["EDGEPOSE_ARM_PRECISIONS"].split(",")
    results = run_case.run_case(case_dir, precisions)
    np.savez(os.environ["EDGEPOSE_ARM_OUT"], **results)
    reference = dict(np.load(os.path.join(case_dir, "x86.npz")))
    assert results and set(results) <= set(reference)
    assert not run_case.non_finite_keys(results)
    if "fp32" in precisions:
        assert run_case.keypoint_deviation(results, reference, "fp32") <= FP32_KEYPOINT_TOLERANCE_PX
        assert run_case.box_deviation(results, reference, "fp32") <= FP32_KEYPOINT_TOLERANCE_PX
