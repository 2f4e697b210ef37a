"""Hostile input against `edgepose quantize` and `edgepose compare`: one error line or a correct
result, inputs never changed or deleted, nothing partial left, and a bad output folder refused
before the (long) calibration starts."""
import json
from pathlib import Path

import numpy as np
import pytest

from edgepose.files import MANIFEST

from helpers import (PERSON_IMAGE, UNCREATABLE_DIR, UNWRITABLE_DIR, CliOutcome, copy_model, model_file,
                     json_changes, mutate_bytes, mutate_text, tree_hashes)

COCO_MINI = "data/coco_kp17_val2017_merged/person_keypoints_val2017_merged.json"


@pytest.fixture
def no_calibration(monkeypatch):
    """Calibration must not start: calling it fails the test (as a traceback in the outcome)."""
    from edgepose.quantization import quantize_api

    def refuse(*a, **k):
        raise AssertionError("calibration started before the output folder was checked")
    monkeypatch.setattr(quantize_api, "_calibration_inputs", refuse)


def _quantize(model, calib, out, *extra):
    return CliOutcome(["quantize", model, "--calib", calib, "--max-images", "2", "--threads", "1",
                       "-o", out, *extra])


@pytest.mark.parametrize("where", ["file", "unwritable", "uncreatable"])
def test_quantize_bad_output_fails_before_calibration(rtmdet_dir, shared, tmp_path, no_calibration, where):
    out = {"file": tmp_path / "a_file", "unwritable": Path(UNWRITABLE_DIR),
           "uncreatable": Path(UNCREATABLE_DIR)}[where]
    if where == "file":
        out.write_text("mine")
    before = tree_hashes(rtmdet_dir, tmp_path)
    r = _quantize(rtmdet_dir, shared / PERSON_IMAGE, out)
    assert r.rc == 2 and r.problem() is None, r.problem() or r.out
    assert tree_hashes(rtmdet_dir, tmp_path) == before


def test_quantize_overwrite_never_deletes_a_users_folder(rtmdet_dir, shared, tmp_path, no_calibration):
    name = json.loads(model_file(rtmdet_dir, ".json").read_text())["name"]
    target = tmp_path / f"{name}-int8"
    target.mkdir()
    (target / "notes.txt").write_text("my notes")
    r = _quantize(rtmdet_dir, shared / PERSON_IMAGE, tmp_path, "--overwrite")
    assert r.rc == 2 and r.problem() is None and "notes.txt" in r.err, r.problem() or r.err
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]
    assert (target / "notes.txt").read_text() == "my notes"


@pytest.mark.parametrize("layout", [pytest.param("output_is_input_folder", marks=pytest.mark.slow),
                                    "output_folder_is_the_input"])
def test_quantize_overwrite_never_deletes_its_input(rtmdet_dir, shared, tmp_path, layout):
    name = json.loads(model_file(rtmdet_dir, ".json").read_text())["name"]
    if layout == "output_is_input_folder":       # -o MODEL_DIR: the new folder goes inside it
        model = copy_model(rtmdet_dir, tmp_path / "model")
        out = model
    else:                                       # the input folder is named as the output would be
        model = copy_model(rtmdet_dir, tmp_path / f"{name}-int8")
        out = tmp_path
    inputs = tree_hashes(model, ignore=(MANIFEST,))      # the manifest records what quantize adds
    # --all-int8: the output is `<name>-int8` for sure (the default mode may choose -mixed)
    r = _quantize(model, shared / PERSON_IMAGE, out, "--overwrite", "--all-int8", "--no-output-error",
                  "--no-bias-correction")
    assert r.problem() is None, r.problem()
    after = tree_hashes(model, ignore=(MANIFEST,))
    assert all(after.get(p) == h for p, h in inputs.items()), "an input file was changed or deleted"
    if r.rc == 0:
        result = Path(r.out.strip().splitlines()[-1])
        assert json.loads(result.read_text())["precision"] == "int8"
        from edgepose.runtime.detector import Detector
        Detector(str(result), threads=1)          # the result loads (checksums, probe)


def test_compare_bad_output_fails_before_running(body_t_dir, shared, tmp_path):
    for out in (Path(UNWRITABLE_DIR), Path(UNCREATABLE_DIR)):
        r = CliOutcome(["compare", body_t_dir, "--data", shared / COCO_MINI, "--max-images", "1",
                        "--no-plots", "--quiet", "-o", out])
        assert r.rc == 2 and r.problem() is None, r.problem() or r.out


def test_compare_of_damaged_variants_fails_cleanly(body_t_dir, shared, tmp_path):
    rng = np.random.default_rng(7)
    problems, cases = [], 0
    for i, kind in enumerate([".ncnn.bin", ".ncnn.param", ".json"] * 2):
        model = copy_model(body_t_dir, tmp_path / f"m{i}")
        path = model_file(model, kind)
        data = path.read_bytes()
        path.write_bytes(mutate_bytes(data, rng) if kind == ".ncnn.bin" else mutate_text(data, rng))
        before = tree_hashes(model, body_t_dir)
        out = tmp_path / f"report{i}"
        r = CliOutcome(["compare", body_t_dir, model, "--data", shared / COCO_MINI, "--max-images", "1",
                        "--threads", "1", "--no-plots", "--no-fp16", "--quiet", "-o", out])
        cases += 1
        if r.problem():
            problems.append(f"{kind}: {r.problem()}")
        elif r.rc != 0 and out.exists() and any(out.iterdir()):
            problems.append(f"{kind}: partial report {sorted(p.name for p in out.iterdir())}")
        if tree_hashes(model, body_t_dir) != before:
            problems.append(f"{kind}: an input changed")
    assert cases and not problems, problems


def _quantize_sweep(model_dir, calib, tmp_path, per_kind, seed):
    rng = np.random.default_rng(seed)
    problems, cases, edits = [], 0, []
    for kind in (".ncnn.bin", ".ncnn.param", ".json"):
        for i in range(per_kind):
            model = copy_model(model_dir, tmp_path / f"q{kind}{i}")
            path = model_file(model, kind)
            data = path.read_bytes()
            damaged = mutate_bytes(data, rng) if kind == ".ncnn.bin" else mutate_text(data, rng)
            if damaged == data:
                continue
            path.write_bytes(damaged)
            before = tree_hashes(model)
            out = tmp_path / f"qout{kind}{i}"
            r = _quantize(model, calib, out, "--no-output-error", "--no-bias-correction")
            cases += 1
            if r.problem():
                problems.append(f"{path.name}: {r.problem()}")
            elif r.rc != 0 and out.exists() and any(out.rglob("*")):
                problems.append(f"{path.name}: partial output {sorted(p.name for p in out.rglob('*'))}")
            elif r.rc == 0:
                # only a still-valid metadata edit may pass (e.g. a note or a threshold), and the
                # result must then load and probe cleanly; damaged weights never may
                changed = json_changes(data, damaged) if kind == ".json" else None
                try:
                    from edgepose.runtime.detector import Detector
                    Detector(r.out.strip().splitlines()[-1], threads=1)
                    loads = True
                except Exception:
                    loads = False
                if changed is None or not loads:
                    problems.append(f"{path.name}: a damaged model was quantized without complaint")
                else:
                    edits.append(changed)
            if tree_hashes(model) != before:
                problems.append(f"{path.name}: an input changed")
    print("quantize corpus: valid metadata edits that passed:", edits)
    return cases, problems


def test_quantize_of_damaged_models_fails_cleanly(rtmdet_dir, shared, tmp_path):
    cases, problems = _quantize_sweep(rtmdet_dir, shared / PERSON_IMAGE, tmp_path, 1, seed=5)
    assert cases and not problems, problems


@pytest.mark.slow
def test_quantize_of_damaged_models_fails_cleanly_full(rtmdet_dir, shared, tmp_path):
    cases, problems = _quantize_sweep(rtmdet_dir, shared / PERSON_IMAGE, tmp_path, 15, seed=55)
    print("quantize corpus cases:", cases)
    assert cases and not problems, problems
