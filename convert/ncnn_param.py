"""Read and write the text `.ncnn.param` format (enough to inspect and patch layers)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

from edge_runtime.errors import EdgeposeError

MAGIC = "7767517"


@dataclass
class ParamLayer:
    type: str
    name: str
    bottoms: List[str]
    tops: List[str]
    params: List[str] = field(default_factory=list)   # "key=value" tokens, order kept

    def get(self, key: int, default=None):
        prefix = f"{key}="
        for tok in self.params:
            if tok.startswith(prefix):
                return tok[len(prefix):]
        return default

    def set(self, key: int, value) -> None:
        prefix = f"{key}="
        self.params = [t for t in self.params if not t.startswith(prefix)] + [f"{key}={value}"]

    def line(self) -> str:
        head = f"{self.type:<24} {self.name:<24} {len(self.bottoms)} {len(self.tops)}"
        return " ".join([head] + self.bottoms + self.tops + self.params)


@dataclass
class ParamFile:
    layers: List[ParamLayer]
    blob_count: int

    @classmethod
    def read(cls, path: str) -> "ParamFile":
        with open(path) as f:
            lines = [ln.strip() for ln in f if ln.strip()]
        if not lines or lines[0] != MAGIC:
            raise EdgeposeError(f"{path}: not an ncnn text param file (magic {lines[0] if lines else None!r})")
        n_layers, n_blobs = (int(v) for v in lines[1].split())
        layers = []
        for ln in lines[2:]:
            tok = ln.split()
            nb, nt = int(tok[2]), int(tok[3])
            layers.append(ParamLayer(tok[0], tok[1], tok[4:4 + nb], tok[4 + nb:4 + nb + nt], tok[4 + nb + nt:]))
        if len(layers) != n_layers:
            raise EdgeposeError(f"{path}: header says {n_layers} layers, file has {len(layers)}")
        return cls(layers, n_blobs)

    def write(self, path: str) -> None:
        with open(path, "w") as f:
            f.write(f"{MAGIC}\n{len(self.layers)} {self.blob_count}\n")
            for layer in self.layers:
                f.write(layer.line() + "\n")

    def consumers(self, blob: str) -> List[ParamLayer]:
        return [l for l in self.layers if blob in l.bottoms]

    def by_name(self, name: str) -> ParamLayer:
        for l in self.layers:
            if l.name == name:
                return l
        raise KeyError(name)
