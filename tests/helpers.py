"""Helpers shared by the test modules (no test module imports another)."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np

from edgepose.model_meta import ModelMeta, find_model

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """The read-only asset folder beside the checkout (override with EDGEPOSE_SHARED)."""
    return Path(os.environ.get("EDGEPOSE_SHARED", REPO.parent / "shared")).resolve()


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def iou(a, b):
    x1, y1 = np.maximum(a[0], b[0]), np.maximum(a[1], b[1])
    x2, y2 = np.minimum(a[2], b[2]), np.minimum(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


ONNX_REL = "models/rtmdet-nano-person/rtmdet-nano-person_raw-heads.onnx"


def onnx_module_path(node_name: str) -> str:
    """'/backbone/stage1/stage1.0/depthwise_conv/conv/Conv' -> 'backbone.stage1.0.depthwise_conv.conv'."""
    out = []
    for part in node_name.strip("/").split("/")[:-1]:
        if out and part.startswith(out[-1].split(".")[-1] + "."):
            part = part[len(out[-1].split(".")[-1]) + 1:]
        out.append(part)
    return ".".join(out)


def load_fused_onnx(model, onnx_path):
    """Each ONNX Conv (with BN folded in) -> our conv weight; the BN after it becomes +bias."""
    import onnx
    import torch
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    modules = dict(model.named_modules())
    sd = model.state_dict()
    seen = set()
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        path = onnx_module_path(node.name)
        assert isinstance(modules[path], torch.nn.Conv2d), path
        w = inits[node.input[1]]
        b = inits[node.input[2]] if len(node.input) > 2 else np.zeros(w.shape[0], np.float32)
        assert tuple(sd[path + ".weight"].shape) == w.shape, path
        sd[path + ".weight"] = torch.from_numpy(w.copy())
        parent = path.rsplit(".", 1)[0]
        if path + ".bias" in sd:
            sd[path + ".bias"] = torch.from_numpy(b.copy())
        else:
            bn = modules[parent + ".bn"]
            sd[parent + ".bn.weight"] = torch.ones_like(sd[parent + ".bn.weight"])
            sd[parent + ".bn.bias"] = torch.from_numpy(b.copy())
            sd[parent + ".bn.running_mean"] = torch.zeros_like(sd[parent + ".bn.running_mean"])
            sd[parent + ".bn.running_var"] = torch.full_like(sd[parent + ".bn.running_var"], 1.0 - bn.eps)
        seen.add(path)
    convs = {k for k, m in modules.items() if isinstance(m, torch.nn.Conv2d)}
    assert seen == convs, (sorted(convs - seen)[:5], sorted(seen - convs)[:5])
    model.load_state_dict(sd, strict=True)
    return model


def _meta(folder):
    path = find_model(str(folder))
    return path, ModelMeta.load(path)


def official_parity(folder, npz_path, fp16=False):
    """Run the converted model on the official inputs (turned back into raw BGR pixels)."""
    from edgepose.convert import fold_input, selfcheck

    path, meta = _meta(folder)
    ref = np.load(npz_path)
    pix = fold_input.raw_pixels_from_normalised(ref["input"], meta.mean, meta.std, meta.model_channel_order,
                                                meta.channel_order)
    rows = []
    for b in range(pix.shape[0]):
        outs = selfcheck.ncnn_forward(meta.param_path(path), meta.bin_path(path), meta.input_blob,
                                      [meta.output_blobs["simcc_x"], meta.output_blobs["simcc_y"]], pix[b],
                                      fp16=fp16)
        for role, got in zip(("simcc_x", "simcc_y"), outs):
            want = ref[role][b]
            got = got.reshape(want.shape)
            a, g = want.argmax(-1), got.argmax(-1)
            rows.append((float(np.abs(got - want).max()), float(np.abs(want).max()),
                         float((a == g).mean()), float((np.abs(a - g) <= 1).mean())))
    max_abs = max(r[0] for r in rows)
    max_mag = max(r[1] for r in rows)
    return max_abs, max_mag, min(r[2] for r in rows), min(r[3] for r in rows)


# -- hostile-input corpus (tests/*/test_bad_input_corpus.py) ------------------------------------

PERSON_IMAGE = "data/calib_mmpose_examples/human-pose.jpeg"
UNWRITABLE_DIR = "/sys/kernel"               # exists, and not writable even for root (sysfs)
UNCREATABLE_DIR = "/sys/edgepose-corpus/out"  # cannot be created even by root


def tree_hashes(*roots, ignore=()) -> dict:
    """{path: sha256} of every file under the given files/folders (missing roots: nothing;
    file names in `ignore` left out, e.g. edgepose's own manifest)."""
    from edgepose.files import sha256_of
    out = {}
    for root in roots:
        root = Path(root)
        if root.is_file():
            out[str(root)] = sha256_of(str(root))
        elif root.is_dir():
            for p in sorted(root.rglob("*")):
                if p.is_file() and p.name not in ignore:
                    out[str(p)] = sha256_of(str(p))
    return out


class CliOutcome:
    """One in-process `edgepose` call: exit code, stdout, stderr, and a traceback if one escaped."""

    def __init__(self, argv):
        import contextlib
        import io
        import traceback

        from edgepose.cli import main
        self.argv = [str(a) for a in argv]
        out, err = io.StringIO(), io.StringIO()
        self.traceback = None
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                self.rc = main(self.argv)
            except SystemExit as e:                     # argparse usage errors
                self.rc = e.code if isinstance(e.code, int) else 2
            except BaseException:                       # anything else escaping main is a bug
                self.rc = None
                self.traceback = traceback.format_exc()
        self.out, self.err = out.getvalue(), err.getvalue()

    def error_lines(self):
        return [line for line in self.err.splitlines() if ": error: " in line or line.startswith("usage:")]

    def problem(self):
        """None when the call ended cleanly: exit 0, or exit != 0 with one error line and no traceback."""
        if self.traceback or "Traceback" in self.err or "Traceback" in self.out:
            return f"traceback: {(self.traceback or self.err)[-600:]}"
        if self.rc == 0:
            return None
        errors = [line for line in self.err.splitlines() if ": error: " in line]
        if len(errors) != 1:
            return f"exit {self.rc} with {len(errors)} error lines: {self.err[-400:]!r}"
        return None


def mutate_bytes(data: bytes, rng) -> bytes:
    """One random corruption: flip bits, overwrite a run, truncate, insert or delete bytes."""
    data = bytearray(data)
    n = len(data)
    kind = rng.integers(5)
    if n == 0:
        return bytes(rng.integers(0, 256, 16, dtype=np.uint8))
    at = int(rng.integers(n))
    if kind == 0:                                   # flip 1-3 bits
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(n))
            data[i] ^= 1 << int(rng.integers(8))
    elif kind == 1:                                 # overwrite a short run with random bytes
        k = int(rng.integers(1, 17))
        data[at:at + k] = bytes(rng.integers(0, 256, len(data[at:at + k]), dtype=np.uint8))
    elif kind == 2:                                 # truncate
        del data[at:]
    elif kind == 3:                                 # insert random bytes
        data[at:at] = bytes(rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8))
    else:                                           # delete a run
        del data[at:at + int(rng.integers(1, 65))]
    return bytes(data)


def mutate_text(text: bytes, rng) -> bytes:
    """A corruption a text file meets in practice: a changed digit, sign, quote, bracket or word."""
    data = bytearray(text)
    spots = [i for i, c in enumerate(data) if chr(c) in "0123456789-.,:\"[]{}eE"]
    if not spots or rng.random() < 0.3:
        return mutate_bytes(text, rng)
    i = spots[int(rng.integers(len(spots)))]
    data[i] = ord(rng.choice(list("0123456789-.,:\"[]{} x")))
    return bytes(data)


def copy_model(src, dst) -> Path:
    """A private copy of a converted model folder (tests damage copies, never fixtures)."""
    import shutil
    dst = Path(dst)
    shutil.copytree(src, dst)
    return dst


def model_file(folder, suffix: str) -> Path:
    """The .json / .ncnn.param / .ncnn.bin of the (single) model in a folder."""
    meta_path = Path(find_model(str(folder)))
    if suffix == ".json":
        return meta_path
    meta = ModelMeta.load(str(meta_path))
    return Path(meta.param_path(str(meta_path)) if suffix == ".ncnn.param" else meta.bin_path(str(meta_path)))


def rewrite_meta(folder, **changes) -> None:
    """Change metadata fields in place (as a hand edit would)."""
    import json
    path = model_file(folder, ".json")
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data, indent=1))


def make_int8_model(src, dst, scale: float = 32.0) -> Path:
    """An int8 copy of a converted fp32 model (every conv int8, input scale `scale`), written as
    `edgepose quantize` writes one, without the calibration: a fast fixture for loading checks."""
    import hashlib
    import json

    from edgepose.ncnn_io import read_model
    from edgepose.quantization.calibration import quantizable_layers
    from edgepose.quantization.int8_writer import quantize_layers
    meta_path = find_model(str(src))
    meta = ModelMeta.load(meta_path)
    model = read_model(meta.param_path(meta_path), meta.bin_path(meta_path))
    names = [layer.name for layer in quantizable_layers(model)]
    q = quantize_layers(model, names, {n: scale for n in names})
    dst = Path(dst)
    dst.mkdir(parents=True)
    name = meta.name + "-int8"
    weights, graph = q.bin_bytes(), q.param_text().encode()
    (dst / f"{name}.ncnn.bin").write_bytes(weights)
    (dst / f"{name}.ncnn.param").write_bytes(graph)
    data = meta.to_dict()
    data.update(name=name, param=f"{name}.ncnn.param", bin=f"{name}.ncnn.bin", precision="int8",
                quantization={"method": "test"},
                checksums={f"{name}.ncnn.param": hashlib.sha256(graph).hexdigest(),
                           f"{name}.ncnn.bin": hashlib.sha256(weights).hexdigest()})
    (dst / f"{name}.json").write_text(json.dumps(data, indent=1))
    return dst


def damage_int8_scales(folder, blob: str, value: float, keep_checksums: bool = False) -> None:
    """Set every `blob` int8 scale (e.g. bottom_int8_scales, weight_int8_scales) of the model in
    `folder` to `value`, and re-record the checksums as a tool that rewrote the file would."""
    import hashlib
    import json

    from edgepose.ncnn_io import WeightBlob, read_model
    meta_path = model_file(folder, ".json")
    param, binf = model_file(folder, ".ncnn.param"), model_file(folder, ".ncnn.bin")
    model = read_model(str(param), str(binf))
    hit = 0
    for layer in model.layers:
        for i, b in enumerate(layer.blobs):
            if b.name == blob:
                layer.blobs[i] = WeightBlob.fp32(b.name, np.full(b.count, value, np.float32), mode=b.mode)
                hit += 1
    assert hit, f"no {blob} blob in {binf}"
    weights = model.bin_bytes()
    binf.write_bytes(weights)
    if not keep_checksums:
        data = json.loads(meta_path.read_text())
        data["checksums"][binf.name] = hashlib.sha256(weights).hexdigest()
        meta_path.write_text(json.dumps(data, indent=1))


def json_changes(before: bytes, after: bytes):
    """Dotted paths of the values a text change altered, when both parse as JSON (else None)."""
    import json
    try:
        a, b = json.loads(before), json.loads(after)
    except ValueError:
        return None
    out = []

    def walk(x, y, path):
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y), key=str):
                walk(x.get(k), y.get(k), f"{path}.{k}" if path else str(k))
        elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
            for i, (u, v) in enumerate(zip(x, y)):
                walk(u, v, f"{path}[{i}]")
        elif x != y or type(x) is not type(y):
            out.append(path)
    walk(a, b, "")
    return out


def rewrite_param(folder, edit) -> Path:
    """Apply `edit(text) -> text` to the folder's .ncnn.param and re-record its sha256 in the metadata,
    as a tool that rewrote the graph on purpose would (the runtime refuses a file that differs)."""
    import hashlib
    import json
    param = next(Path(folder).glob("*.ncnn.param"))
    param.write_text(edit(param.read_text()))
    meta_path = next(p for p in Path(folder).glob("*.json") if not p.name.startswith("."))
    data = json.loads(meta_path.read_text())
    if isinstance(data.get("checksums"), dict):
        data["checksums"][param.name] = hashlib.sha256(param.read_bytes()).hexdigest()
    meta_path.write_text(json.dumps(data, indent=1) + "\n")
    return param
