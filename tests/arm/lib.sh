# Shared by make_rootfs.sh and run_in_arm.sh (sourced, not run).
#
# Aarch64 programs in the root run through qemu-user, which the kernel starts by itself
# through binfmt_misc (Debian's qemu-user-static registration, flag F: the interpreter is
# opened at registration, so it need not exist inside the root). That is what lets dpkg's
# maintainer scripts, pip and pytest start child processes freely. proot -q was tried
# instead: the bookworm proot does not translate statx/faccessat2, so ls/test -x fail.

ARM_CACHE_DIR="${EDGEPOSE_ARM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edgepose}"
ARM_ROOT="$ARM_CACHE_DIR/arm64-root"
ARM_VENV=/opt/edgepose-venv

arm_die() { echo "arm: $*" >&2; exit 2; }

arm_need_tools() {
    local missing=""
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing="$missing $tool"
    done
    [ -z "$missing" ] || arm_die "missing host tools:$missing (apt-get install -y debootstrap qemu-user-static binfmt-support)"
}

# Make sure the kernel hands aarch64 ELF files to qemu-aarch64-static.
arm_ensure_binfmt() {
    local bm=/proc/sys/fs/binfmt_misc
    if [ ! -e "$bm/status" ]; then
        mount -t binfmt_misc binfmt_misc "$bm" 2>/dev/null \
            || arm_die "binfmt_misc is not mounted at $bm and cannot be mounted (needs root)"
    fi
    if [ ! -e "$bm/qemu-aarch64" ]; then
        if command -v update-binfmts >/dev/null 2>&1; then
            update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
        fi
    fi
    if [ ! -e "$bm/qemu-aarch64" ] && [ -f /usr/lib/binfmt.d/qemu-aarch64.conf ]; then
        cat /usr/lib/binfmt.d/qemu-aarch64.conf > "$bm/register" 2>/dev/null || true
    fi
    [ -e "$bm/qemu-aarch64" ] || arm_die "could not register qemu-aarch64 with binfmt_misc (install qemu-user-static binfmt-support)"
    grep -q '^enabled' "$bm/qemu-aarch64" || arm_die "binfmt handler qemu-aarch64 is disabled (update-binfmts --enable qemu-aarch64)"
    grep -q '^flags:.*F' "$bm/qemu-aarch64" \
        || arm_die "binfmt handler qemu-aarch64 lacks flag F; re-register it from /usr/lib/binfmt.d/qemu-aarch64.conf"
}

# arm_chroot ROOT CPU BINDS -- CMD...
#   BINDS: newline-separated "HOST:GUEST" pairs (GUEST created inside ROOT).
# Runs CMD in ROOT in a private mount namespace, so /proc, /dev and the binds vanish with it.
# The environment is rebuilt from scratch: the host's pip/python variables must not leak in.
arm_chroot() {
    local root="$1" cpu="$2" binds="$3"; shift 4
    unshare --mount --propagation private /bin/sh -c '
        set -e
        root="$1"; binds="$2"; shift 2
        mount -t proc proc "$root/proc"
        mount --rbind /dev "$root/dev"
        mount -t sysfs sysfs "$root/sys"
        printf "%s\n" "$binds" | while IFS= read -r pair; do
            [ -n "$pair" ] || continue
            host="${pair%%:*}"; guest="${pair#*:}"
            mkdir -p "$root$guest"
            mount --bind "$host" "$root$guest"
        done
        exec "$@"' sh "$root" "$binds" \
        env -i PATH="$ARM_VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
            HOME=/root LANG=C.UTF-8 TMPDIR=/tmp QEMU_CPU="$cpu" PYTHONDONTWRITEBYTECODE=1 \
            ${ARM_EXTRA_ENV:-} \
            /usr/sbin/chroot "$root" "$@"
}

# arm_build_wheel REPO OUTDIR: the package is pure Python, so its wheel is built on the host, the
# way a user's pip builds it (tests/build_wheel.sh; EDGEPOSE_WHEEL reuses one built wheel).
arm_build_wheel() {
    local repo="$1" out="$2"
    bash "$repo/tests/build_wheel.sh" "$out" >/dev/null || arm_die "building the edgepose wheel from $repo failed"
}
