"""Issue 12's corruption sweep, one process per case, so that a crash is counted instead of ending the run:

    python benchmarks/corpus_sweep.py

The same seed and cases as tests/runtime/test_bad_input_corpus.py::test_random_corruption_of_models_short
(6 damaged .param/.bin/.json each for the pose model and the detector, `edgepose run` on one photo).
Prints the counts: crashes, tracebacks, silent wrong answers (exit 0 with other keypoints than the
undamaged models), partial outputs, clean failures, correct results, inputs changed. Run it on an older
commit (`git checkout BASE -- edgepose edge_runtime convert quantization`) to compare. Needs the host
extra and the shared assets (EDGEPOSE_SHARED).
"""
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
import numpy as np
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from helpers import (copy_model, model_file, mutate_bytes, mutate_text, tree_hashes,  # noqa: E402
                     PERSON_IMAGE, shared_dir)
PY = sys.executable
SHARED = shared_dir()
root = Path(tempfile.mkdtemp(prefix="edgepose-corpus-sweep-"))
for key, rel in (("det", "models/rtmdet-nano-person/rtmdet-nano-person_raw-heads.onnx"),
                 ("pose", "reference/official/rtmpose-t_body8_256x192.onnx")):
    subprocess.run([PY, "-m", "edgepose", "convert", str(SHARED / rel), "-o", str(root / key), "--no-check"],
                   check=True, capture_output=True)
det, pose = root / "det", root / "pose"
image = root / "person.jpeg"
shutil.copy(SHARED / PERSON_IMAGE, image)


def run(out, d, p):
    return subprocess.run([PY, "-m", "edgepose", "run", str(image), "--det", str(d), "--pose", str(p), "--threads", "1",
                           "--no-draw", "-o", str(out), "--precision", "fp32"], capture_output=True, text=True)


def kp(path):
    res = json.loads(Path(path).read_text())
    if not res:
        return np.zeros((0, 0))
    return np.array([r["keypoints"] for r in res], float).reshape(len(res), -1)


r = run(root / "ref", det, pose)
assert r.returncode == 0, r.stderr
ref = kp(root / "ref" / "person_keypoints.json")
print("reference persons", len(ref))
rng = np.random.default_rng(12)
c = {"cases": 0, "crashes": 0, "tracebacks": 0, "silent_wrong": 0, "partial_outputs": 0, "failed_cleanly": 0,
     "correct": 0, "inputs_changed": 0}
for which in ("pose", "det"):
    for kind in (".ncnn.param", ".ncnn.bin", ".json"):
        for i in range(6):
            case = root / f"{which}{kind}{i}"
            model = copy_model({"pose": pose, "det": det}[which], case / which)
            path = model_file(model, kind)
            data = path.read_bytes()
            dmg = mutate_text(data, rng) if kind != ".ncnn.bin" else mutate_bytes(data, rng)
            if dmg == data:
                continue
            path.write_bytes(dmg)
            command = "run"  # commands=("run",): the rng draw below keeps the sequence aligned with the test
            rng.integers(1)
            before = tree_hashes(model)
            out = case / "out"
            r = run(out, model if which == "det" else det, model if which == "pose" else pose)
            c["cases"] += 1
            errs = [l for l in r.stderr.splitlines() if ": error: " in l]
            if r.returncode < 0:
                c["crashes"] += 1
            elif "Traceback" in r.stderr:
                c["tracebacks"] += 1
            elif r.returncode == 0:
                got = kp(out / "person_keypoints.json")
                if got.shape == ref.shape and np.allclose(got, ref, atol=0.02):
                    c["correct"] += 1
                else:
                    c["silent_wrong"] += 1
            elif len(errs) != 1:
                c["partial_outputs"] += 1
            else:
                c["failed_cleanly"] += 1
                if out.exists() and any(out.rglob("*")):
                    c["partial_outputs"] += 1
            if tree_hashes(model) != before:
                c["inputs_changed"] += 1
            shutil.rmtree(case)
print(json.dumps(c))
shutil.rmtree(root)
