"""Hostile input against `edgepose convert`: one error line or a correct result (a model that
reproduces its source and loads), the source never changed, a good model already in the output
folder never replaced by a failed conversion, nothing partial left.

The issue case (an ONNX detector with one NaN weight used to pass the self-check as "max abs diff
0" and replace the good model), then seeded random byte corruption of .onnx and .pth sources."""
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgepose.files import MANIFEST
from helpers import CliOutcome, mutate_bytes, tree_hashes

DET_ONNX = "models/rtmdet-nano-person/rtmdet-nano-person_raw-heads.onnx"
POSE_PTH = "reference/official/rtmpose-t_body8_256x192.pth"


def _with_nan_weight(src: Path, dst: Path) -> None:
    import onnx
    from onnx import numpy_helper
    model = onnx.load(str(src))
    init = next(i for i in model.graph.initializer if numpy_helper.to_array(i).size > 100)
    w = numpy_helper.to_array(init).copy()
    w.flat[len(w.flat) // 2] = np.nan
    init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(model, str(dst))


def _model_outputs(folder: Path) -> set:
    return {p.name for p in folder.iterdir()} - {MANIFEST}


def test_nan_weight_is_refused_and_the_good_model_is_kept(shared, tmp_path):
    src = tmp_path / "src" / "detector.onnx"
    src.parent.mkdir()
    shutil.copy(shared / DET_ONNX, src)
    out = tmp_path / "out"
    good = CliOutcome(["convert", src, "-o", out])
    assert good.rc == 0 and "- OK" in good.out, good.err
    kept = tree_hashes(out)
    _with_nan_weight(shared / DET_ONNX, src)
    source = tree_hashes(src)
    r = CliOutcome(["convert", src, "-o", out])
    assert r.rc == 2 and r.problem() is None, r.problem() or r.out
    assert "NaN" in r.err and "nothing written" in r.err
    assert tree_hashes(out) == kept                 # the good model of the same name is untouched
    assert tree_hashes(src) == source
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != MANIFEST]


def test_self_check_counts_nan_as_a_failure(rtmdet_dir):
    """Python's max(0.0, nan) is 0.0: a NaN output must fail the check, not read as a match."""
    from edgepose.convert import selfcheck
    from edgepose.model_meta import ModelMeta, find_model
    meta_path = find_model(str(rtmdet_dir))
    meta = ModelMeta.load(meta_path)
    blobs = list(meta.output_blobs.values())
    img = selfcheck.synthetic_image(meta.input_width, meta.input_height)
    param, binf = meta.param_path(meta_path), meta.bin_path(meta_path)

    def reference(pixels, poison):
        outs = selfcheck.ncnn_forward(param, binf, meta.input_blob, blobs, pixels[0])
        if poison:
            outs[0] = outs[0].copy()
            outs[0].flat[0] = np.nan
        return outs
    same = selfcheck.compare(lambda p: reference(p, False), param, binf, meta.input_blob, blobs, [img],
                             "synthetic", pose=False, fp16=False)
    assert same.passed and same.non_finite == 0
    poisoned = selfcheck.compare(lambda p: reference(p, True), param, binf, meta.input_blob, blobs, [img],
                                 "synthetic", pose=False, fp16=False)
    assert not poisoned.passed and poisoned.non_finite == 1 and "NaN" in poisoned.line()


def _convert_sweep(shared, tmp_path, rel: str, count: int, seed: int):
    """Damage copies of one source; return the counts and the problems found."""
    from edgepose.model_meta import find_model
    from edgepose.runtime.ncnn_model import NcnnModel
    rng = np.random.default_rng(seed)
    original = (shared / rel).read_bytes()
    counts = {"cases": 0, "failed_cleanly": 0, "correct": 0}
    problems = []
    for i in range(count):
        case = tmp_path / f"case{i}"
        case.mkdir()
        src = case / Path(rel).name
        damaged = mutate_bytes(original, rng)
        src.write_bytes(damaged)
        out = case / "out"
        before = tree_hashes(src)
        r = CliOutcome(["convert", src, "-o", out])
        counts["cases"] += 1
        if r.problem():
            problems.append(f"case {i}: {r.problem()}")
        elif r.rc == 0:
            # correct result: the self-check passed against the (damaged) source itself, and the
            # model loads with the runtime's checks (checksums, probe, finite outputs)
            try:
                NcnnModel(find_model(str(out)), threads=1, precision="fp32")
                ok = "- OK" in r.out
            except Exception as e:      # noqa: BLE001 - any failure here is what we count
                ok, r.out = False, f"{r.out} / load: {e}"
            if ok and _model_outputs(out) and len(_model_outputs(out)) == 3:
                counts["correct"] += 1
            else:
                problems.append(f"case {i}: exit 0 but the model is not whole/usable: {r.out[-300:]}")
        else:
            counts["failed_cleanly"] += 1
            if out.exists() and any(out.iterdir()):
                problems.append(f"case {i}: left {sorted(p.name for p in out.iterdir())}")
        if tree_hashes(src) != before:
            problems.append(f"case {i}: the source changed")
        shutil.rmtree(case)
    return counts, problems


@pytest.mark.parametrize("rel,count", [(DET_ONNX, 6), (POSE_PTH, 2)])
def test_damaged_sources_short(shared, tmp_path, rel, count, one_torch_thread):
    counts, problems = _convert_sweep(shared, tmp_path, rel, count, seed=12)
    print("convert corpus:", rel, counts)
    assert counts["cases"] == count and not problems, problems


@pytest.mark.slow
@pytest.mark.parametrize("rel,count", [(DET_ONNX, 60), (POSE_PTH, 25)])
def test_damaged_sources_full(shared, tmp_path, rel, count, one_torch_thread):
    counts, problems = _convert_sweep(shared, tmp_path, rel, count, seed=1212)
    print("convert corpus:", rel, counts)
    assert counts["cases"] == count and not problems, problems
