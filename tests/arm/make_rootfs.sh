#!/bin/bash
# Build (or reuse) an emulated arm64 Debian root with edgepose's board runtime installed.
#
#   tests/arm/make_rootfs.sh [--rebuild]     prints the root's path on the last line
#
# Needs root and: apt-get install -y debootstrap qemu-user-static binfmt-support
# The root is cached in ${EDGEPOSE_ARM_CACHE:-~/.cache/edgepose}/arm64-root and reused while
# the key (this script, its helpers and the package's runtime dependency list) is unchanged.
# Mirror and package index come from this machine's apt and pip configuration (host_config.py).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
. "$HERE/lib.sh"

# Installed in the root besides the package itself: the in-root checks run under pytest.
IN_ROOT_EXTRAS="pytest"
REBUILD=0
[ "${1:-}" = "--rebuild" ] && REBUILD=1

[ "$(id -u)" = 0 ] || arm_die "make_rootfs.sh needs root (debootstrap, chroot, mounts)"
arm_need_tools debootstrap qemu-aarch64-static unshare chroot python3
arm_ensure_binfmt

# lib.sh is left out of the key: it only says how to enter the root, not what is in it.
key="$( { cat "$HERE/make_rootfs.sh" "$HERE/host_config.py"
          python3 "$HERE/host_config.py" runtime-deps "$REPO/pyproject.toml"
          echo "$IN_ROOT_EXTRAS"; } | sha256sum | cut -d' ' -f1)"

if [ "$REBUILD" = 0 ] && [ -f "$ARM_ROOT/.edgepose-root-key" ] && [ "$(cat "$ARM_ROOT/.edgepose-root-key")" = "$key" ]; then
    echo "arm: reusing cached root (key ${key:0:12})" >&2
    echo "$ARM_ROOT"
    exit 0
fi

mkdir -p "$ARM_CACHE_DIR"
build="$ARM_CACHE_DIR/arm64-root.build.$$"
wheel_dir="$(mktemp -d)"
cleanup() { rm -rf "$build" "$wheel_dir"; }
trap cleanup EXIT

read -r mirror suite < <(python3 "$HERE/host_config.py" mirror)
echo "arm: building arm64 $suite root from this machine's apt mirror ($(date -u +%T))" >&2

nice debootstrap --foreign --arch=arm64 --variant=minbase \
    --include=python3,python3-venv,python3-pip,ca-certificates \
    "$suite" "$build" "$mirror" >&2
# debootstrap --foreign leaves /proc as a symlink to the host's; the chroot needs a mount point.
if [ -L "$build/proc" ]; then rm -f "$build/proc"; mkdir "$build/proc"; fi
# dpkg's fsyncs dominate an emulated install; a throw-away root does not need them.
echo force-unsafe-io > "$build/etc/dpkg/dpkg.cfg.d/edgepose-unsafe-io"

echo "arm: second stage under qemu ($(date -u +%T))" >&2
nice bash -c ". '$HERE/lib.sh'; arm_chroot '$build' max '' -- /debootstrap/debootstrap --second-stage" >&2

python3 "$HERE/host_config.py" pip-conf "$build/etc/edgepose-pip-ca.crt" > "$build/etc/pip.conf"

arm_build_wheel "$REPO" "$wheel_dir/dist"
mkdir -p "$build/tmp/edgepose-wheel"
cp "$wheel_dir"/dist/*.whl "$build/tmp/edgepose-wheel/"

echo "arm: pip install of the package (no extras) from the registry ($(date -u +%T))" >&2
nice bash -c ". '$HERE/lib.sh'; arm_chroot '$build' max '' -- /bin/sh -c '
    set -e
    python3 -m venv $ARM_VENV
    $ARM_VENV/bin/pip install -q /tmp/edgepose-wheel/*.whl $IN_ROOT_EXTRAS
    $ARM_VENV/bin/pip list --format=freeze > /.edgepose-pip-freeze.txt
    rm -rf /tmp/edgepose-wheel /root/.cache/pip'" >&2

echo "$key" > "$build/.edgepose-root-key"
rm -rf "$ARM_ROOT"
mv "$build" "$ARM_ROOT"
echo "arm: root ready at $ARM_ROOT ($(date -u +%T))" >&2
echo "$ARM_ROOT"
