"""Hostile input against `edgepose run`, `demo` and `bench`: every case either fails with one
error line (no traceback) or gives the correct result; no input changes; no partial output.

The issue-12 cases are built one by one; then a seeded sweep of random byte corruption of the
models' .param, .bin and .json (a short one in the default suite, the full one under `slow`).
A "correct result" of a damaged model is the undamaged model's result; anything else that exits 0
is a silent wrong answer.
"""
import json
import os
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import (PERSON_IMAGE, UNCREATABLE_DIR, UNWRITABLE_DIR, CliOutcome, copy_model, damage_int8_scales,
                     make_int8_model, model_file, mutate_bytes, mutate_text, rewrite_meta, tree_hashes)

KINDS = (".ncnn.param", ".ncnn.bin", ".json")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shared, rtmdet_dir, body_t_dir):
    """Private copies of the models, the photo, and the clean run's keypoints."""
    root = tmp_path_factory.mktemp("corpus")
    det = copy_model(rtmdet_dir, root / "det")
    pose = copy_model(body_t_dir, root / "pose")
    image = root / "person.jpeg"
    shutil.copy(shared / PERSON_IMAGE, image)
    ref = CliOutcome(["run", image, "--det", det, "--pose", pose, "--threads", "1", "--precision", "fp32",
                      "--no-draw", "-o", root / "ref"])
    assert ref.rc == 0, ref.err
    return {"root": root, "det": det, "pose": pose, "image": image,
            "reference": _keypoints(root / "ref" / "person_keypoints.json")}


def _keypoints(path: Path) -> np.ndarray:
    res = json.loads(path.read_text())
    return np.array([r["keypoints"] for r in res], np.float64).reshape(len(res), -1)


def _run_args(c, out, det=None, pose=None, image=None, precision="fp32"):
    return ["run", image or c["image"], "--det", det or c["det"], "--pose", pose or c["pose"], "--threads", "1",
            "--no-draw", "-o", out] + (["--precision", precision] if precision else [])


def _assert_clean_failure(outcome: CliOutcome, out: Path):
    assert outcome.rc not in (0, None), outcome.out
    assert outcome.problem() is None, outcome.problem()
    assert not out.exists() or not any(out.rglob("*")), sorted(out.rglob("*"))


# -------------------------------------------------------------------- the cases of the issue

def test_metadata_input_size_not_matching_the_graph_is_refused(corpus, tmp_path):
    pose = copy_model(corpus["pose"], tmp_path / "pose")
    rewrite_meta(pose, input_width=288, input_height=384)      # the graph is 192x256
    before = tree_hashes(pose, corpus["image"])
    r = CliOutcome(_run_args(corpus, tmp_path / "out", pose=pose))
    _assert_clean_failure(r, tmp_path / "out")
    assert "does not match its metadata" in r.err and "simcc_x" in r.err and "576" in r.err
    assert tree_hashes(pose, corpus["image"]) == before


@pytest.mark.parametrize("blob,value", [("bottom_int8_scales", 0.0), ("weight_int8_scales", float("nan")),
                                        ("weight_int8_scales", 1e30), ("bottom_int8_scales", -3.0)])
def test_int8_model_with_damaged_scales_is_refused(corpus, tmp_path, blob, value):
    det = make_int8_model(corpus["det"], tmp_path / "det8")
    ok = CliOutcome(_run_args(corpus, tmp_path / "ok", det=det, precision=None))
    assert ok.rc == 0, ok.err                       # the undamaged int8 model loads and runs
    damage_int8_scales(det, blob, value)
    before = tree_hashes(det)
    r = CliOutcome(_run_args(corpus, tmp_path / "out", det=det, precision=None))
    _assert_clean_failure(r, tmp_path / "out")
    assert blob in r.err and "int8 scale" in r.err
    assert tree_hashes(det) == before


def test_int8_only_detector_folder_reports_its_precision(corpus, tmp_path):
    det = make_int8_model(corpus["det"], tmp_path / "det8")
    r = CliOutcome(["run", corpus["image"], "--det", det, "--pose", corpus["pose"], "--threads", "1",
                    "--no-draw", "-o", tmp_path / "out"])
    assert r.rc == 0, r.err
    speed = next(line for line in r.out.splitlines() if "speed:" in line)
    assert "det int8" in speed and "fp32, " not in speed.split("precision")[1].split(",")[0] + ", "


def test_unreadable_image_leaves_no_output(corpus, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    r = CliOutcome(_run_args(corpus, tmp_path / "out", image=bad))
    _assert_clean_failure(r, tmp_path / "out")
    assert "broken.jpg" in r.err
    assert not (tmp_path / "out").exists()          # not even the folder it created


def test_zero_frame_video_leaves_no_output(corpus, tmp_path):
    video = tmp_path / "empty.mp4"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 64))
    for i in range(3):
        w.write(np.random.default_rng(i).integers(0, 255, (64, 64, 3)).astype(np.uint8))
    w.release()
    data = bytearray(video.read_bytes())
    start, index = data.find(b"mdat") + 8, data.find(b"moov")
    data[start:index - 4] = bytes(index - 4 - start)   # the container opens; no frame decodes
    video.write_bytes(bytes(data))
    assert cv2.VideoCapture(str(video)).isOpened()
    out = tmp_path / "out"
    out.mkdir()                                     # an existing folder: it stays, empty
    r = CliOutcome(_run_args(corpus, out, image=video))
    _assert_clean_failure(r, out)
    assert list(out.iterdir()) == []


def test_folder_as_input_and_output_does_not_reprocess_its_outputs(corpus, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(corpus["image"], folder / "a.jpeg")
    shutil.copy(corpus["image"], folder / "b.jpeg")
    args = ["run", folder, "--det", corpus["det"], "--pose", corpus["pose"], "--threads", "1",
            "--precision", "fp32", "-o", folder]
    first = CliOutcome(args)
    assert first.rc == 0 and "2 images processed" in first.out, first.err
    mine = tree_hashes(folder / "a.jpeg", folder / "b.jpeg")
    second = CliOutcome(args)
    assert second.rc == 0 and "2 images processed" in second.out, second.out
    assert not list(folder.glob("*_pose_pose*"))
    names = {r["file_name"] for r in json.loads((folder / "photos_keypoints.json").read_text())}
    assert names == {"a.jpeg", "b.jpeg"}
    assert tree_hashes(folder / "a.jpeg", folder / "b.jpeg") == mine


# -------------------------------------------------------------------- bench output folder

def _bench_args(c, out):
    return ["bench", "--det", c["det"], "--pose", c["pose"], "--images", c["image"], "--precision", "fp32",
            "--threads", "1", "--persons", "1", "--frames", "2", "--rounds", "1", "--warmup", "1",
            "--no-baseline", "--no-memory", "-o", out]


@pytest.mark.parametrize("where", ["file", "unwritable", "uncreatable", "users_bench_md"])
def test_bench_bad_output_folder_fails_before_measuring(corpus, tmp_path, where):
    if where == "file":
        out = tmp_path / "bench-out"
        out.write_text("a file, not a folder")
    elif where == "unwritable":
        out = Path(UNWRITABLE_DIR)
    elif where == "uncreatable":
        out = Path(UNCREATABLE_DIR)
    else:
        out = tmp_path / "reports"
        out.mkdir()
        (out / "bench.md").write_text("# my own notes\n")
    before = tree_hashes(out, corpus["det"], corpus["pose"]) if where != "unwritable" else {}
    t0 = time.perf_counter()
    r = CliOutcome(_bench_args(corpus, out))
    assert r.rc == 2 and r.problem() is None, r.problem() or r.out
    assert time.perf_counter() - t0 < 10, "the output folder must be checked before the benchmark"
    if where != "unwritable":
        assert tree_hashes(out, corpus["det"], corpus["pose"]) == before
    if where == "users_bench_md":
        assert sorted(p.name for p in out.iterdir()) == ["bench.md"]


def test_bench_writes_its_report_and_replaces_only_its_own(corpus, tmp_path):
    out = tmp_path / "reports"
    r = CliOutcome(_bench_args(corpus, out))
    assert r.rc == 0, r.err
    assert {"bench.json", "bench.md"} <= {p.name for p in out.iterdir()}
    again = CliOutcome(_bench_args(corpus, out))      # our own report: replaced
    assert again.rc == 0, again.err
    json.loads((out / "bench.json").read_text())


# -------------------------------------------------------------------- random corruption

def _sweep(corpus, tmp_path, per_kind: int, seed: int, commands=("run",)):
    """Damage one model file per case; count tracebacks, silent wrong answers, lost/changed files
    and partial outputs. Returns the counts (all must be 0) and the number of cases."""
    rng = np.random.default_rng(seed)
    counts = {"cases": 0, "failed_cleanly": 0, "correct": 0, "tracebacks": 0, "silent_wrong": 0,
              "inputs_changed": 0, "partial_outputs": 0}
    problems = []
    for which in ("pose", "det"):
        for kind in KINDS:
            for i in range(per_kind):
                case = tmp_path / f"{which}{kind}-{i}"
                model = copy_model(corpus[which], case / which)
                path = model_file(model, kind)
                data = path.read_bytes()
                damaged = mutate_text(data, rng) if kind != ".ncnn.bin" else mutate_bytes(data, rng)
                if damaged == data:
                    continue
                path.write_bytes(damaged)
                command = commands[int(rng.integers(len(commands)))]
                before = tree_hashes(model, corpus["image"], corpus["det"], corpus["pose"])
                out = case / "out"
                if command == "run":
                    args = _run_args(corpus, out, **{which: model})
                else:
                    args = _bench_args({**corpus, which: model}, out)
                r = CliOutcome(args)
                counts["cases"] += 1
                what = f"{command} with {path.name} damaged (case {i})"
                if r.problem() and r.problem().startswith("traceback"):
                    counts["tracebacks"] += 1
                    problems.append(f"{what}: {r.problem()}")
                elif r.problem():
                    counts["partial_outputs"] += 1
                    problems.append(f"{what}: {r.problem()}")
                elif r.rc == 0:
                    result = out / "person_keypoints.json"
                    got = _keypoints(result) if command == "run" else corpus["reference"]
                    if got.shape == corpus["reference"].shape and np.allclose(got, corpus["reference"], atol=0.02):
                        counts["correct"] += 1
                    else:
                        counts["silent_wrong"] += 1
                        problems.append(f"{what}: exit 0 with other keypoints")
                else:
                    counts["failed_cleanly"] += 1
                    if out.exists() and any(out.rglob("*")):
                        counts["partial_outputs"] += 1
                        problems.append(f"{what}: left {sorted(p.name for p in out.rglob('*'))}")
                if tree_hashes(model, corpus["image"], corpus["det"], corpus["pose"]) != before:
                    counts["inputs_changed"] += 1
                    problems.append(f"{what}: an input changed")
                shutil.rmtree(case)
    return counts, problems


def _assert_sweep(counts, problems):
    print("corpus counts:", json.dumps(counts))
    assert counts["cases"] > 0
    assert not problems, "\n".join(problems[:10])
    assert counts["tracebacks"] == counts["silent_wrong"] == counts["inputs_changed"] == 0
    assert counts["partial_outputs"] == 0


def test_random_corruption_of_models_short(corpus, tmp_path):
    _assert_sweep(*_sweep(corpus, tmp_path, per_kind=6, seed=12))


@pytest.mark.slow
def test_random_corruption_of_models_full(corpus, tmp_path):
    _assert_sweep(*_sweep(corpus, tmp_path, per_kind=40, seed=1212, commands=("run", "run", "run", "bench")))


def test_demo_with_a_damaged_model_fails_cleanly_and_keeps_the_cache(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPOSE_CACHE", str(tmp_path / "cache"))
    pose = copy_model(corpus["pose"], tmp_path / "pose")
    ok = CliOutcome(["demo", "--input", corpus["image"], "--det", corpus["det"], "--pose", pose,
                     "--threads", "1", "-o", tmp_path / "demo-ok"])
    assert ok.rc == 0, ok.err
    registry = tree_hashes(tmp_path / "cache")
    binf = model_file(pose, ".ncnn.bin")
    binf.write_bytes(binf.read_bytes()[:-100])
    r = CliOutcome(["demo", "--input", corpus["image"], "--det", corpus["det"], "--pose", pose,
                    "--threads", "1", "-o", tmp_path / "demo-bad"])
    _assert_clean_failure(r, tmp_path / "demo-bad")
    assert tree_hashes(tmp_path / "cache") == registry
    assert os.path.isfile(str(tmp_path / "demo-ok" / "person_pose.jpeg"))
