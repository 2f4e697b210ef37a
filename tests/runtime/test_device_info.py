"""What `edgepose bench` reports about the device (the report's header)."""
import struct

from edgepose.runtime.bench import device_info


def _auxv(hwcap, hwcap2=0):
    # (type, value) pairs of native 64-bit words, AT_NULL last, as /proc/self/auxv holds them.
    pairs = [(6, 4096), (16, hwcap), (26, hwcap2), (0, 0)]
    return b"".join(struct.pack("=QQ", k, v) for k, v in pairs)


def test_arm64_features_come_from_the_auxiliary_vector():
    # The HWCAP words qemu-user gives an arm64 process under -cpu cortex-a72 and cortex-a76.
    a72 = device_info.arm64_hwcaps(_auxv(0x8FB))
    a76 = device_info.arm64_hwcaps(_auxv(0x119FFB))
    assert {"fp", "asimd"} <= a72 and not a72 & {"fphp", "asimdhp", "asimddp"}
    assert {"fp", "asimd", "fphp", "asimdhp", "asimddp", "atomics"} <= a76
    assert device_info.arm64_hwcaps(_auxv(0x3, 1 << 13 | 1 << 14)) >= {"i8mm", "bf16"}
    # Words after AT_NULL are not read.
    assert device_info.arm64_hwcaps(struct.pack("=QQ", 0, 0) + _auxv(0x119FFB)) == set()


def test_arm_features_merge_cpuinfo_and_hwcaps_and_emulation_is_named(monkeypatch):
    monkeypatch.setattr(device_info.platform, "machine", lambda: "aarch64")
    host = {"model name": "AMD EPYC", "flags": "fpu sse avx2"}
    assert device_info.cpu_model(host) == "emulated aarch64 (host: AMD EPYC)"
    assert device_info.cpu_features(host, auxv={"asimd", "asimdhp"}) == ["asimd", "asimdhp"]
    board = {"CPU part": "0xd0b", "CPU implementer": "0x41", "Features": "fp asimd asimddp"}
    assert device_info.cpu_model(board) == "ARM implementer 0x41 part 0xd0b"
    assert device_info.cpu_features(board, auxv=set()) == ["asimd", "asimddp"]


def test_x86_report_names_vector_extensions():
    facts = device_info.collect()
    assert facts["cores"] >= 1 and facts["ncnn"]["version"]
    if facts["machine"] == "x86_64":
        flags = open("/proc/cpuinfo").read()
        assert ("avx2" in facts["cpu_features"]) == (" avx2" in flags)


def test_report_header_reads_like_a_board_description():
    from edgepose.runtime.bench.report import markdown

    report = {"rows": [], "models": {"det": "det.json", "pose": "pose.json"}, "stage_names": [],
              "settings": {"warmup": 1, "seconds": 5.0, "det_every": 1, "rounds": 5},
              "device": {"cpu_model": "Raspberry Pi 5", "machine": "aarch64", "cores": 4,
                         "cpu_features": ["asimd", "asimdhp", "asimddp"], "governor": "ondemand",
                         "frequency_mhz": {"scaling_cur_freq": 2400.0, "cpuinfo_min_freq": 1500.0,
                                           "cpuinfo_max_freq": 2400.0},
                         "temperature_c": {"cpu-thermal": 61.35}, "ncnn": {"version": "1.0"}}}
    text = markdown(report)
    assert "features: asimd, asimdhp, asimddp" in text
    assert "frequency: 2400 MHz (range 1500-2400 MHz); temperature: cpu-thermal 61 C" in text
    report["device"].update(frequency_mhz={"scaling_cur_freq": None, "cpuinfo_max_freq": None}, temperature_c={})
    assert "frequency: n/a; temperature: n/a" in markdown(report)
