#!/usr/bin/env bash
# Build ncnn's C++ library (static, minimal layer set) from ncnn's PyPI source
# distribution, at the same version as the installed Python wheel, for the host
# (x86_64) or aarch64 Linux (Debian's g++-aarch64-linux-gnu).
#
#   android_demo/scripts/build_ncnn.sh [host|aarch64]     -> prints the install prefix
#
# Results are cached in ${EDGEPOSE_CACHE:-~/.cache/edgepose}/ncnn-build/<version>-<arch>;
# a finished build has a STAMP file, so CI runs and later sessions reuse it.
# NCNN_VERSION overrides the version (default: the installed `ncnn` wheel's).
# The host build has ncnn's Vulkan backend on (glslang, the shader compiler, ships in the sdist;
# ncnn loads libvulkan at run time, so no Vulkan SDK is needed to build); EDGEPOSE_NCNN_VULKAN=0
# turns it off. The aarch64 build stays CPU-only (cross-building glslang would double CI time).
set -euo pipefail

ARCH="${1:-host}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${EDGEPOSE_CACHE:-$HOME/.cache/edgepose}"
JOBS="${EDGEPOSE_JOBS:-2}"
# The C++ library is built at the version of the ncnn wheel the Python runtime uses, so both agree.
VERSION="${NCNN_VERSION:-$(python3 -c 'import importlib.metadata as m; print(m.version("ncnn"))' 2>/dev/null || true)}"
[ -n "$VERSION" ] || { echo "build_ncnn.sh: python3 has no ncnn package to take the version from: install edgepose" \
    "first (pip install -e . from the checkout, which pulls ncnn) or set NCNN_VERSION=X.Y.Z" >&2; exit 2; }

case "$ARCH" in
  host) ARCH_TAG="$(uname -m)"; VULKAN="${EDGEPOSE_NCNN_VULKAN:-1}" ;;
  aarch64) ARCH_TAG=aarch64; VULKAN=0 ;;
  *) echo "build_ncnn.sh: unknown arch '$ARCH' (host|aarch64)" >&2; exit 2 ;;
esac
# A Vulkan build gets its own cache entry, so an older CPU-only build is never reused for it.
if [ "$VULKAN" = 1 ]; then ARCH_TAG="$ARCH_TAG-vulkan"; VULKAN_FLAGS=(-DNCNN_VULKAN=ON -DNCNN_SIMPLEVK=ON)
else VULKAN_FLAGS=(-DNCNN_VULKAN=OFF); fi

# Layers our graphs use (pose RTMPose/RTMW, RTMDet, YOLOX; INT8 variants), plus the
# layers ncnn creates internally from those (Packing, Cast, Padding, Flatten, Gemm
# inside Convolution, fused activations). Everything else is left out.
KEEP_LAYERS="Input Convolution ConvolutionDepthWise InnerProduct Gemm MatMul
  BinaryOp UnaryOp Eltwise Concat Split Slice Crop Reshape Permute Flatten ExpandDims Squeeze
  Pooling Interp Padding Packing Cast Noop Dropout MemoryData Reduction Softmax
  Swish Sigmoid HardSigmoid HardSwish ReLU Clip Mish TanH ELU GELU
  Scale Bias BatchNorm LayerNorm RMSNorm
  Quantize Dequantize Requantize"

PREFIX="$CACHE/ncnn-build/$VERSION-$ARCH_TAG"
mkdir -p "$CACHE/ncnn-build"
# One build per version/arch at a time (parallel test sessions share the cache).
exec 9>"$CACHE/ncnn-build/.lock-$VERSION-$ARCH_TAG"
flock 9
if [ -f "$PREFIX/STAMP" ]; then
  echo "$PREFIX"
  exit 0
fi

SRC_ROOT="$CACHE/ncnn-src"
TARBALL="$(python3 "$HERE/fetch_ncnn_sdist.py" "$VERSION" "$SRC_ROOT")"
SRC="$SRC_ROOT/ncnn-$VERSION"
if [ ! -f "$SRC/src/CMakeLists.txt" ]; then
  rm -rf "$SRC.part" && mkdir -p "$SRC.part"
  tar xzf "$TARBALL" -C "$SRC.part" --strip-components=1
  rm -rf "$SRC" && mv "$SRC.part" "$SRC"
fi

# Every layer registered in this ncnn version, switched off unless kept
# (ncnn's option names use the lower-case layer name: WITH_LAYER_convolution).
LAYER_FLAGS=()
for name in $(sed -n 's/^ncnn_add_layer(\([A-Za-z0-9_]*\).*/\1/p' "$SRC/src/CMakeLists.txt"); do
  if [[ " $(echo $KEEP_LAYERS) " == *" $name "* ]]; then
    LAYER_FLAGS+=("-DWITH_LAYER_${name,,}=ON")
  else
    LAYER_FLAGS+=("-DWITH_LAYER_${name,,}=OFF")
  fi
done

COMMON=(
  -DCMAKE_BUILD_TYPE=Release
  -DNCNN_SHARED_LIB=OFF -DNCNN_PYTHON=OFF -DNCNN_C_API=OFF
  -DNCNN_BUILD_TOOLS=OFF -DNCNN_BUILD_EXAMPLES=OFF -DNCNN_BUILD_BENCHMARK=OFF -DNCNN_BUILD_TESTS=OFF
  -DNCNN_OPENMP=ON -DNCNN_BF16=OFF -DNCNN_INT8=ON
  -DNCNN_PIXEL=ON -DNCNN_PIXEL_AFFINE=ON -DNCNN_PIXEL_DRAWING=ON -DNCNN_PIXEL_ROTATE=ON
  -DCMAKE_POSITION_INDEPENDENT_CODE=ON
)
if [ "$ARCH" = host ]; then
  # Plain SSE2 build: portable to any x86_64 runner and no per-ISA copies of each layer.
  ARCH_FLAGS=(-DNCNN_RUNTIME_CPU=OFF -DNCNN_AVX=OFF)
else
  command -v aarch64-linux-gnu-g++ >/dev/null || {
    echo "build_ncnn.sh: aarch64-linux-gnu-g++ missing (apt-get install g++-aarch64-linux-gnu)" >&2; exit 2; }
  # Runtime dispatch keeps one binary for plain armv8 and armv8.2 fp16 cores;
  # the other extensions are left out to keep the build short.
  ARCH_FLAGS=(
    -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64
    -DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++
    -DCMAKE_FIND_ROOT_PATH=/usr/aarch64-linux-gnu
    -DCMAKE_FIND_ROOT_PATH_MODE_PROGRAM=NEVER -DCMAKE_FIND_ROOT_PATH_MODE_LIBRARY=ONLY
    -DCMAKE_FIND_ROOT_PATH_MODE_INCLUDE=ONLY
    -DNCNN_RUNTIME_CPU=ON -DNCNN_ARM82=ON -DNCNN_ARM82DOT=OFF -DNCNN_ARM82FP16FML=OFF
    -DNCNN_ARM84BF16=OFF -DNCNN_ARM84I8MM=OFF -DNCNN_ARM86SVE=OFF
  )
fi

BUILD="$CACHE/ncnn-build/work-$VERSION-$ARCH_TAG"
START=$(date +%s)
rm -rf "$BUILD" "$PREFIX"
mkdir -p "$BUILD"
# EDGEPOSE_NCNN_CMAKE_FLAGS: extra ncnn options (use another EDGEPOSE_CACHE for such variants).
cmake -S "$SRC" -B "$BUILD" -G "Unix Makefiles" "${COMMON[@]}" "${VULKAN_FLAGS[@]}" "${ARCH_FLAGS[@]}" "${LAYER_FLAGS[@]}" \
  ${EDGEPOSE_NCNN_CMAKE_FLAGS:-} \
  -DCMAKE_INSTALL_PREFIX="$PREFIX" > "$BUILD/configure.log" 2>&1 || {
  tail -30 "$BUILD/configure.log" >&2; exit 1; }
nice -n 10 cmake --build "$BUILD" -j "$JOBS" > "$BUILD/build.log" 2>&1 || {
  tail -40 "$BUILD/build.log" >&2; exit 1; }
cmake --install "$BUILD" > "$BUILD/install.log" 2>&1
echo "ncnn $VERSION $ARCH_TAG built in $(( $(date +%s) - START )) s" > "$PREFIX/STAMP"
cat "$PREFIX/STAMP" >&2
rm -rf "$BUILD"
echo "$PREFIX"
