"""Read and write ncnn `.param` / `.bin` model files in pure numpy.

The `.param` file is text: the magic 7767517, a line "layer_count blob_count",
then one line per layer: type, name, bottom count, top count, bottom names,
top names and `key=value` parameters (arrays as `-23300-key=count,v1,v2,...`).

The `.bin` file is the concatenation, layer by layer in param order, of the
weight blobs each layer type's `load_model` reads. A blob is read either
"raw" (plain little-endian float32, `ModelBin::load(w, 1)`) or "tagged"
(`ModelBin::load(w, 0)`): a 4-byte tag says fp16 (0x01306B47), int8
(0x000D4B38), fp32 with tag (0x0002C056), a 256-entry lookup table (any other
non-zero), or plain fp32 (zero); fp16/int8/table payloads are padded to 4 bytes.
Which blobs a layer reads, their element counts and read modes come from the
layer's parameters (`blob_specs`).

Every blob keeps its original bytes, and parameter values keep their original
text, so reading then writing an unchanged model reproduces it byte for byte.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from edgepose.errors import EdgeposeError

MAGIC = 7767517
ARRAY_KEY_BASE = -23300

TAG_FP16 = 0x01306B47
TAG_INT8 = 0x000D4B38
TAG_FP32 = 0x0002C056

RAW = 1      # ModelBin::load(w, 1): float32, no tag
TAGGED = 0   # ModelBin::load(w, 0): tag word first

ParamValue = Union[int, float, str, List[Union[int, float]]]


# --------------------------------------------------------------------------- params

def _parse_scalar(text: str) -> Union[int, float]:
    # ncnn decides float vs int by the presence of '.', 'e' or 'E' in the token.
    if any(c in text for c in ".eE"):
        return float(text)
    return int(text)


def format_value(value: ParamValue) -> str:
    """ncnn text for a parameter value (floats always carry '.' or 'e')."""
    if isinstance(value, (list, tuple)):
        return ",".join([str(len(value))] + [format_value(v) for v in value])
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        text = repr(float(np.float32(value)))
        if text in ("inf", "-inf", "nan"):
            raise ValueError(f"parameter value {value} cannot be written to an ncnn param file")
        if not any(c in text for c in ".eE"):
            text += ".0"
        return text
    if isinstance(value, str):
        return value
    raise TypeError(f"unsupported ncnn parameter value {value!r}")


@dataclass
class Param:
    """One `key=value` entry; `text` is the value exactly as written in the file."""
    key: int          # 0..31 for both scalars and arrays (arrays are written as -23300-key)
    is_array: bool
    value: ParamValue
    text: str


class ParamDict:
    """Ordered layer parameters; unchanged entries are written back verbatim."""

    def __init__(self, entries: Optional[List[Param]] = None):
        self.entries: List[Param] = list(entries or [])

    def _find(self, key: int) -> Optional[Param]:
        for p in self.entries:
            if p.key == key:
                return p
        return None

    def get(self, key: int, default: ParamValue = None) -> ParamValue:
        p = self._find(key)
        return default if p is None else p.value

    def __contains__(self, key: int) -> bool:
        return self._find(key) is not None

    def set(self, key: int, value: ParamValue) -> None:
        is_array = isinstance(value, (list, tuple))
        p = Param(key, is_array, list(value) if is_array else value, format_value(value))
        for i, old in enumerate(self.entries):
            if old.key == key:
                self.entries[i] = p
                return
        self.entries.append(p)

    def remove(self, key: int) -> None:
        self.entries = [p for p in self.entries if p.key != key]

    def tokens(self) -> List[str]:
        out = []
        for p in self.entries:
            k = ARRAY_KEY_BASE - p.key if p.is_array else p.key
            out.append(f"{k}={p.text}")
        return out

    def copy(self) -> "ParamDict":
        return ParamDict([Param(p.key, p.is_array, list(p.value) if p.is_array else p.value, p.text)
                          for p in self.entries])


def _parse_param_token(token: str, where: str) -> Param:
    if "=" not in token:
        raise EdgeposeError(f"{where}: parameter {token!r} is not key=value")
    k, _, v = token.partition("=")
    try:
        key = int(k)
    except ValueError:
        raise EdgeposeError(f"{where}: parameter key {k!r} is not an integer") from None
    try:
        if key <= ARRAY_KEY_BASE:
            idx = ARRAY_KEY_BASE - key
            parts = v.split(",")
            count = int(parts[0])
            values = [_parse_scalar(x) for x in parts[1:]]
            if count != len(values):
                raise EdgeposeError(f"{where}: array parameter {key} says {count} values but has {len(values)}")
            is_array = True
            value: ParamValue = values
        else:
            idx = key
            is_array = False
            value = v if v.startswith('"') else _parse_scalar(v)
    except ValueError:
        raise EdgeposeError(f"{where}: parameter {token!r} has a malformed value") from None
    if not 0 <= idx < 32:
        raise EdgeposeError(f"{where}: parameter id {idx} out of range 0..31 in {token!r}")
    return Param(idx, is_array, value, v)


# --------------------------------------------------------------------------- blobs

@dataclass
class WeightBlob:
    """One weight blob as stored in the .bin: its read mode, element count and exact bytes."""
    name: str          # role within the layer, e.g. "weight", "bias", "weight_int8_scales"
    count: int         # elements the layer reads
    mode: int          # RAW or TAGGED
    raw: bytes         # bytes exactly as in the file (tag and padding included)

    @property
    def storage(self) -> str:
        """fp32 | fp16 | int8 | table."""
        if self.mode == RAW:
            return "fp32"
        tag = int.from_bytes(self.raw[:4], "little")
        if tag == TAG_FP16:
            return "fp16"
        if tag == TAG_INT8:
            return "int8"
        if tag == TAG_FP32 or sum(self.raw[:4]) == 0:
            return "fp32"
        return "table"

    def data(self) -> np.ndarray:
        """Values as stored: float32 for fp32/fp16/table blobs, int8 for int8 blobs."""
        n = self.count
        if self.mode == RAW:
            return np.frombuffer(self.raw, "<f4", n).copy()
        kind = self.storage
        body = self.raw[4:]
        if kind == "fp16":
            return np.frombuffer(body, "<f2", n).astype(np.float32)
        if kind == "int8":
            return np.frombuffer(body, np.int8, n).copy()
        if kind == "table":
            table = np.frombuffer(body, "<f4", 256)
            return table[np.frombuffer(body, np.uint8, n, offset=1024)].astype(np.float32)
        return np.frombuffer(body, "<f4", n).copy()

    def to_float(self) -> np.ndarray:
        """Float32 values; int8 blobs are returned as their integer values."""
        return self.data().astype(np.float32)

    # constructors ---------------------------------------------------------
    @staticmethod
    def fp32(name: str, values: np.ndarray, mode: int = TAGGED) -> "WeightBlob":
        v = np.ascontiguousarray(values, dtype="<f4").ravel()
        head = b"" if mode == RAW else (0).to_bytes(4, "little")
        return WeightBlob(name, v.size, mode, head + v.tobytes())

    @staticmethod
    def fp16(name: str, values: np.ndarray) -> "WeightBlob":
        v = np.ascontiguousarray(values, dtype="<f2").ravel()
        body = v.tobytes()
        return WeightBlob(name, v.size, TAGGED, TAG_FP16.to_bytes(4, "little") + body + b"\0" * (-len(body) % 4))

    @staticmethod
    def int8(name: str, values: np.ndarray) -> "WeightBlob":
        v = np.ascontiguousarray(values, dtype=np.int8).ravel()
        body = v.tobytes()
        return WeightBlob(name, v.size, TAGGED, TAG_INT8.to_bytes(4, "little") + body + b"\0" * (-len(body) % 4))


def _read_blob(buf: memoryview, pos: int, name: str, count: int, mode: int, where: str) -> Tuple[WeightBlob, int]:
    total = len(buf)

    def need(nbytes: int, what: str) -> None:
        if pos + nbytes > total:
            raise EdgeposeError(
                f"{where}: bin file ends early reading {what} of blob '{name}' ({count} values): "
                f"needs {nbytes} bytes at offset {pos}, only {total - pos} left (truncated or wrong .bin?)")

    if count < 0:
        raise EdgeposeError(f"{where}: negative size {count} for blob '{name}' (bad layer parameters)")
    if mode == RAW:
        size = 4 * count
        need(size, "data")
        return WeightBlob(name, count, mode, bytes(buf[pos:pos + size])), pos + size
    need(4, "the storage tag")
    tag = int.from_bytes(buf[pos:pos + 4], "little")
    if tag == TAG_FP16:
        size = 4 + 2 * count + (-2 * count % 4)
    elif tag == TAG_INT8:
        size = 4 + count + (-count % 4)
    elif tag == TAG_FP32 or sum(buf[pos:pos + 4]) == 0:
        size = 4 + 4 * count
    else:
        size = 4 + 1024 + count + (-count % 4)
    need(size, "data")
    return WeightBlob(name, count, mode, bytes(buf[pos:pos + size])), pos + size


# --------------------------------------------------------------------------- layer weight layouts
# Each function returns [(blob role, element count, read mode)] in the order the
# layer's load_model reads them (ncnn src/layer/<type>.cpp).

BlobSpec = Tuple[str, int, int]

# Layer types that read nothing from the .bin.
WEIGHTLESS = {
    "AbsVal", "ArgMax", "BNLL", "BinaryOp", "Cast", "CELU", "Clip", "Concat", "Crop", "CopyTo",
    "CumulativeSum", "DeepCopy", "DeformableConv2D", "Diag", "Dropout", "ELU", "Einsum", "Eltwise",
    "Erf", "Exp", "ExpandDims", "Flatten", "Flip", "Fold", "GELU", "GLU", "GridSample", "HardSigmoid",
    "HardSwish", "Input", "Interp", "LRN", "Log", "LogSoftmax", "MVN", "MatMul", "Mish", "Noop",
    "Packing", "Padding", "Permute", "PixelShuffle", "Pooling", "Pooling1D", "Pooling3D", "Power",
    "ReLU", "Reduction", "Reorg", "Reshape", "RotaryEmbed", "SDPA", "SELU", "Shrink", "ShuffleChannel",
    "Sigmoid", "Slice", "Softmax", "Softplus", "Split", "Squeeze", "StatisticsPooling", "Swish",
    "TanH", "Threshold", "Tile", "UnaryOp", "Unfold", "YoloDetectionOutput", "Yolov3DetectionOutput",
    "DetectionOutput", "PriorBox", "Proposal", "PSROIPooling", "ROIAlign", "ROIPooling", "Spp",
}


def _int8_scales(term: int, n_weight_scales: int) -> List[BlobSpec]:
    """The int8 scale blobs Convolution, ConvolutionDepthWise and InnerProduct append after
    their weights: weight and bottom scales when quantized (int8_scale_term), top scales
    too when the output is requantized (term > 100)."""
    specs: List[BlobSpec] = []
    if term:
        specs.append(("weight_int8_scales", n_weight_scales, RAW))
        specs.append(("bottom_int8_scales", 1, RAW))
    if term > 100:
        specs.append(("top_int8_scales", 1, RAW))
    return specs


def _conv(p: ParamDict, dw: bool) -> List[BlobSpec]:
    num_output = p.get(0, 0)
    specs: List[BlobSpec] = []
    if p.get(19, 0):        # dynamic weight: weights come from a second input blob
        return specs
    specs.append(("weight", p.get(6, 0), TAGGED))
    if p.get(5, 0):
        specs.append(("bias", num_output, RAW))
    term = p.get(8, 0)
    n_w = (p.get(7, 1) if term in (1, 101) else 1) if dw else num_output  # depthwise: per group
    return specs + _int8_scales(term, n_w)


def _deconv(p: ParamDict) -> List[BlobSpec]:
    if p.get(28, 0):
        return []
    specs: List[BlobSpec] = [("weight", p.get(6, 0), TAGGED)]
    if p.get(5, 0):
        specs.append(("bias", p.get(0, 0), RAW))
    return specs


def _innerproduct(p: ParamDict) -> List[BlobSpec]:
    num_output = p.get(0, 0)
    specs: List[BlobSpec] = [("weight", p.get(2, 0), TAGGED)]
    if p.get(1, 0):
        specs.append(("bias", num_output, RAW))
    return specs + _int8_scales(p.get(8, 0), num_output)


def _gemm(p: ParamDict) -> List[BlobSpec]:
    M, N, K = p.get(7, 0), p.get(8, 0), p.get(9, 0)
    term = p.get(18, 0)
    if term >= 400:
        raise ValueError(f"weight block quantized Gemm (quantize_term {term}) is not supported")
    specs: List[BlobSpec] = []
    if p.get(4, 0):
        specs.append(("A", M * K, TAGGED))
    if p.get(5, 0):
        specs.append(("B", N * K, TAGGED))
    bt = p.get(10, 0)
    if p.get(6, 0) and bt != -1:
        n_c = {0: 1, 1: M, 2: M, 3: M * N, 4: N}.get(bt)
        if n_c is None:
            raise ValueError(f"unknown constant_broadcast_type_C {bt}")
        specs.append(("C", n_c, TAGGED))
    if term:
        if p.get(4, 0):
            specs.append(("A_int8_scales", M, RAW))
        if p.get(5, 0):
            specs.append(("B_int8_scale", 1, RAW))
    return specs


def _memorydata(p: ParamDict) -> List[BlobSpec]:
    dims = [p.get(0, 0), p.get(1, 0), p.get(11, 0), p.get(2, 0)]
    if dims[0] == 0:
        return []
    count = 1
    for d in dims:
        if d:
            count *= d
    return [("data", count, p.get(21, RAW))]


def _affine(count_key: int, affine_key: int, affine_default: int = 1):
    def spec(p: ParamDict) -> List[BlobSpec]:
        if not p.get(affine_key, affine_default):
            return []
        n = p.get(count_key, 0)
        return [("gamma", n, RAW), ("beta", n, RAW)]
    return spec


def _embed(p: ParamDict) -> List[BlobSpec]:
    specs: List[BlobSpec] = [("weight", p.get(3, 0), TAGGED)]
    if p.get(2, 0):
        specs.append(("bias", p.get(0, 0), RAW))
    return specs


def _multiheadattention(p: ParamDict) -> List[BlobSpec]:
    embed_dim, wsize = p.get(0, 0), p.get(2, 0)
    kdim, vdim = p.get(3, embed_dim), p.get(4, embed_dim)
    if p.get(18, 0):
        raise ValueError("int8 MultiHeadAttention is not supported")
    qdim = wsize // embed_dim if embed_dim else 0
    return [("q_weight", wsize, TAGGED), ("q_bias", embed_dim, RAW),
            ("k_weight", embed_dim * kdim, TAGGED), ("k_bias", embed_dim, RAW),
            ("v_weight", embed_dim * vdim, TAGGED), ("v_bias", embed_dim, RAW),
            ("out_weight", qdim * embed_dim, TAGGED), ("out_bias", qdim, RAW)]


def _scale(p: ParamDict) -> List[BlobSpec]:
    n = p.get(0, 0)
    specs: List[BlobSpec] = [] if n == -233 else [("scale", n, RAW)]
    if p.get(1, 0):
        specs.append(("bias", n, RAW))
    return specs


def _batchnorm(p: ParamDict) -> List[BlobSpec]:
    c = p.get(0, 0)
    return [("slope", c, RAW), ("mean", c, RAW), ("var", c, RAW), ("bias", c, RAW)]


def _quantize(p: ParamDict) -> List[BlobSpec]:
    return [("scale", p.get(0, 1), RAW)]


def _dequantize(p: ParamDict) -> List[BlobSpec]:
    specs: List[BlobSpec] = [("scale", p.get(0, 1), RAW)]
    if p.get(1, 0):
        specs.append(("bias", p.get(1, 0), RAW))
    return specs


def _requantize(p: ParamDict) -> List[BlobSpec]:
    specs: List[BlobSpec] = [("scale_in", p.get(0, 1), RAW), ("scale_out", p.get(1, 1), RAW)]
    if p.get(4, 0):
        specs.append(("bias", p.get(4, 0), RAW))
    return specs


def _rmsnorm(p: ParamDict) -> List[BlobSpec]:
    return [("gamma", p.get(0, 0), RAW)] if p.get(2, 1) else []


LAYOUTS = {
    "Convolution": lambda p: _conv(p, False),
    "Convolution1D": lambda p: _conv(p, False),
    "Convolution3D": lambda p: _conv(p, False),
    "ConvolutionDepthWise": lambda p: _conv(p, True),
    "ConvolutionDepthWise1D": lambda p: _conv(p, True),
    "ConvolutionDepthWise3D": lambda p: _conv(p, True),
    "Deconvolution": _deconv,
    "Deconvolution1D": _deconv,
    "Deconvolution3D": _deconv,
    "DeconvolutionDepthWise": _deconv,
    "DeconvolutionDepthWise1D": _deconv,
    "DeconvolutionDepthWise3D": _deconv,
    "InnerProduct": _innerproduct,
    "Gemm": _gemm,
    "MemoryData": _memorydata,
    "LayerNorm": _affine(0, 2),
    "GroupNorm": _affine(1, 3),
    "InstanceNorm": _affine(0, 2),
    "RMSNorm": _rmsnorm,
    "Embed": _embed,
    "MultiHeadAttention": _multiheadattention,
    "Scale": _scale,
    "BatchNorm": _batchnorm,
    "Bias": lambda p: [("bias", p.get(0, 0), RAW)],
    "PReLU": lambda p: [("slope", p.get(0, 0), RAW)],
    "Normalize": lambda p: [("scale", p.get(3, 0), RAW)],
    "Quantize": _quantize,
    "Dequantize": _dequantize,
    "Requantize": _requantize,
}


def blob_specs(layer_type: str, params: ParamDict, where: str) -> List[BlobSpec]:
    """The weight blobs a layer of this type reads from the .bin, in order."""
    if layer_type in WEIGHTLESS:
        return []
    fn = LAYOUTS.get(layer_type)
    if fn is None:
        raise EdgeposeError(f"{where}: layer type {layer_type!r} is not known to edgepose's ncnn reader, "
                            f"so its weights cannot be located in the .bin")
    try:
        return fn(params)
    except ValueError as e:
        raise EdgeposeError(f"{where}: {e}") from None


# --------------------------------------------------------------------------- model

@dataclass
class Layer:
    type: str
    name: str
    bottoms: List[str]
    tops: List[str]
    params: ParamDict = field(default_factory=ParamDict)
    blobs: List[WeightBlob] = field(default_factory=list)

    def blob(self, name: str) -> Optional[WeightBlob]:
        for b in self.blobs:
            if b.name == name:
                return b
        return None

    def param_line(self) -> str:
        head = "%-24s %-24s %d %d" % (self.type, self.name, len(self.bottoms), len(self.tops))
        parts = [head] + self.bottoms + self.tops + self.params.tokens()
        return " ".join(parts)


@dataclass
class NcnnModel:
    layers: List[Layer]
    blob_count: int

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def producers(self) -> Dict[str, Layer]:
        return {t: layer for layer in self.layers for t in layer.tops}

    def input_blobs(self) -> List[str]:
        return [t for layer in self.layers if layer.type == "Input" for t in layer.tops]

    def copy(self) -> "NcnnModel":
        return NcnnModel([Layer(l.type, l.name, list(l.bottoms), list(l.tops), l.params.copy(), list(l.blobs))
                          for l in self.layers], self.blob_count)

    # -- text / bytes ------------------------------------------------------
    def param_text(self) -> str:
        lines = [str(MAGIC), f"{len(self.layers)} {self.blob_count}"]
        lines += [layer.param_line() for layer in self.layers]
        return "\n".join(lines) + "\n"

    def bin_bytes(self) -> bytes:
        return b"".join(b.raw for layer in self.layers for b in layer.blobs)


def parse_param(text: str, origin: str = "<param>") -> NcnnModel:
    lines = text.splitlines()
    if not lines or lines[0].strip() != str(MAGIC):
        first = lines[0].strip()[:40] if lines else ""
        raise EdgeposeError(f"{origin}: line 1: not an ncnn param file (magic {first!r}, expected {MAGIC})")
    if len(lines) < 2:
        raise EdgeposeError(f"{origin}: line 2: missing 'layer_count blob_count'")
    counts = lines[1].split()
    try:
        layer_count, blob_count = int(counts[0]), int(counts[1])
        if len(counts) != 2:
            raise ValueError
    except (ValueError, IndexError):
        raise EdgeposeError(f"{origin}: line 2: expected 'layer_count blob_count', got {lines[1]!r}") from None
    layers: List[Layer] = []
    seen_tops = set()
    for lineno, line in enumerate(lines[2:], start=3):
        if not line.strip():
            continue
        tok = line.split()
        where = f"{origin}: line {lineno}"
        if len(tok) < 4:
            raise EdgeposeError(f"{where}: bad layer line {line.strip()[:80]!r} "
                                f"(expected: type name bottom_count top_count blobs... params...)")
        ltype, name = tok[0], tok[1]
        where = f"{origin}: line {lineno} (layer {name})"
        try:
            nb, nt = int(tok[2]), int(tok[3])
            if nb < 0 or nt < 0:
                raise ValueError
        except ValueError:
            raise EdgeposeError(f"{where}: bottom/top counts {tok[2]!r} {tok[3]!r} are not counts") from None
        if len(tok) < 4 + nb + nt:
            raise EdgeposeError(f"{where}: declares {nb} inputs and {nt} outputs but lists only "
                                f"{len(tok) - 4} names")
        bottoms = tok[4:4 + nb]
        tops = tok[4 + nb:4 + nb + nt]
        for b in bottoms + tops:
            if "=" in b:
                raise EdgeposeError(f"{where}: blob name {b!r} looks like a parameter; "
                                    f"bottom/top counts do not match the names listed")
        params = ParamDict([_parse_param_token(t, where) for t in tok[4 + nb + nt:]])
        seen_tops.update(tops)
        layers.append(Layer(ltype, name, bottoms, tops, params))
    if len(layers) != layer_count:
        raise EdgeposeError(f"{origin}: header says {layer_count} layers but the file has {len(layers)}")
    if len(seen_tops) != blob_count:
        raise EdgeposeError(f"{origin}: header says {blob_count} blobs but the layers produce {len(seen_tops)}")
    for layer in layers:
        for b in layer.bottoms:
            if b not in seen_tops:
                raise EdgeposeError(f"{origin}: layer {layer.name} reads blob {b!r} that no layer produces")
    return NcnnModel(layers, blob_count)


def attach_weights(model: NcnnModel, data: bytes, origin: str = "<bin>") -> None:
    buf = memoryview(data)
    pos = 0
    for layer in model.layers:
        where = f"{origin}: layer {layer.name} ({layer.type})"
        blobs = []
        for name, count, mode in blob_specs(layer.type, layer.params, where):
            blob, pos = _read_blob(buf, pos, name, count, mode, where)
            blobs.append(blob)
        layer.blobs = blobs
    if pos != len(buf):
        raise EdgeposeError(f"{origin}: {len(buf) - pos} bytes left over after the last layer "
                            f"(the .bin does not match the .param: weight sizes differ)")


def read_model(param_path: str, bin_path: Optional[str] = None) -> NcnnModel:
    """Read a `.param` (and its `.bin`, if given) into an NcnnModel."""
    try:
        with open(param_path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise EdgeposeError(f"{param_path}: cannot read ncnn param file ({e.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise EdgeposeError(f"{param_path}: not a text ncnn param file (binary .param.bin is not supported)") from None
    model = parse_param(text, param_path)
    if bin_path is not None:
        try:
            with open(bin_path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise EdgeposeError(f"{bin_path}: cannot read ncnn bin file ({e.strerror})") from None
        attach_weights(model, data, bin_path)
    return model


def write_model(model: NcnnModel, param_path: str, bin_path: str) -> None:
    """Write both files atomically (temp name, then rename), for scratch folders edgepose alone
    uses (calibration, sensitivity). A user's output goes through edgepose.files.Outputs."""
    from .files import replace_file
    replace_file(bin_path, model.bin_bytes())
    replace_file(param_path, model.param_text().encode("utf-8"))


def input_mat(array: np.ndarray):
    """An ncnn.Mat holding its own copy of a float32 CHW array. `ncnn.Mat(ndarray)` wraps the
    array's memory with no reference count, and ncnn's light mode reads that count before an
    in-place layer (net.cpp, do_forward_layer): a Scale, ReLU or other in-place layer reading
    the network input directly would dereference NULL. The copy has a count."""
    import ncnn

    arr = np.ascontiguousarray(array, dtype=np.float32)
    return ncnn.Mat(arr).clone()

