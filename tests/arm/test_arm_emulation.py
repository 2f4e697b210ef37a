"""The board runtime on emulated arm64 (qemu-user + an arm64 Debian root, tests/arm/).

Marker `arm` (not in the default run): builds or reuses the cached root (tests/arm/make_rootfs.sh,
needs root and debootstrap + qemu-user-static + binfmt-support), runs the detector and the
reference pose model at fp32 / fp16 / int8 on COCO images on x86 here and on aarch64 under
`-cpu cortex-a72` (ARMv8.0, no fp16 arithmetic) and `-cpu cortex-a76` (ARMv8.2, fp16 arithmetic),
and compares. The unmarked tests below cover how the root reads this machine's configuration.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import host_config  # noqa: E402  (beside this file: pytest puts its folder on sys.path)
import run_case  # noqa: E402
from helpers import REPO

ARM_DIR = Path(__file__).resolve().parent

# qemu CPU model -> has fp16 arithmetic (ncnn uses it by default there)
ARM_CPUS = {"cortex-a72": False, "cortex-a76": True}
IMAGES_DIR = "data/coco_kp17_val2017_merged/val2017"
CALIB_DIR = "data/calib_coco_val2017_unlabeled"
N_IMAGES = 2              # emulation is slow (seconds per inference): a few images only
MAX_PERSONS = 2
FP32_TOLERANCE_PX = 0.5
GUEST_CASE = "/tmp/edgepose-arm-case"
GUEST_TESTS = "/tmp/edgepose-arm-tests"


# --- how the root borrows the host's configuration (fast, unmarked) --------------------------

def test_debian_mirror_from_one_line_and_deb822_sources(tmp_path):
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm-updates main\n")
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.sources").write_text(
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n\n"
        "Types: deb\nURIs: http://sec.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
        "Types: deb deb-src\nURIs: http://main.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main contrib\n")
    sources = host_config.apt_sources(str(tmp_path / "sources.list"), str(d))
    mirror = host_config.debian_mirror(sources, "bookworm")
    assert (mirror.uri, mirror.suites) == ("http://main.example/debian", ["bookworm"])
    with pytest.raises(SystemExit, match="no 'deb <mirror>"):
        host_config.debian_mirror(sources, "trixie")


def test_root_pip_conf_keeps_remote_indexes_and_copies_the_ca(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("CERT")
    settings = {"index-url": "https://idx.example/simple", "cert": str(ca),
                "extra-index-url": "file:///opt/local/simple https://extra.example/simple"}
    conf = host_config.root_pip_conf(settings, str(tmp_path / "root-ca.crt"))
    assert "index-url = https://idx.example/simple" in conf
    assert "extra-index-url = https://extra.example/simple\n" in conf  # local file: index dropped
    assert f"cert = {host_config.ROOT_CA_PATH}" in conf
    assert (tmp_path / "root-ca.crt").read_text() == "CERT"
    only_local = host_config.root_pip_conf({"extra-index-url": "file:///opt/x"}, None)
    assert "extra-index-url" not in only_local


def test_runtime_dependencies_are_the_base_install():
    deps = host_config.runtime_dependencies(str(REPO / "pyproject.toml"))
    names = {d.split(";")[0].split("=")[0].split("<")[0].split(">")[0].strip().lower() for d in deps}
    assert {"ncnn", "numpy", "opencv-python-headless"} <= names
    assert not names & {"torch", "onnx", "pnnx", "onnxruntime"}


# --- the emulated board ----------------------------------------------------------------------

def _pick_images(shared: Path, detector, count: int):
    """The first `count` images (sorted) where the x86 fp32 detector finds a person."""
    import cv2
    chosen = []
    for path in sorted((shared / IMAGES_DIR).glob("*.jpg")):
        boxes, _scores = detector(cv2.imread(str(path)))
        if len(boxes):
            chosen.append((path, boxes[:MAX_PERSONS]))
        if len(chosen) == count:
            return chosen
    pytest.fail(f"fewer than {count} images with a detected person in {shared / IMAGES_DIR}")


@pytest.fixture(scope="module")
def arm_case(tmp_path_factory, shared, rtmdet_dir, body_t_dir):
    """Case folder: models (fp32 detector, fp32 + int8 pose), images, boxes, x86 results."""
    from edgepose.runtime.detector import Detector
    from edgepose.model_meta import find_model
    from edgepose.quantization.quantize_api import quantize_model

    case = tmp_path_factory.mktemp("arm_case")
    models = case / "models"
    shutil.copytree(rtmdet_dir, models / "det")
    shutil.copytree(body_t_dir, models / "pose")
    int8_json = quantize_model(find_model(str(models / "pose")), [str(shared / CALIB_DIR)],
                               out_dir=str(models), det_model=find_model(str(models / "det")),
                               max_images=4, max_inputs=8, eval_inputs=4, all_int8=True, log=lambda _m: None)
    (case / "images").mkdir()
    picked = _pick_images(shared, Detector(str(models / "det"), threads=1, precision="fp32"), N_IMAGES)
    for path, _ in picked:
        shutil.copyfile(path, case / "images" / path.name)
    spec = {
        "images": [f"images/{p.name}" for p, _ in picked],
        "boxes": [b.tolist() for _, b in picked],
        "detector": {"fp32": "models/det", "fp16": "models/det"},
        "pose": {"fp32": "models/pose", "fp16": "models/pose",
                 "int8": os.path.relpath(os.path.dirname(int8_json), case)},
    }
    (case / run_case.CASE_FILE).write_text(json.dumps(spec, indent=1))
    np.savez(case / "x86.npz", **run_case.run_case(str(case)))
    return case


def _run_checks_in_root(case: Path, cpu: str, fp16: bool, precisions: str, out: str) -> subprocess.CompletedProcess:
    cmd = ["bash", str(ARM_DIR / "run_in_arm.sh"), "--cpu", cpu,
           "--bind", f"{case}:{GUEST_CASE}", "--bind", f"{ARM_DIR}:{GUEST_TESTS}",
           "--env", f"EDGEPOSE_ARM_CASE={GUEST_CASE}",
           "--env", f"EDGEPOSE_ARM_OUT={GUEST_CASE}/{out}",
           "--env", f"EDGEPOSE_ARM_PRECISIONS={precisions}",
           "--env", f"EDGEPOSE_ARM_EXPECT_FP16={int(fp16)}",
           "--", "nice", "python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
           f"{GUEST_TESTS}/checks_on_arm.py"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=3000)


def _keypoint_stats(results, reference, precision, ref_precision="fp32") -> dict:
    d = run_case.keypoint_distances(results, reference, precision, ref_precision)
    return {"max": round(float(d.max()), 4), "median": round(float(np.median(d)), 4),
            "within_1px": round(float((d <= 1.0).mean()), 3)}


def _report(case: Path, cpu: str, out: str) -> dict:
    """Agreement of the emulated run with x86 (pose on the same boxes; random reference weights,
    so int8 keypoints of the seeded model are not meaningful, only their agreement across CPUs)."""
    arm = dict(np.load(case / out))
    x86 = dict(np.load(case / "x86.npz"))
    spec = run_case.load_case(str(case))
    ran = {k.split("/")[1] for k in arm}
    spec = {"pose": [p for p in spec["pose"] if p in ran], "detector": [p for p in spec["detector"] if p in ran]}
    return {
        "cpu": cpu,
        "non_finite": run_case.non_finite_keys(arm),
        "pose_keypoints_px_vs_x86_fp32": {p: _keypoint_stats(arm, x86, p) for p in spec["pose"]},
        "pose_keypoints_px_vs_x86_same_precision": {p: _keypoint_stats(arm, x86, p, p) for p in spec["pose"]},
        "x86_pose_keypoints_px_vs_x86_fp32": {p: _keypoint_stats(x86, x86, p) for p in spec["pose"]},
        "simcc_max_abs_vs_x86_fp32": {p: round(run_case.simcc_deviation(arm, x86, p), 4) for p in spec["pose"]},
        "detector_box_max_px_vs_x86_fp32": {p: round(run_case.box_deviation(arm, x86, p), 4)
                                            for p in spec["detector"]},
    }


SCENARIOS = [
    pytest.param("cortex-a72", "fp32,fp16,int8", id="cortex-a72-all"),
    pytest.param("cortex-a76", "fp32", id="cortex-a76-fp32"),
    # ARMv8.2 with fp16 arithmetic: the converter keeps the GAU's ScaleNorms out of fp16
    # arithmetic with feature mask 31=1; masking fp16 storage too (31=3) made ncnn 1.0.20261020
    # abort ("pool allocator get wild") here.
    pytest.param("cortex-a76", "fp16,int8", id="cortex-a76-fp16-int8"),
]


@pytest.mark.arm
@pytest.mark.parametrize("cpu,precisions", SCENARIOS)
def test_runtime_on_emulated_arm64_matches_x86(arm_case, cpu, precisions, capsys):
    out = f"arm-{cpu}-{precisions.replace(',', '-')}.npz"
    proc = _run_checks_in_root(arm_case, cpu, ARM_CPUS[cpu], precisions, out)
    assert proc.returncode == 0, f"in-root checks failed on {cpu}:\n{proc.stdout[-12000:]}\n{proc.stderr[-3000:]}"
    report = _report(arm_case, cpu, out)
    with capsys.disabled():
        print(f"\n[arm {cpu} {precisions}] {json.dumps(report)}")
    assert not report["non_finite"]
    if "fp32" in precisions:
        assert report["pose_keypoints_px_vs_x86_fp32"]["fp32"]["max"] <= FP32_TOLERANCE_PX
        assert report["detector_box_max_px_vs_x86_fp32"]["fp32"] <= FP32_TOLERANCE_PX


@pytest.mark.arm
@pytest.mark.parametrize("cpu", list(ARM_CPUS))
def test_bench_runs_on_emulated_arm64_and_reports_that_cpu(arm_case, cpu):
    """`edgepose bench` on the board: device facts are the emulated CPU's (its fp16 arithmetic
    from the process's HWCAP, as ncnn sees it), not the x86 host's /proc/cpuinfo."""
    out = f"bench-{cpu}"
    cmd = ["bash", str(ARM_DIR / "run_in_arm.sh"), "--cpu", cpu, "--bind", f"{arm_case}:{GUEST_CASE}",
           "--", "python", "-m", "edgepose", "bench", "--det", f"{GUEST_CASE}/models/det",
           "--pose", f"{GUEST_CASE}/models/pose", "--precision", "fp32", "--threads", "1", "--frames", "2",
           "--warmup", "1", "--persons", "1", "--images", f"{GUEST_CASE}/images", "--no-baseline",
           "-o", f"{GUEST_CASE}/{out}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, f"bench failed on {cpu}:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    report = json.loads((arm_case / out / "bench.json").read_text())
    dev = report["device"]
    assert dev["machine"] == "aarch64" and dev["cpu_model"].startswith("emulated aarch64")
    assert "asimd" in dev["cpu_features"]
    assert ("asimdhp" in dev["cpu_features"]) == dev["ncnn"]["arm_asimdhp"] == ARM_CPUS[cpu]
    row = report["rows"][0]
    assert row["frames"] == 2 and row["fps"] > 0 and row["stages_ms"]["pose_ncnn"]["mean"] > 0


@pytest.mark.arm
def test_root_pip_list_has_no_host_toolchain():
    """Acceptance: installing the package on aarch64 pulls no torch/onnx/pnnx (make_rootfs.sh records pip list)."""
    root = subprocess.run(["bash", str(ARM_DIR / "make_rootfs.sh")], capture_output=True, text=True,
                          timeout=3000)
    assert root.returncode == 0, root.stderr[-3000:]
    freeze = (Path(root.stdout.strip().splitlines()[-1]) / ".edgepose-pip-freeze.txt").read_text()
    names = {line.split("==")[0].strip().lower() for line in freeze.splitlines() if line.strip()}
    assert {"edgepose", "ncnn", "numpy", "opencv-python-headless"} <= names
    assert not names & {"torch", "onnx", "pnnx", "onnxruntime"}
