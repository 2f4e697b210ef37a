"""What the report says about the device: enough to compare results across boards.

Everything is read from /proc and /sys where the kernel exposes it; a value that
is not readable on this device is reported as None, never guessed.
"""
from __future__ import annotations

import os
import platform
import struct
import sys
from typing import Dict, Iterable, List, Optional, Set

# CPU flags that decide which ncnn kernels run (x86 and ARM spellings).
_INTERESTING_FLAGS = {
    "x86": ["sse4_1", "avx", "fma", "f16c", "avx2", "avx512f", "avx512bw", "avx512_vnni",
            "avx_vnni", "avx512_bf16", "amx_int8"],
    "arm": ["neon", "asimd", "fphp", "asimdhp", "asimddp", "i8mm", "sve", "sve2", "bf16"],
}


# aarch64 Linux HWCAP / HWCAP2 bits (arch/arm64/include/uapi/asm/hwcap.h) that matter to ncnn.
_ARM64_HWCAP = {0: "fp", 1: "asimd", 8: "atomics", 9: "fphp", 10: "asimdhp", 20: "asimddp", 22: "sve"}
_ARM64_HWCAP2 = {1: "sve2", 13: "i8mm", 14: "bf16"}
_AT_HWCAP, _AT_HWCAP2 = 16, 26


def _is_arm() -> bool:
    return platform.machine().lower() in ("aarch64", "arm64", "armv7l", "armv8l")


def arm64_hwcaps(auxv: bytes) -> Set[str]:
    """Feature names from the process's ELF auxiliary vector (pairs of native words). The
    kernel (or qemu-user, per emulated CPU) fills it: unlike /proc/cpuinfo, which under
    emulation is the host's, it describes the CPU this process runs on."""
    word = struct.calcsize("P")
    fmt = "QQ" if word == 8 else "II"
    caps: Dict[int, int] = {}
    for off in range(0, len(auxv) - 2 * word + 1, 2 * word):
        key, value = struct.unpack_from("=" + fmt, auxv, off)
        if key == 0:  # AT_NULL ends the vector
            break
        caps[key] = value
    names = {n for bit, n in _ARM64_HWCAP.items() if caps.get(_AT_HWCAP, 0) >> bit & 1}
    names |= {n for bit, n in _ARM64_HWCAP2.items() if caps.get(_AT_HWCAP2, 0) >> bit & 1}
    return names


def _auxv_features() -> Set[str]:
    if not (_is_arm() and struct.calcsize("P") == 8):
        return set()
    try:
        with open("/proc/self/auxv", "rb") as f:
            return arm64_hwcaps(f.read())
    except OSError:
        return set()


def _read(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _cpuinfo() -> Dict[str, str]:
    fields: Dict[str, str] = {}
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        if ":" in line:
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_model(info: Dict[str, str]) -> str:
    if _is_arm() and "flags" in info:  # an x86 host's cpuinfo: we run under user-mode emulation
        return f"emulated {platform.machine()} (host: {info.get('model name', 'unknown')})"
    for key in ("model name", "Hardware", "Model", "cpu model"):
        if info.get(key):
            return info[key]
    if "CPU part" in info:  # ARM: implementer + part number identify the core
        return f"ARM implementer {info.get('CPU implementer', '?')} part {info['CPU part']}"
    return platform.processor() or platform.machine()


def cpu_features(info: Dict[str, str], auxv: Optional[Iterable[str]] = None) -> List[str]:
    if _is_arm():
        flags = set((info.get("Features") or "").split())
        flags |= set(_auxv_features() if auxv is None else auxv)
        return [f for f in _INTERESTING_FLAGS["arm"] if f in flags]
    flags = set((info.get("flags") or "").split())
    return [f for f in _INTERESTING_FLAGS["x86"] if f in flags]


def frequencies_mhz() -> Dict[str, Optional[float]]:
    base = "/sys/devices/system/cpu/cpu0/cpufreq"
    out: Dict[str, Optional[float]] = {}
    for name in ("scaling_cur_freq", "cpuinfo_max_freq", "cpuinfo_min_freq"):
        value = _read(os.path.join(base, name))
        out[name] = float(value) / 1000.0 if value and value.isdigit() else None
    return out


def temperatures_c() -> Dict[str, float]:
    temps: Dict[str, float] = {}
    root = "/sys/class/thermal"
    if not os.path.isdir(root):
        return temps
    for zone in sorted(os.listdir(root)):
        if not zone.startswith("thermal_zone"):
            continue
        value = _read(os.path.join(root, zone, "temp"))
        kind = _read(os.path.join(root, zone, "type")) or zone
        if value and value.lstrip("-").isdigit():
            temps[kind] = int(value) / 1000.0
    return temps


def ncnn_facts() -> Dict[str, object]:
    import ncnn

    facts: Dict[str, object] = {"version": getattr(ncnn, "__version__", None)}
    for name in ("cpu_support_arm_neon", "cpu_support_arm_asimdhp", "cpu_support_arm_vfpv4",
                 "cpu_support_x86_avx", "cpu_support_x86_avx2"):
        fn = getattr(ncnn, name, None)
        if fn is not None:
            facts[name.replace("cpu_support_", "")] = bool(fn())
    for name in ("get_cpu_count", "get_big_cpu_count", "get_little_cpu_count", "get_physical_cpu_count"):
        fn = getattr(ncnn, name, None)
        if fn is not None:
            facts[name.replace("get_", "")] = int(fn())
    # Vulkan GPU count is not probed: asking loads the Vulkan loader, which prints
    # errors on boards without it, and this benchmark measures the CPU path.
    return facts


def collect() -> Dict[str, object]:
    info = _cpuinfo()
    return {
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "cpu_model": cpu_model(info),
        "cpu_features": cpu_features(info),
        "cores": os.cpu_count(),
        "frequency_mhz": frequencies_mhz(),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "temperature_c": temperatures_c(),
        "board": _read("/proc/device-tree/model") or _read("/sys/firmware/devicetree/base/model"),
        "python": sys.version.split()[0],
        "ncnn": ncnn_facts(),
    }
