#!/bin/bash
# Build edgepose's wheel the way a user's pip does: an isolated build (pip fetches the build
# backend named in pyproject.toml), from a copy of the sources so the checkout stays clean.
#
#   tests/build_wheel.sh OUTDIR      prints the wheel's path on the last line
#
# EDGEPOSE_WHEEL=PATH: use that already-built wheel instead (CI builds one and every
# consumer, the board-install venv and the arm64 root, installs that same file).
set -euo pipefail
out="${1:?usage: tests/build_wheel.sh OUTDIR}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$out"
if [ -n "${EDGEPOSE_WHEEL:-}" ]; then
    [ -f "$EDGEPOSE_WHEEL" ] || { echo "build_wheel: EDGEPOSE_WHEEL=$EDGEPOSE_WHEEL: no such file" >&2; exit 2; }
    cp "$EDGEPOSE_WHEEL" "$out/"
    echo "$out/$(basename "$EDGEPOSE_WHEEL")"
    exit 0
fi
command -v python3 >/dev/null || { echo "build_wheel: python3 is needed" >&2; exit 2; }
python3 -m pip --version >/dev/null 2>&1 || { echo "build_wheel: pip is needed (apt-get install python3-pip)" >&2; exit 2; }
src="$(mktemp -d)"
trap 'rm -rf "$src"' EXIT
cp -r "$repo/pyproject.toml" "$repo/README.md" "$repo/edgepose" "$repo/edge_runtime" "$repo/convert" \
    "$repo/quantization" "$src/"
find "$src" -name __pycache__ -prune -exec rm -rf {} +
python3 -m pip wheel -q --no-deps -w "$out" "$src" >&2 || { echo "build_wheel: building the wheel failed" >&2; exit 2; }
ls "$out"/edgepose-*.whl | tail -n 1
