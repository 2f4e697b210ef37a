"""benchmarks/bench_table.py: the issue-5 table in one command (here shortened: fp32, 1 thread)."""
import json
import statistics

import pytest

pytestmark = pytest.mark.host   # references: rtmlib / onnxruntime / quantization


def _spread(values):
    return 100.0 * (max(values) - min(values)) / statistics.median(values)


def test_bench_table_repeats_the_bench_and_reports_min_median_max(rtmdet_dir, wholebody_t_dir, shared, benchmark_script,
                                                                  tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDGEPOSE_SHARED", str(shared))
    work = tmp_path / "work"
    work.mkdir()
    # The session's converted models are the same files the script would convert.
    (work / "det").symlink_to(rtmdet_dir, target_is_directory=True)
    (work / "pose").symlink_to(wholebody_t_dir, target_is_directory=True)
    out = tmp_path / "table"
    rc = benchmark_script("bench_table").main(["--runs", "2", "--rounds", "2", "--seconds", "0.6", "--threads", "1",
                                               "--precision", "fp32", "--work", str(work), "-o", str(out)])
    assert rc == 0
    summary = json.loads((out / "table.json").read_text())["rows"]
    assert [r["scenario"].split(":")[0] for r in summary] == ["1p", f"{summary[1]['persons']:.0f}p"]
    assert summary[1]["persons"] >= 6
    for r in summary:
        assert len(r["fps"]) == len(r["baseline_fps"]) == 2  # one value per run, edgepose and ORT
        assert r["runs_agree_within_pct"] == pytest.approx(max(_spread(r["fps"]), _spread(r["baseline_fps"])))
        assert r["ratio_median"] > 0 and 0.0 <= r["outside_ncnn_pct_median"] < 100.0
    table = (out / "table.md").read_text()
    assert table.count("\n| fp32 | 1 |") == 2 and "repeated runs agree within" in table
    for run in (1, 2):
        assert (out / f"run{run}" / "bench.json").is_file()
