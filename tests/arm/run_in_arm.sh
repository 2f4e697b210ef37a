#!/bin/bash
# Run a command inside the emulated arm64 root, with the current edgepose code installed.
#
#   tests/arm/run_in_arm.sh [--cpu CPU] [--bind HOST:GUEST]... [--env NAME=VALUE]... -- CMD [ARGS...]
#
#   --cpu   qemu CPU model: cortex-a72 (Raspberry Pi 4, ARMv8.0: no fp16 arithmetic),
#           cortex-a76 (Raspberry Pi 5, ARMv8.2 with fp16 arithmetic), max, ... (default cortex-a72)
#   --bind  bind-mount a host folder into the root for this command only
#   --env   extra environment variable inside (the host's environment does not leak in)
#
# The checkout is wheel-packaged on the host and installed (no dependencies: those are in the
# cached root) into a folder of its own on PYTHONPATH, so the root is never modified here.
# Example:
#   tests/arm/run_in_arm.sh --cpu cortex-a76 -- python -c "import edgepose.runtime, ncnn; print(ncnn.cpu_support_arm_asimdhp())"
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
. "$HERE/lib.sh"

cpu=cortex-a72
binds=""
extra_env=""
while [ $# -gt 0 ]; do
    case "$1" in
        --cpu) cpu="$2"; shift 2 ;;
        --bind) binds="$binds$2"$'\n'; shift 2 ;;
        --env) case "$2" in *=*) ;; *) arm_die "--env wants NAME=VALUE, got '$2'" ;; esac
               case "$2" in *[[:space:]]*) arm_die "--env value may not contain spaces: '$2'" ;; esac
               extra_env="$extra_env $2"; shift 2 ;;
        --) shift; break ;;
        *) arm_die "unknown option $1 (see the header of $0)" ;;
    esac
done
[ $# -gt 0 ] || arm_die "no command given (usage: run_in_arm.sh [--cpu CPU] [--bind H:G] -- CMD...)"
case "$cpu" in *[!A-Za-z0-9_.-]*|"") arm_die "bad --cpu value '$cpu'" ;; esac
known_cpus="$(qemu-aarch64-static -cpu help || true)"  # exits non-zero after listing
grep -qw -- "$cpu" <<<"$known_cpus" || arm_die "qemu-aarch64-static does not know CPU '$cpu' (qemu-aarch64-static -cpu help)"

root="$("$HERE/make_rootfs.sh" | tail -n 1)"
arm_ensure_binfmt

pkg_dir="$(mktemp -d)"
trap 'rm -rf "$pkg_dir"' EXIT
arm_build_wheel "$REPO" "$pkg_dir/dist"
binds="$binds$pkg_dir:/tmp/edgepose-package"$'\n'

ARM_EXTRA_ENV="PYTHONPATH=/tmp/edgepose-package/site EDGEPOSE_ARM_CPU=$cpu$extra_env"
arm_chroot "$root" "$cpu" "$binds" -- /bin/sh -c '
    pip install -q --no-deps --no-index --target /tmp/edgepose-package/site /tmp/edgepose-package/dist/*.whl \
        || { echo "arm: installing the edgepose wheel in the root failed" >&2; exit 2; }
    exec "$@"' sh "$@"
