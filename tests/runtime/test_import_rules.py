"""The layering of `edgepose`, read from the source's import statements (not from a run).

- core (`edgepose/`): none of the three layers (imports under `if TYPE_CHECKING:` never run).
- `edgepose.runtime` (`edge_runtime/`): only the core; `demo` alone reaches the host layers, lazily.
- `edgepose.convert` and `edgepose.quantization`: the core and the runtime, not each other.
- core and runtime never import torch, onnx or pnnx, and load at module level only what a board
  installs (numpy, OpenCV, ncnn, tqdm) besides the standard library.
"""
from __future__ import annotations

import ast
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List

from helpers import REPO

# source folder -> package it installs as (pyproject's package-dir)
LAYERS = {"edgepose": "edgepose", "edge_runtime": "edgepose.runtime", "convert": "edgepose.convert",
          "quantization": "edgepose.quantization"}
HOST_LAYERS = ("edgepose.convert", "edgepose.quantization")
BOARD_THIRD_PARTY = {"numpy", "cv2", "ncnn", "tqdm"}
NEVER_ON_BOARD = {"torch", "onnx", "pnnx", "onnxscript"}
LAZY_HOST_ALLOWED = {"edgepose.runtime.demo"}


@dataclass
class Import:
    module: str      # the importing module
    target: str      # absolute name imported
    lazy: bool       # inside a function (runs only when called)
    line: int


def layer_of(module: str) -> str:
    for pkg in ("edgepose.runtime", "edgepose.convert", "edgepose.quantization"):
        if module == pkg or module.startswith(pkg + "."):
            return pkg
    return "edgepose"


def _module_name(root: Path, path: Path) -> str:
    rel = path.relative_to(root)
    folder, rest = rel.parts[0], list(rel.with_suffix("").parts[1:])
    if rest and rest[-1] == "__init__":
        rest = rest[:-1]
    return ".".join([LAYERS[folder], *rest])


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or \
        (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def imports_of(root: Path) -> List[Import]:
    found = []
    for folder in LAYERS:
        for path in sorted((root / folder).rglob("*.py")):
            module = _module_name(root, path)
            package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]

            def visit(node, lazy):
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.If) and _is_type_checking(child):
                        continue
                    inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                    if isinstance(child, ast.Import):
                        found.extend(Import(module, a.name, lazy, child.lineno) for a in child.names)
                    elif isinstance(child, ast.ImportFrom):
                        if child.level:
                            base = package.split(".")
                            base = base[: len(base) - (child.level - 1)]
                            target = ".".join(base + ([child.module] if child.module else []))
                        else:
                            target = child.module or ""
                        found.append(Import(module, target, lazy, child.lineno))
                    visit(child, inner)

            visit(ast.parse(path.read_text(), str(path)), False)
    return found


def violations(root: Path) -> List[str]:
    stdlib = set(sys.stdlib_module_names)
    bad = []
    for imp in imports_of(root):
        src, top = layer_of(imp.module), imp.target.split(".")[0]
        where = f"{imp.module}:{imp.line} imports {imp.target}"
        if top == "edgepose":
            dst = layer_of(imp.target)
            if imp.target == "edgepose":
                dst = "edgepose"
            if src == "edgepose" and dst != "edgepose":
                bad.append(f"{where}: the core imports no layer")
            elif src == "edgepose.runtime" and dst in HOST_LAYERS and not (
                    imp.lazy and imp.module in LAZY_HOST_ALLOWED):
                bad.append(f"{where}: the runtime imports only the core")
            elif src in HOST_LAYERS and dst in HOST_LAYERS and dst != src:
                bad.append(f"{where}: convert and quantization do not import each other")
        elif src in ("edgepose", "edgepose.runtime"):
            if top in NEVER_ON_BOARD:
                bad.append(f"{where}: the board never imports the host toolchain")
            elif not imp.lazy and top not in stdlib and top not in BOARD_THIRD_PARTY:
                bad.append(f"{where}: only numpy/cv2/ncnn/tqdm at module level on the board")
    return bad


def test_the_source_follows_the_import_rules():
    assert imports_of(REPO)                                # the reader really found imports
    assert violations(REPO) == []


def _copy_tree(tmp_path: Path) -> Path:
    for folder in LAYERS:
        shutil.copytree(REPO / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + "\n" + text + "\n")


def test_a_runtime_module_importing_a_host_layer_is_caught(tmp_path):
    root = _copy_tree(tmp_path)
    _append(root / "edge_runtime" / "pose.py", "from edgepose.convert import api")
    _append(root / "edge_runtime" / "draw.py", "def f():\n    from ..quantization import compare")
    _append(root / "edge_runtime" / "sources.py", "import quantization.ncnn_io")
    found = violations(root)
    assert any("edgepose.runtime.pose:" in v and "edgepose.convert" in v for v in found)
    assert any("edgepose.runtime.draw:" in v and "edgepose.quantization" in v for v in found)
    assert any("edgepose.runtime.sources:" in v and "quantization.ncnn_io" in v for v in found), found


def test_the_core_importing_a_layer_and_torch_on_the_board_are_caught(tmp_path):
    root = _copy_tree(tmp_path)
    _append(root / "edgepose" / "files.py", "from .runtime import pose")
    _append(root / "edge_runtime" / "simcc.py", "def g():\n    import torch")
    _append(root / "convert" / "zoo.py", "from edgepose.quantization import compare")
    found = violations(root)
    assert any(v.startswith("edgepose.files:") and "the core imports no layer" in v for v in found)
    assert any(v.startswith("edgepose.runtime.simcc:") and "torch" in v for v in found)
    assert any(v.startswith("edgepose.convert.zoo:") and "each other" in v for v in found), found
