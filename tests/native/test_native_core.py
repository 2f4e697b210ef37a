"""The C++ core (android_demo/core) against edge_runtime, on the host, through JNI, and on aarch64.

Marker `native` (not in the default run; CI runs `pytest -m native`). The first test builds
ncnn from its PyPI sdist and the core (android_demo/scripts/build_core.sh; cached in
~/.cache/edgepose). Needs cmake, g++, a JDK (javac/java), and for the aarch64 tests
g++-aarch64-linux-gnu and qemu-user (`qemu-aarch64`).

Parity rule (acceptance): same persons, keypoints within 0.5 px of edge_runtime, fp32 on both
sides, detector + pose model converted by `convert.api.convert` into a temporary folder.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO

pytestmark = pytest.mark.native

SCRIPTS = REPO / "android_demo" / "scripts"
APP_JAVA = REPO / "android_demo" / "app" / "src" / "main" / "java"
HARNESS_JAVA = REPO / "android_demo" / "core" / "java-harness"
IMAGES = "data/coco_kp17_val2017_merged/val2017"
# A handful of COCO val2017 images: one person, two, a crowd (15 persons), and one with none.
IMAGE_NAMES = ["000000000139.jpg", "000000000785.jpg", "000000000802.jpg", "000000001000.jpg",
               "000000009483.jpg"]
ARM_IMAGES = ["000000000785.jpg", "000000009483.jpg"]   # qemu is slow: two images
MAX_PX = 0.5
QEMU_SYSROOT = "/usr/aarch64-linux-gnu"
# The Vulkan loader reads its driver list from here: a missing file means no device at all.
NO_VULKAN_DEVICE = {"VK_ICD_FILENAMES": "/nonexistent/edgepose_no_icd.json"}


def _build(arch: str) -> Path:
    res = subprocess.run(["bash", str(SCRIPTS / "build_core.sh"), arch], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"build_core.sh {arch} failed:\n{res.stderr[-3000:]}")
    return Path(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def host_build() -> Path:
    return _build("host")


@pytest.fixture(scope="session")
def arm_build() -> Path:
    missing = [t for t in ("aarch64-linux-gnu-g++", "qemu-aarch64") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed (apt-get install g++-aarch64-linux-gnu qemu-user)")
    return _build("aarch64")


@pytest.fixture(scope="session")
def ppm_images(tmp_path_factory, shared) -> dict:
    """name -> PPM path: decoded once with OpenCV, so Python, the CLI and Java see the same pixels."""
    import cv2
    out = tmp_path_factory.mktemp("native_images")
    paths = {}
    for name in IMAGE_NAMES:
        img = cv2.imread(str(shared / IMAGES / name))
        assert img is not None, name
        p = out / (Path(name).stem + ".ppm")
        assert cv2.imwrite(str(p), img)
        paths[name] = p
    return paths


@pytest.fixture(scope="session")
def reference_runs(rtmdet_dir, wholebody_t_dir, ppm_images) -> dict:
    """edgepose_runtime's result per image (the same steps as the core's still-image mode), with
    the SimCC logits of every kept person, to tell a real difference from an exact tie."""
    import cv2
    from edgepose.runtime.detector import Detector
    from edgepose.runtime.pose import PoseEstimator
    from edgepose.runtime.pose_nms import pose_nms
    det = Detector(str(rtmdet_dir), precision="fp32", threads=1)
    pose = PoseEstimator(str(wholebody_t_dir), precision="fp32", threads=1)
    sigmas = (pose.meta.keypoints or {}).get("sigmas")
    out = {}
    for name, path in ppm_images.items():
        img = cv2.imread(str(path))
        boxes, box_scores = det(img)
        crops, centers, scales, runs = pose.preprocess(img, boxes)
        assert runs.all()
        simcc_x, simcc_y = pose.inference(crops)
        kps, scores = pose.postprocess(simcc_x, simcc_y, centers, scales, runs)
        keep = np.sort(pose_nms(kps, scores, boxes, sigmas=sigmas, pose_scores=scores.mean(axis=1)))
        out[name] = {"poses": (boxes[keep], kps[keep], scores[keep]),
                     "simcc": (simcc_x[keep], simcc_y[keep], centers[keep], scales[keep],
                               pose.input_size, pose.split_ratio)}
    return out


@pytest.fixture(scope="session")
def reference(reference_runs) -> dict:
    return {name: r["poses"] for name, r in reference_runs.items()}


def _tied(simcc, person: int, kp: int, point) -> bool:
    """True when the logits at the bins of `point` equal the maximum up to float rounding.

    The C++ core links ncnn built from source for plain SSE2, the Python wheel dispatches AVX-512
    kernels: summation order differs by ~1e-6 relative, and with the random reference weights
    some SimCC rows have two equal peaks, so either may win. Such a keypoint is not a difference
    in our pre/post-processing; anything else is."""
    from edgepose.runtime.preprocess import warp_matrix
    sx, sy, centers, scales, input_size, split = simcc
    m = warp_matrix(centers[person], scales[person], input_size)
    x_in, y_in = m @ np.array([point[0], point[1], 1.0])
    bx, by = int(round(x_in * split)), int(round(y_in * split))
    rx, ry = sx[person, kp], sy[person, kp]
    if not (0 <= bx < rx.size and 0 <= by < ry.size):
        return False
    tol = lambda row: 1e-4 * max(1.0, float(np.abs(row).max()))  # noqa: E731
    return rx[bx] >= rx.max() - tol(rx) and ry[by] >= ry.max() - tol(ry)


def _parse(line: str):
    r = json.loads(line)
    assert "error" not in r, r
    persons = r["persons"]
    boxes = np.array([p["box"] for p in persons], np.float64).reshape(-1, 4)
    k = len(persons[0]["keypoints"]) if persons else 0
    kps = np.array([p["keypoints"] for p in persons], np.float64).reshape(len(persons), k, 2)
    scores = np.array([p["scores"] for p in persons], np.float64).reshape(len(persons), k)
    return boxes, kps, scores


def _assert_same_poses(got, want, label: str, simcc=None) -> float:
    """Same persons in the same order, keypoints within MAX_PX (or, with `simcc`, at an exact tie
    of the reference logits for at most 1% of keypoints); returns the max non-tie difference."""
    gb, gk, gs = got
    wb, wk, ws = want
    assert len(gb) == len(wb), f"{label}: {len(gb)} persons, expected {len(wb)}"
    if len(wb) == 0:
        return 0.0
    assert np.isfinite(gk).all() and np.isfinite(gs).all(), f"{label}: non-finite keypoints"
    assert np.abs(gb - wb).max() <= MAX_PX, f"{label}: boxes differ by {np.abs(gb - wb).max():.3f} px"
    assert gk.shape == wk.shape, f"{label}: keypoints {gk.shape}, expected {wk.shape}"
    per_kp = np.abs(gk - wk).max(axis=-1)
    off = np.argwhere(per_kp > MAX_PX)
    if simcc is not None and len(off):
        ties = [tuple(ij) for ij in off if _tied(simcc, ij[0], ij[1], gk[ij[0], ij[1]])]
        assert len(ties) <= 0.01 * per_kp.size, f"{label}: {len(ties)} tie flips"
        for i, j in ties:
            per_kp[i, j] = 0.0
    diff = float(per_kp.max())
    assert diff <= MAX_PX, f"{label}: keypoints differ by up to {diff:.3f} px (limit {MAX_PX})"
    return diff


def _cli(build: Path, args, qemu_cpu=None, timeout=900):
    cmd = [str(build / "edgepose_native")] + [str(a) for a in args]
    if qemu_cpu:
        cmd = ["qemu-aarch64", "-L", QEMU_SYSROOT, "-cpu", qemu_cpu] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


# -- host CLI -------------------------------------------------------------------

def test_cli_matches_edge_runtime(host_build, rtmdet_dir, wholebody_t_dir, ppm_images, reference, reference_runs):
    names = list(ppm_images)
    res = _cli(host_build, ["--det", rtmdet_dir, "--pose", wholebody_t_dir, "--precision", "fp32",
                            "--threads", "1"] + [ppm_images[n] for n in names])
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == len(names)
    worst, persons = 0.0, 0
    for name, line in zip(names, lines):
        got = _parse(line)
        worst = max(worst, _assert_same_poses(got, reference[name], f"CLI {name}",
                                              reference_runs[name]["simcc"]))
        persons += len(got[0])
    assert persons >= 5, "the images should hold several persons"
    print(f"CLI vs edge_runtime: {persons} persons, max keypoint difference {worst:.4f} px")


def test_cli_draw_writes_image(host_build, rtmdet_dir, wholebody_t_dir, ppm_images, tmp_path):
    import cv2
    out = tmp_path / "drawn.ppm"
    src = ppm_images["000000000785.jpg"]
    res = _cli(host_build, ["--det", rtmdet_dir, "--pose", wholebody_t_dir, "--precision", "fp32",
                            "--threads", "1", "--draw", out, src])
    assert res.returncode == 0, res.stderr
    drawn, orig = cv2.imread(str(out)), cv2.imread(str(src))
    assert drawn.shape == orig.shape
    assert (drawn != orig).any(axis=2).sum() > 500, "no skeleton drawn"
    assert not (tmp_path / "drawn.ppm.tmp").exists()


def test_cli_video_frames_match_pose_tracker(host_build, rtmdet_dir, wholebody_t_dir, ppm_images):
    # The same picture as 4 video frames: detection on frame 0, boxes carried from the poses on
    # frames 1-3 (det_every 5), pose NMS, track ids, One-Euro smoothing at 30 fps: the core's
    # video path against edge_runtime.pose_tracker.PoseTracker.
    import types

    import cv2
    from edgepose.runtime.detector import Detector
    from edgepose.runtime.pose import PoseEstimator
    from edgepose.runtime.pose_tracker import PoseTracker
    src = ppm_images["000000009483.jpg"]
    res = _cli(host_build, ["--det", rtmdet_dir, "--pose", wholebody_t_dir, "--precision", "fp32", "--threads", "1",
                            "--frames", "4", src])
    assert res.returncode == 0, res.stderr
    got = _parse(res.stdout)
    ids = [p["track_id"] for p in json.loads(res.stdout)["persons"]]

    solution = types.SimpleNamespace(detector=Detector(str(rtmdet_dir), precision="fp32", threads=1),
                                     pose_estimator=PoseEstimator(str(wholebody_t_dir), precision="fp32", threads=1))
    tracker = PoseTracker(solution, det_every=5, smooth=True, fps=30.0)
    img = cv2.imread(str(src))
    for _ in range(4):
        want = tracker(img)
    assert not want.detected
    _assert_same_poses(got, (want.boxes, want.keypoints, want.scores), "video frame 4")
    assert ids == [int(i) for i in want.track_ids]


def test_cli_yolox_detector_matches_edge_runtime(host_build, yolox_dir, ppm_images):
    # Detector-only run (no --pose) of the second family. YOLOX boxes come from exp() of the
    # regressed log-sizes times the stride, so the tiny float differences of the two ncnn builds
    # (SSE2 here, AVX2/FMA in the wheel) reach a few tenths of a pixel on large boxes.
    import cv2
    from edgepose.runtime.detector import Detector
    det = Detector(str(yolox_dir), precision="fp32", threads=1)
    names = ["000000000139.jpg", "000000001000.jpg", "000000009483.jpg"]
    res = _cli(host_build, ["--det", yolox_dir, "--precision", "fp32", "--threads", "1"] + [ppm_images[n] for n in names])
    assert res.returncode == 0, res.stderr
    for name, line in zip(names, res.stdout.strip().splitlines()):
        boxes, _, _ = _parse(line)
        want, scores = det(cv2.imread(str(ppm_images[name])))
        assert len(boxes) == len(want), f"{name}: {len(boxes)} boxes, expected {len(want)}"
        if len(want):
            assert np.abs(boxes - want).max() <= 1.0, f"{name}: boxes differ by {np.abs(boxes - want).max():.3f} px"


def _write_bad_models(root: Path, wholebody_t_dir: Path) -> dict:
    """Broken copies of a converted model, one fault each: (path to pass, words of the error)."""
    src_json = next(wholebody_t_dir.glob("*.json"))
    meta = json.loads(src_json.read_text())
    cases = {}

    def copy(name):
        d = root / name
        shutil.copytree(wholebody_t_dir, d)
        return d, d / src_json.name

    d, j = copy("no_bin")
    (d / meta["bin"]).unlink()
    cases["no_bin"] = (d, "missing")
    d, j = copy("bad_format")
    j.write_text(json.dumps(dict(meta, format="something-else/9")))
    cases["bad_format"] = (j, "not an edgepose model file")
    cases["bad_format_folder"] = (d, "no converted model")
    d, j = copy("truncated_json")
    j.write_text(j.read_text()[:100])
    cases["truncated_json"] = (j, "cannot read model metadata")
    d, j = copy("corrupt_param")
    (d / meta["param"]).write_text("7767517\n3 3\nNoSuchLayer x 0 1 in0\n")
    cases["corrupt_param"] = (d, "cannot parse this param file")
    d, j = copy("wrong_blob")
    j.write_text(json.dumps(dict(meta, output_blobs={"simcc_x": "nope", "simcc_y": "out1"})))
    cases["wrong_blob"] = (d, "has no blob named nope")
    d, j = copy("lacks_field")
    j.write_text(json.dumps({k: v for k, v in meta.items() if k != "input_blob"}))
    cases["lacks_field"] = (j, "lacks input_blob")
    d, j = copy("param_without_json")
    j.unlink()
    cases["param_without_json"] = (d / meta["param"], "no metadata file")
    empty = root / "empty"
    empty.mkdir()
    cases["empty_folder"] = (empty, "no converted model")
    cases["missing"] = (root / "does-not-exist", "model not found")
    return cases


def test_cli_bad_models_are_clear_errors(host_build, rtmdet_dir, wholebody_t_dir, ppm_images, tmp_path):
    src = ppm_images["000000000785.jpg"]
    for name, (folder, words) in _write_bad_models(tmp_path, wholebody_t_dir).items():
        res = _cli(host_build, ["--det", rtmdet_dir, "--pose", folder, "--threads", "1", src])
        assert res.returncode == 2, f"{name}: exit {res.returncode}\n{res.stderr}"
        err = json.loads(res.stdout.strip().splitlines()[-1])["error"]
        assert words in err["message"], f"{name}: {err}"
        assert err["kind"] in ("not_found", "bad_model"), f"{name}: {err}"
        assert words in res.stderr


def test_cli_bad_images_are_clear_errors(host_build, rtmdet_dir, wholebody_t_dir, ppm_images, tmp_path):
    good = ppm_images["000000000785.jpg"].read_bytes()
    truncated = tmp_path / "truncated.ppm"
    truncated.write_bytes(good[: len(good) // 2])
    empty = tmp_path / "empty.ppm"
    empty.write_bytes(b"")
    zero = tmp_path / "zero.ppm"
    zero.write_bytes(b"P6\n0 0\n255\n")
    text = tmp_path / "text.ppm"
    text.write_text("hello")
    args = ["--det", rtmdet_dir, "--pose", wholebody_t_dir, "--threads", "1"]
    for path, words in [(truncated, "truncated"), (empty, "empty file"), (zero, "empty or too large"),
                        (text, "cannot decode"), (tmp_path / "nope.ppm", "not found")]:
        res = _cli(host_build, args + [path])
        assert res.returncode == 2, f"{path.name}: {res.returncode} {res.stderr}"
        err = json.loads(res.stdout.strip())["error"]
        assert words in err["message"], (path.name, err)


def test_cli_odd_image_sizes_run(host_build, rtmdet_dir, wholebody_t_dir, tmp_path):
    import cv2
    rng = np.random.default_rng(0)
    paths = []
    for w, h in [(1, 1), (3, 517), (1001, 7), (641, 479)]:
        p = tmp_path / f"odd_{w}x{h}.ppm"
        cv2.imwrite(str(p), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        paths.append(p)
    res = _cli(host_build, ["--det", rtmdet_dir, "--pose", wholebody_t_dir, "--threads", "1"] + paths)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == len(paths)
    for p, line in zip(paths, lines):
        r = json.loads(line)
        w, h = (int(v) for v in p.stem.split("_")[1].split("x"))
        assert (r["width"], r["height"]) == (w, h)
        for person in r["persons"]:
            b = person["box"]
            assert 0 <= b[0] <= b[2] <= w and 0 <= b[1] <= b[3] <= h


# -- JNI through the Java harness -------------------------------------------------

@pytest.fixture(scope="session")
def java_classes(tmp_path_factory) -> Path:
    for tool in ("javac", "java"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: a JDK 17 is needed for the JNI harness")
    out = tmp_path_factory.mktemp("java_classes")
    sources = sorted(str(p) for p in (APP_JAVA / "org" / "edgepose" / "core").glob("*.java"))
    sources += sorted(str(p) for p in HARNESS_JAVA.rglob("*.java"))
    res = subprocess.run(["javac", "-d", str(out)] + sources, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return out


def _java(host_build, classes, args, timeout=900, env=None):
    lib = host_build / "libedgepose_jni.so"
    assert lib.is_file(), f"{lib} was not built (no JDK headers?)"
    cmd = ["java", f"-Dedgepose.jni.library={lib}", "-cp", str(classes), "org.edgepose.harness.Harness"]
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                          env=None if env is None else {**os.environ, **env})


def test_jni_matches_edge_runtime(host_build, java_classes, rtmdet_dir, wholebody_t_dir, ppm_images, reference,
                                  reference_runs):
    names = list(ppm_images)
    res = _java(host_build, java_classes, ["run", rtmdet_dir, wholebody_t_dir, "fp32"] + [ppm_images[n] for n in names])
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == len(names)
    worst = 0.0
    for name, line in zip(names, lines):
        worst = max(worst, _assert_same_poses(_parse(line), reference[name], f"JNI {name}",
                                              reference_runs[name]["simcc"]))
    print(f"JNI vs edge_runtime: max keypoint difference {worst:.4f} px")


def test_jni_errors_are_exceptions(host_build, java_classes, rtmdet_dir, wholebody_t_dir, tmp_path):
    broken = tmp_path / "broken_det"
    shutil.copytree(rtmdet_dir, broken)
    meta = json.loads(next(broken.glob("*.json")).read_text())
    (broken / meta["param"]).write_text("not a param file\n")
    # No Vulkan device for this process (the loader finds no driver), so the GPU switch must fail clearly.
    res = _java(host_build, java_classes, ["errors", rtmdet_dir, wholebody_t_dir, broken], env=NO_VULKAN_DEVICE)
    assert res.returncode == 0, res.stderr
    got = {}
    for line in res.stdout.strip().splitlines():
        name, code, *msg = line.split(" ", 2)
        got[name] = (code, msg[0] if msg else "")
    expected = {
        "missing_model_folder": ("1", "model not found"),
        "pose_as_detector": ("2", "no converted model"),
        "bad_precision": ("4", "fp8"),
        "int8_missing": ("4", "no int8 variant"),
        "gpu_without_vulkan": ("1", "no Vulkan device"),
        "bad_model_folder": ("2", "cannot parse"),
        "empty_image": ("3", "empty"),
        "null_pixels": ("3", "null"),
        "short_buffer": ("3", "needs 105"),
        "bad_format": ("4", "pixel format"),
        "odd_size_1x1": ("NO_ERROR", ""),
        "odd_size_3x517": ("NO_ERROR", ""),
        "odd_size_frame_1001x7": ("NO_ERROR", ""),
        "use_after_close": ("4", "closed"),
    }
    for name, (code, words) in expected.items():
        assert name in got, f"{name} missing from the harness output:\n{res.stdout}"
        assert got[name][0] == code, f"{name}: {got[name]}, expected code {code}"
        assert words in got[name][1], f"{name}: {got[name]}"


# -- aarch64 under qemu -------------------------------------------------------------

def test_aarch64_fp32_matches_host(arm_build, host_build, rtmdet_dir, wholebody_t_dir, ppm_images, reference,
                                   reference_runs):
    paths = [ppm_images[n] for n in ARM_IMAGES]
    args = ["--det", rtmdet_dir, "--pose", wholebody_t_dir, "--precision", "fp32", "--threads", "1"] + paths
    arm = _cli(arm_build, args, qemu_cpu="cortex-a53", timeout=1800)
    assert arm.returncode == 0, arm.stderr
    host = _cli(host_build, args)
    assert host.returncode == 0, host.stderr
    for name, a, h in zip(ARM_IMAGES, arm.stdout.strip().splitlines(), host.stdout.strip().splitlines()):
        got = _parse(a)
        _assert_same_poses(got, _parse(h), f"aarch64 vs host {name}")
        _assert_same_poses(got, reference[name], f"aarch64 vs edge_runtime {name}", reference_runs[name]["simcc"])


def test_aarch64_fp16_detector_finite(arm_build, rtmdet_dir, ppm_images):
    # An ARMv8.2 core with fp16 arithmetic (qemu -cpu max): ncnn runs the fp16 kernels.
    paths = [ppm_images[n] for n in ARM_IMAGES]
    res = _cli(arm_build, ["--det", rtmdet_dir, "--precision", "fp16", "--threads", "1"] + paths,
               qemu_cpu="max", timeout=1800)
    assert res.returncode == 0, res.stderr
    for line in res.stdout.strip().splitlines():
        boxes, _, _ = _parse(line)
        assert len(boxes) >= 1, "fp16 detector lost the person"
        assert np.isfinite(boxes).all()


def test_aarch64_fp16_pose_finite_and_close(arm_build, rtmdet_dir, wholebody_t_dir, ppm_images, reference):
    # fp16 arithmetic on an ARMv8.2 core. The GAU's ScaleNorms run with fp16 arithmetic off (feature
    # mask 31=1): without it the L2 reduction overflows fp16 and scores fall to ~0; masking fp16
    # storage as well (31=3) made ncnn corrupt its heap.
    name = ARM_IMAGES[0]
    res = _cli(arm_build, ["--det", rtmdet_dir, "--pose", wholebody_t_dir, "--precision", "fp16", "--threads", "1",
                           ppm_images[name]], qemu_cpu="max", timeout=1800)
    assert res.returncode == 0, res.stderr[-2000:]
    boxes, kps, scores = _parse(res.stdout.strip())
    _, ref_kps, ref_scores = reference[name]
    assert len(kps) == len(ref_kps) >= 1
    assert np.isfinite(kps).all() and np.isfinite(scores).all()
    # Same scale of confidence as fp32 (an overflowed norm gives scores near zero) ...
    ratio = np.median(scores) / np.median(ref_scores)
    assert 0.9 < ratio < 1.1, ratio
    # ... and most keypoints where fp32 puts them (random reference weights: flat logits, near-ties).
    err = np.linalg.norm(kps - ref_kps, axis=-1)
    assert np.median(err) < 2.0 and np.mean(err < 5.0) > 0.9, (np.median(err), np.mean(err < 5.0))


# -- GPU (Vulkan) path of the host core: lavapipe in CI ------------------------

def _require_vulkan_device():
    from edgepose.errors import NoGpuError
    from edgepose.runtime.device import select_device
    try:
        select_device("gpu")
    except NoGpuError as e:
        pytest.fail(f"the native suite tests the core's GPU path and needs a Vulkan device: {e} "
                    f"(apt-get install mesa-vulkan-drivers libvulkan1)")


def test_cli_gpu_matches_cpu_core(host_build, rtmdet_dir, wholebody_t_dir, ppm_images, reference, reference_runs):
    """The core's use_gpu path (fp32 on Vulkan) gives the CPU core's persons and keypoints."""
    _require_vulkan_device()
    names = list(ppm_images)
    common = ["--det", rtmdet_dir, "--pose", wholebody_t_dir, "--precision", "fp32", "--threads", "1"]
    runs = {}
    for device in ("cpu", "gpu"):
        res = _cli(host_build, common + ["--device", device] + [ppm_images[n] for n in names])
        assert res.returncode == 0, res.stderr
        runs[device] = res.stdout.strip().splitlines()
        assert len(runs[device]) == len(names)
        if device == "gpu":
            assert "running on Vulkan device gpu:" in res.stderr
    worst, persons = 0.0, 0
    for i, name in enumerate(names):
        got, cpu = _parse(runs["gpu"][i]), _parse(runs["cpu"][i])
        simcc = reference_runs[name]["simcc"]
        worst = max(worst, _assert_same_poses(got, cpu, f"GPU vs CPU core {name}", simcc))
        _assert_same_poses(got, reference[name], f"GPU core vs edge_runtime {name}", simcc)
        persons += len(got[0])
    assert persons >= 5
    print(f"core GPU vs CPU: {persons} persons, max keypoint difference {worst:.4f} px (ties excluded)")


def test_cli_gpu_errors(host_build, rtmdet_dir, wholebody_t_dir, ppm_images):
    image = ppm_images[IMAGE_NAMES[1]]
    args = ["--det", rtmdet_dir, "--pose", wholebody_t_dir, image]
    cases = {"gpu:99": ({}, 4, "no Vulkan device 99"), "gpu": (NO_VULKAN_DEVICE, 1, "no Vulkan device was found"),
             "gpu:x": ({}, 4, "--device must be")}
    for device, (env, code, words) in cases.items():
        res = subprocess.run([str(host_build / "edgepose_native"), "--device", device] + [str(a) for a in args],
                             capture_output=True, text=True, env={**os.environ, **env}, timeout=300)
        assert res.returncode == 2, (device, res.stderr)
        err = json.loads(res.stdout.strip().splitlines()[-1])["error"]
        assert err["code"] == code and words in err["message"], (device, err)


def test_jni_gpu_switch_matches_cpu(host_build, java_classes, rtmdet_dir, wholebody_t_dir, ppm_images, reference,
                                    reference_runs):
    """The Android app's CPU/GPU switch (NativeCore(..., gpu=true)) through JNI on Vulkan."""
    _require_vulkan_device()
    names = list(ppm_images)
    res = _java(host_build, java_classes, ["run-gpu", rtmdet_dir, wholebody_t_dir, "fp32"] +
                [ppm_images[n] for n in names])
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == len(names)
    for name, line in zip(names, lines):
        _assert_same_poses(_parse(line), reference[name], f"JNI GPU {name}", reference_runs[name]["simcc"])
