"""The board runtime never pulls in the host toolchain, and a host command on a board names its extra.

Subprocesses run from a scratch folder with no PYTHONPATH, so they import the installed package
(the wheel in the board-install run of CI, the editable install on a development machine).
"""
import json
import os
import subprocess
import sys

import pytest

HEAVY = ("torch", "onnx", "onnxruntime", "pnnx")
RUNTIME_MODULES = ["edgepose", "edgepose.cli", "edgepose.runtime", "edgepose.runtime.detector",
                   "edgepose.runtime.pose", "edgepose.runtime.pose_tracker", "edgepose.runtime.tracking",
                   "edgepose.runtime.one_euro", "edgepose.runtime.pose_nms", "edgepose.runtime.draw",
                   "edgepose.runtime.results_json", "edgepose.runtime.sources", "edgepose.runtime.run_cli",
                   "edgepose.runtime.demo", "edgepose.runtime.solutions", "edgepose.runtime.bench_cli"]
# Makes the host packages unimportable, as on a board install (find_spec answers None too).
NO_HOST = f"import sys\nfor _m in {HEAVY!r}: sys.modules[_m] = None\n"


def _python(args, tmp_path, timeout=300):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=str(tmp_path),
                          timeout=timeout)


def _modules_after(code, tmp_path):
    """Every module loaded once `code` has run in a fresh interpreter (sys.modules, printed at exit)."""
    report = "\nimport json as _j, sys as _s\nprint('MODULES ' + _j.dumps(sorted(_s.modules)))\n"
    proc = _python(["-c", code + report], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("MODULES ")][-1]
    return json.loads(line[len("MODULES "):])


def _heavy(mods):
    return sorted({m for m in mods if m.split(".")[0] in HEAVY})


def test_import_edgepose_is_light(tmp_path):
    mods = _modules_after("import edgepose\nedgepose.Wholebody, edgepose.PoseTracker, edgepose.draw_mmpose", tmp_path)
    assert {"edgepose", "edgepose.runtime.solutions", "edgepose.runtime.pose_tracker", "cv2"} <= set(mods)
    assert _heavy(mods) == []


def test_runtime_modules_are_light(tmp_path):
    mods = _modules_after("\n".join(f"import {m}" for m in RUNTIME_MODULES), tmp_path)
    assert set(RUNTIME_MODULES) <= set(mods)
    assert _heavy(mods) == []


def test_edgepose_run_cli_on_an_image_stays_light(shared, rtmdet_dir, body_t_dir, tmp_path):
    """The command a board runs, end to end: `edgepose run IMAGE --det D --pose P`."""
    image = shared / "data/calib_mmpose_examples/human-pose.jpeg"
    argv = ["run", str(image), "--det", str(rtmdet_dir), "--pose", str(body_t_dir), "-o", str(tmp_path / "out")]
    mods = _modules_after(f"from edgepose.cli import main\nassert main({argv!r}) == 0", tmp_path)
    assert {"ncnn", "edgepose.runtime.run_cli", "edgepose.runtime.pose_tracker"} <= set(mods)
    assert _heavy(mods) == []
    assert (tmp_path / "out" / "human-pose_keypoints.json").is_file()


@pytest.mark.parametrize("argv", [["convert", "model.pth", "-o", "out"], ["convert", "--help"]])
def test_host_command_on_a_board_names_the_extra_and_exits_2(tmp_path, argv):
    code = NO_HOST + f"from edgepose.cli import main\nsys.exit(main({argv!r}))\n"
    proc = _python(["-c", code], tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and 'pip install "edgepose[convert]"' in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_board_commands_still_parse_without_the_host_packages(tmp_path):
    code = NO_HOST + "from edgepose.cli import main\nsys.exit(main(['run', '--help']))\n"
    proc = _python(["-c", code], tmp_path)
    assert proc.returncode == 0 and "--det" in proc.stdout, proc.stderr
