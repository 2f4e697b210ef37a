#!/usr/bin/env bash
# Build the C++ core (library, edgepose_native, libedgepose_jni) against ncnn from build_ncnn.sh.
#
#   android_demo/scripts/build_core.sh [host|aarch64]   -> prints the build folder
#
# host: CLI + JNI (needs a JDK: JAVA_HOME or javac on PATH). aarch64: CLI only, cross-compiled
# with g++-aarch64-linux-gnu; run it with `qemu-aarch64 -L /usr/aarch64-linux-gnu`.
set -euo pipefail
ARCH="${1:-host}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CORE="$(cd "$HERE/../core" && pwd)"
CACHE="${EDGEPOSE_CACHE:-$HOME/.cache/edgepose}"
JOBS="${EDGEPOSE_JOBS:-2}"

NCNN_PREFIX="$("$HERE/build_ncnn.sh" "$ARCH" | tail -1)"
# One build folder per checkout: CMake binds a build folder to one source folder, and a
# clean clone elsewhere must not collide with an older checkout's cache.
SRC_KEY="$(printf '%s' "$CORE" | sha256sum | cut -c1-12)"
BUILD="${EDGEPOSE_CORE_BUILD:-$CACHE/core-build/$ARCH-$SRC_KEY}"
mkdir -p "$BUILD"

ARGS=(-DCMAKE_BUILD_TYPE=Release -Dncnn_DIR="$NCNN_PREFIX/lib/cmake/ncnn")
if [ "$ARCH" = host ]; then
  if [ -z "${JAVA_HOME:-}" ] && command -v javac >/dev/null; then
    JAVA_HOME="$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")"
  fi
  if [ -n "${JAVA_HOME:-}" ] && [ -f "$JAVA_HOME/include/jni.h" ]; then
    ARGS+=(-DEDGEPOSE_JNI=ON "-DJNI_INCLUDE_DIRS=$JAVA_HOME/include;$JAVA_HOME/include/linux")
  else
    echo "build_core.sh: no JDK found (JAVA_HOME); building without the JNI library" >&2
    ARGS+=(-DEDGEPOSE_JNI=OFF)
  fi
else
  ARGS+=(-DEDGEPOSE_JNI=OFF
    -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64
    -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++
    -DCMAKE_FIND_ROOT_PATH="/usr/aarch64-linux-gnu;$NCNN_PREFIX"
    -DCMAKE_FIND_ROOT_PATH_MODE_PROGRAM=NEVER -DCMAKE_FIND_ROOT_PATH_MODE_LIBRARY=ONLY
    -DCMAKE_FIND_ROOT_PATH_MODE_INCLUDE=ONLY -DCMAKE_FIND_ROOT_PATH_MODE_PACKAGE=ONLY)
fi
cmake -S "$CORE" -B "$BUILD" "${ARGS[@]}" > "$BUILD/configure.log" 2>&1 || { tail -30 "$BUILD/configure.log" >&2; exit 1; }
nice -n 10 cmake --build "$BUILD" -j "$JOBS" > "$BUILD/build.log" 2>&1 || { grep -B2 -A8 "error" "$BUILD/build.log" | head -60 >&2; exit 1; }
echo "$BUILD"
