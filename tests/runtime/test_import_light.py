"""The board runtime never pulls in the host toolchain (acceptance: `python -X importtime -c "import edgepose.runtime"`)."""
import os
import subprocess
import sys
from pathlib import Path

from helpers import REPO

HEAVY = ("torch", "onnx", "onnxruntime", "pnnx")
RUNTIME_MODULES = ["edgepose.runtime", "edgepose.runtime.detector", "edgepose.runtime.pose", "edgepose.runtime.pose_tracker",
                   "edgepose.runtime.tracking", "edgepose.runtime.one_euro", "edgepose.runtime.pose_nms", "edgepose.runtime.draw",
                   "edgepose.runtime.results_json", "edgepose.runtime.sources", "edgepose.runtime.run_cli",
                   "edgepose.runtime.demo"]


def _imported(code: str):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                          env=env, cwd=str(REPO), timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # importtime lines: "import time: self [us] | cumulative | imported package"
    mods = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert len(mods) > 20                    # the report really was produced
    return mods


def _heavy(mods):
    return sorted({m for m in mods if m.split(".")[0] in HEAVY})


def test_import_edge_runtime_is_light():
    mods = _imported("import edgepose.runtime")
    assert "edgepose.runtime" in mods
    assert _heavy(mods) == []


def test_runtime_modules_are_light():
    mods = _imported("; ".join(f"import {m}" for m in RUNTIME_MODULES))
    assert set(RUNTIME_MODULES) <= set(mods)
    assert _heavy(mods) == []


def test_run_pipeline_on_a_frame_stays_light(shared, rtmdet_dir, body_t_dir):
    code = (
        "import numpy as np, cv2\n"
        "from edgepose.runtime.detector import Detector\n"
        "from edgepose.runtime.pose import PoseEstimator\n"
        "from edgepose.runtime.pose_tracker import PoseTracker\n"
        "from edgepose.runtime.draw import draw_mmpose\n"
        "class M:\n"
        f"    detector = Detector({str(rtmdet_dir)!r}, threads=1)\n"
        f"    pose_estimator = PoseEstimator({str(body_t_dir)!r}, threads=1)\n"
        f"img = cv2.imread({str(shared / 'data/calib_mmpose_examples/human-pose.jpeg')!r})\n"
        "p = PoseTracker(M)(img)\n"
        "draw_mmpose(img, p.keypoints, p.scores, p.boxes, p.track_ids)\n"
        "assert len(p) >= 1\n")
    mods = _imported(code)
    assert "ncnn" in {m.split(".")[0] for m in mods}
    assert _heavy(mods) == []
