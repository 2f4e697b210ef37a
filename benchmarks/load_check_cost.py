"""What the load-time model checks cost (issue 12): `NcnnModel(...)` with and without them.

    python benchmarks/load_check_cost.py [--rounds 7]

Converts the shared RTMDet-nano person detector, YOLOX-nano and the reference RTMPose-t body and
whole-body models into a temporary folder (self-check off), then times loading each one with the
checks (`probe=True`: recorded sha256 of .param/.bin, int8 scales for int8 models, one probe
inference with output shape and finiteness checks) and without (`probe=False`), interleaved
round by round in this process; prints the median of each and the difference. An int8 copy of the
detector (every convolution int8, as `edgepose quantize` writes one) is timed too, since its
scale check reads the weights. Needs the host extra and the shared assets (EDGEPOSE_SHARED).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

SOURCES = {
    "rtmdet-nano": "models/rtmdet-nano-person/rtmdet-nano-person_raw-heads.onnx",
    "yolox-nano": "models/yolox-nano/yolox_nano_416x416.onnx",
    "rtmpose-t body": "reference/official/rtmpose-t_body8_256x192.onnx",
    "rtmpose-t wholebody": "reference/official/rtmpose-t_wholebody_256x192.onnx",
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    from helpers import make_int8_model, shared_dir

    from edgepose.convert.api import convert
    from edgepose.runtime.ncnn_model import NcnnModel
    shared = shared_dir()
    with tempfile.TemporaryDirectory(prefix="edgepose-load-cost-") as work:
        folders = {}
        for label, rel in SOURCES.items():
            out = os.path.join(work, label.replace(" ", "_"))
            convert(str(shared / rel), out, check=False, log=lambda _m: None)
            folders[label] = out
        folders["rtmdet-nano int8"] = str(make_int8_model(folders["rtmdet-nano"], Path(work) / "int8"))
        times = {(k, p): [] for k in folders for p in (False, True)}
        for _ in range(args.rounds):
            for label, folder in folders.items():
                for probe in (False, True):
                    t0 = time.perf_counter()
                    NcnnModel(folder, threads=args.threads, probe=probe)
                    times[(label, probe)].append(time.perf_counter() - t0)
        print(f"model load, median of {args.rounds} interleaved rounds, {args.threads} thread(s):")
        print(f"{'model':>22}  {'no checks ms':>12}  {'checks ms':>9}  {'cost ms':>7}  {'ratio':>5}")
        for label in folders:
            off = statistics.median(times[(label, False)]) * 1e3
            on = statistics.median(times[(label, True)]) * 1e3
            print(f"{label:>22}  {off:12.1f}  {on:9.1f}  {on - off:7.1f}  {on / off:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
