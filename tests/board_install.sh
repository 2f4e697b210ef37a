#!/bin/bash
# The board install, checked as a user gets it: the wheel (tests/build_wheel.sh) into a fresh venv
# with no extras, then the runtime tests against that install on models converted here first.
#
#   tests/board_install.sh [WORKDIR]        (default: a temporary folder, removed afterwards)
#
# Needs python3 with venv and pip, and the host toolchain in the current Python for the one
# conversion step (pip install -e ".[convert,test]"). The venv gets only `edgepose` + pytest.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-}"
if [ -z "$work" ]; then work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT; fi
mkdir -p "$work"
say() { echo "board_install: $*" >&2; }

wheel="$(bash "$repo/tests/build_wheel.sh" "$work/dist" | tail -n 1)"
say "wheel $(basename "$wheel")"
python3 - "$wheel" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
tops = sorted({n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")})
assert tops == ["edgepose"], f"the wheel installs more than one import name: {tops}"
PY

# Everything below runs from the work folder: no checkout on sys.path, only the installed wheel.
cd "$work"
rm -rf "$work/venv"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$wheel" pytest
"$work/venv/bin/python" - <<'PY'
import importlib.util, edgepose
assert "site-packages" in edgepose.__file__, edgepose.__file__
present = [m for m in ("torch", "onnx", "pnnx", "onnxruntime") if importlib.util.find_spec(m)]
assert not present, f"the board install pulled in {present}"
assert importlib.util.find_spec("convert") is None and importlib.util.find_spec("quantization") is None
PY
say "installed without torch, onnx, pnnx, onnxruntime"

# A host command on the board: one line naming the extra, exit code 2.
set +e
err="$("$work/venv/bin/edgepose" convert model.pth -o out 2>&1 >/dev/null)"; rc=$?
set -e
[ "$rc" = 2 ] && [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] && grep -q 'pip install "edgepose\[convert\]"' <<<"$err" \
    || { say "edgepose convert on the board gave exit $rc: $err"; exit 1; }
say "edgepose convert: $err"

say "type check of the public API, as installed (py.typed)"
"$work/venv/bin/pip" install -q mypy
# The modules of `from edgepose import ...` (pyproject's strict mypy overrides); others are followed silently.
"$work/venv/bin/mypy" --config-file "$repo/pyproject.toml" --follow-imports=silent -m edgepose -m edgepose.errors \
    -m edgepose.model_meta -m edgepose.runtime.solutions -m edgepose.runtime.detector -m edgepose.runtime.pose \
    -m edgepose.runtime.pose_tracker -m edgepose.runtime.draw
# A user's code under `mypy --strict` (no repo config): every public name visible, ordinary arguments accepted.
"$work/venv/bin/mypy" --strict "$repo/tests/typed_api_usage.py"

rm -rf "$work/models"
python3 "$repo/tests/model_fixtures.py" "$work/models" >/dev/null 2>&1 || python "$repo/tests/model_fixtures.py" "$work/models" >/dev/null
say "runtime tests against the installed wheel"
# The venv's pytest entry point (not `python -m`): the checkout's sources stay off sys.path.
EDGEPOSE_TEST_MODELS="$work/models" EDGEPOSE_SHARED="${EDGEPOSE_SHARED:-$(dirname "$repo")/shared}" \
    "$work/venv/bin/pytest" -c "$repo/pyproject.toml" --rootdir "$repo" -p no:cacheprovider -q \
    -m "not host and not slow and not native and not arm and not gpu" "$repo/tests/runtime"
