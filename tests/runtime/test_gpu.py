"""The runtime on ncnn's Vulkan backend (marker `gpu`; CI installs lavapipe, a software Vulkan device).

Without a Vulkan device these tests skip on a developer machine and FAIL under CI=true, so a CI
image that lost its Vulkan driver cannot turn the GPU suite green by skipping it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import rewrite_param, REPO, shared_dir

pytestmark = pytest.mark.gpu

FP16_MAX = 65504.0


@pytest.fixture(scope="session")
def gpu():
    from edgepose.errors import NoGpuError
    from edgepose.runtime.device import select_device
    try:
        return select_device("gpu")
    except NoGpuError as e:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but no Vulkan device: {e} (install mesa-vulkan-drivers libvulkan1)")
        pytest.skip(f"no Vulkan device here: {e}")


@pytest.fixture(scope="session")
def parity(benchmark_script):
    return benchmark_script("gpu_parity")


def test_device_is_probed(gpu):
    from edgepose.runtime.device import list_gpus
    gpus = list_gpus()
    assert gpus and gpus[gpu.index] == gpu
    assert gpu.name and gpu.name in gpu.describe()
    assert gpu.heap_budget_mb > 0


def test_pipeline_parity_fp32(gpu, parity, rtmdet_dir, wholebody_t_dir):
    fig = parity.parity_figures(rtmdet_dir, wholebody_t_dir, parity.example_images(), "fp32")
    print(fig)
    assert fig["images"] == 5 and fig["keypoints"] > 3000
    assert fig["gpu_precision"] == "fp32" and fig["all_finite"]
    assert fig["box_counts_differ"] == []
    assert fig["max_box_px_diff"] < 0.5
    assert fig["over_0.5px_not_ties"] == []       # only genuine SimCC ties of the random weights move
    assert fig["within_0.5px"] > 0.99


def _l2_norm_blobs(param: Path):
    """Top blobs of the L2 Reduction layers (the ScaleNorms' ||x||)."""
    tops = []
    for line in param.read_text().splitlines():
        f = line.split()
        if f and f[0] == "Reduction" and "0=8" in f:
            n_in = int(f[2])
            tops.append(f[4 + n_in])
    return tops


def _norms(model, image, blobs):
    ex = model.net.create_extractor()
    ex.input(model.meta.input_blob, model.mat_from_bgr(image))
    out = {}
    for b in blobs:
        ret, m = ex.extract(b)
        assert ret == 0
        out[b] = np.array(m, dtype=np.float32)
    return out


def _crop(path, size=(192, 256)):
    return cv2.resize(cv2.imread(path), size)


def test_overflow_model_really_overflows_fp16(gpu, parity, wholebody_t_overflow_dir):
    """The test model is what it claims: every GAU-norm sum of squares is above fp16's range,
    and without the per-layer fp32 mask the GPU's fp16 norm is infinite (the known failure)."""
    from edgepose.runtime.ncnn_model import NcnnModel
    param = next(wholebody_t_overflow_dir.glob("*.ncnn.param"))
    blobs = _l2_norm_blobs(param)
    assert len(blobs) == 2 and param.read_text().count(" 31=1") >= 2
    image = _crop(parity.example_images()[0])
    cpu = NcnnModel(wholebody_t_overflow_dir, precision="fp32")
    gau_norm = _norms(cpu, image, blobs)[blobs[1]]
    assert (gau_norm.astype(np.float64) ** 2).min() > FP16_MAX
    unmasked = wholebody_t_overflow_dir.parent / "overflow_unmasked"
    shutil.rmtree(unmasked, ignore_errors=True)
    shutil.copytree(wholebody_t_overflow_dir, unmasked)
    rewrite_param(unmasked, lambda text: text.replace(" 31=1", ""))
    broken = NcnnModel(unmasked, precision="fp16", device="gpu")
    assert not np.isfinite(_norms(broken, image, blobs)[blobs[1]]).all()
    masked = NcnnModel(wholebody_t_overflow_dir, precision="fp16", device="gpu")
    assert masked.fp16
    got = _norms(masked, image, blobs)[blobs[1]]
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, gau_norm, rtol=5e-3)


def test_fp16_on_overflow_prone_model_is_finite_and_close(gpu, parity, rtmdet_dir, wholebody_t_overflow_dir):
    if not gpu.fp16_storage:
        pytest.skip(f"{gpu.name} has no fp16 storage: fp16 runs as fp32 there")
    fig = parity.parity_figures(rtmdet_dir, wholebody_t_overflow_dir, parity.example_images(), "fp16",
                                det_precision="fp32")
    print(fig)
    assert fig["gpu_precision"] == "fp16" and fig["all_finite"]
    assert fig["box_counts_differ"] == [] and fig["max_box_px_diff"] < 0.5
    assert fig["median_kp_px"] <= 1.0
    assert fig["within_2px"] >= 0.90


def test_default_precision_on_gpu_is_fp16_where_the_device_has_it(gpu, wholebody_t_dir):
    from edgepose.runtime.ncnn_model import NcnnModel
    m = NcnnModel(wholebody_t_dir, device="gpu")
    assert m.fp16 == gpu.fp16_storage and m.precision == ("fp16" if gpu.fp16_storage else "fp32")
    assert NcnnModel(wholebody_t_dir, device="gpu", precision="fp32").fp16 is False


def test_persons_run_concurrently_on_one_device(gpu, parity, wholebody_t_dir):
    """Several extractors of one net on one Vulkan device at once give each person's own result."""
    from edgepose.runtime.pose import PoseEstimator
    img = cv2.imread(parity.example_images()[1])
    h, w = img.shape[:2]
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, [w * 0.6, h * 0.6], size=(12, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(60, 250, size=(12, 2))], axis=1).astype(np.float32)
    one = PoseEstimator(wholebody_t_dir, precision="fp32", device="gpu")
    many = PoseEstimator(wholebody_t_dir, precision="fp32", device="gpu", concurrency=4)
    kp1, sc1 = one(img, boxes)
    errors = []

    def worker():
        try:
            kp, sc = many(img, boxes)
            np.testing.assert_array_equal(kp, kp1)
            np.testing.assert_array_equal(sc, sc1)
        except Exception as e:  # collected: an assert in a thread would be lost
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    many.close()
    assert errors == []


def test_bad_device_index(gpu, wholebody_t_dir):
    from edgepose.errors import BadDeviceError
    from edgepose.runtime.pose import PoseEstimator
    with pytest.raises(BadDeviceError, match="no Vulkan device 99"):
        PoseEstimator(wholebody_t_dir, device="gpu:99")


def test_int8_model_is_refused_on_gpu(gpu, wholebody_t_dir, tmp_path):
    from edgepose.errors import BadArgumentError
    from edgepose.runtime.ncnn_model import NcnnModel
    folder = tmp_path / "int8"
    shutil.copytree(wholebody_t_dir, folder)
    meta_path = next(p for p in folder.glob("*.json") if not p.name.startswith("."))
    meta = json.loads(meta_path.read_text())
    meta["precision"] = "int8"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(BadArgumentError, match="int8 models run on the CPU only"):
        NcnnModel(folder, device="gpu")


def test_cli_run_on_gpu_prints_the_device_and_matches_cpu(gpu, rtmdet_dir, wholebody_t_dir, tmp_path):
    image = str(shared_dir() / "data/coco_wholebody_val_gt/images/000000197388.jpg")
    results = {}
    for device in ("cpu", "gpu"):
        out = tmp_path / device
        r = subprocess.run([sys.executable, "-m", "edgepose.cli", "run", image, "--det", str(rtmdet_dir),
                            "--pose", str(wholebody_t_dir), "--precision", "fp32", "--device", device,
                            "--no-draw", "-o", str(out)], capture_output=True, text=True, cwd=REPO)
        assert r.returncode == 0, r.stderr
        if device == "gpu":
            assert f"running on Vulkan device {gpu.index}: {gpu.name}" in r.stderr
            assert "fp16 storage" in r.stderr and "int8 storage" in r.stderr
        anns = json.loads(next(p for p in out.glob("*.json") if not p.name.startswith(".")).read_text())
        anns = anns["annotations"] if isinstance(anns, dict) else anns
        results[device] = anns
    assert len(results["cpu"]) == len(results["gpu"]) > 0
    near = []
    for a, b in zip(results["cpu"], results["gpu"]):
        assert np.abs(np.array(a["bbox"]) - np.array(b["bbox"])).max() < 0.5
        ka, kb = (np.array(x["keypoints"]).reshape(-1, 3)[:, :2] for x in (a, b))
        near.append(np.linalg.norm(ka - kb, axis=1) <= 0.5)
    assert np.concatenate(near).mean() > 0.99   # the rest: SimCC ties of the random weights


def test_bench_has_gpu_rows_beside_cpu_rows(gpu, rtmdet_dir, body_t_dir, tmp_path):
    from edgepose.runtime.bench.report import markdown, table_lines
    from edgepose.runtime.bench.run import bench
    image = str(shared_dir() / "data/coco_wholebody_val_gt/images/000000000785.jpg")
    report = bench([str(rtmdet_dir)], [str(body_t_dir)], [image], precisions=["fp32", "int8"], threads=[1],
                   targets=(1,), frames=2, warmup=1, rounds=1, baseline=False, memory=False,
                   devices=["cpu", "gpu"], log=lambda _m: None)
    cpu_rows = [r for r in report["rows"] if r["device"] == "cpu"]
    gpu_rows = [r for r in report["rows"] if r["device"] != "cpu"]
    assert len(cpu_rows) == len(gpu_rows) == 1
    g = gpu_rows[0]
    assert g["device"] == f"gpu {gpu.name}" and g["precision"] == "fp32"
    assert g["upload_download_ms"] > 0 and set(g["upload_download_ms_per_model"]) == {"detect", "pose"}
    assert g["upload_download_ms"] < g["stages_ms"]["total"]["p50"]
    assert cpu_rows[0].get("upload_download_ms") is None
    assert any(gpu.name in line for line in table_lines(report["rows"]))
    assert "software Vulkan" in markdown(report) or "llvmpipe" not in gpu.name


def test_pose_tracker_on_gpu_follows_the_cpu(gpu, rtmdet_dir, body_t_dir, parity):
    from edgepose.runtime.pose_tracker import PoseTracker
    img = cv2.imread(parity.example_images()[4])
    on_gpu = PoseTracker.load(str(rtmdet_dir), str(body_t_dir), device="gpu", precision="fp32", det_every=2)
    on_cpu = PoseTracker.load(str(rtmdet_dir), str(body_t_dir), device="cpu", precision="fp32", det_every=2)
    assert on_gpu.device == gpu.describe() and on_cpu.device == "cpu"
    for _ in range(3):
        a, b = on_cpu(img), on_gpu(img)
        assert len(a) == len(b) > 0
        assert np.abs(a.boxes - b.boxes).max() < 0.5
        assert (np.linalg.norm(a.keypoints - b.keypoints, axis=2) <= 0.5).mean() > 0.99
