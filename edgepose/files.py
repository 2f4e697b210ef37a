"""File helpers every layer shares: hashing, the cache folder, and writes that lose nothing.

A write goes to a temporary file beside its target and is renamed over it only when complete, so a
crash or Ctrl-C leaves either the old file or the new one. A file edgepose did not write is never
replaced: each folder edgepose writes into holds a manifest (`.edgepose-manifest.json`) with the
sha256 of every file it wrote there; an existing target is replaced only when the manifest lists it
with its current content (a file the user edited since is theirs again).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import Callable, Dict, Optional, Union

from .errors import BadArgumentError, EdgeposeError

MANIFEST = ".edgepose-manifest.json"
CHUNK = 1 << 20


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_dir(override: Optional[str] = None) -> str:
    """Where downloads and cached conversions live: `override`, $EDGEPOSE_CACHE or ~/.cache/edgepose."""
    return os.path.abspath(os.path.expanduser(
        override or os.environ.get("EDGEPOSE_CACHE") or os.path.join("~", ".cache", "edgepose")))


def ensure_writable_folder(folder: str, what: str = "output folder") -> str:
    """Create `folder` if needed and prove it writable, before any long work starts."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise BadArgumentError(f"{folder}: {what} exists and is not a folder")
    try:
        os.makedirs(folder, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".edgepose-write-test-", dir=folder)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise BadArgumentError(f"{folder}: cannot write to the {what} ({e.strerror or e})") from None
    return folder


def _manifest_path(folder: str) -> str:
    return os.path.join(folder, MANIFEST)


def read_manifest(folder: str) -> Dict[str, str]:
    """{file name: sha256} of what edgepose wrote in `folder` ({} when there is no manifest)."""
    try:
        with open(_manifest_path(folder)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return {k: v for k, v in files.items() if isinstance(k, str) and isinstance(v, str)} \
        if isinstance(files, dict) else {}


def _write_manifest(folder: str, files: Dict[str, str]) -> None:
    path = _manifest_path(folder)
    fd, tmp = tempfile.mkstemp(prefix=MANIFEST + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"written_by": "edgepose", "files": dict(sorted(files.items()))}, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise


def written_by_edgepose(path: str) -> bool:
    """True when `path` is a file edgepose wrote and nobody changed since."""
    if not os.path.isfile(path):
        return False
    recorded = read_manifest(os.path.dirname(os.path.abspath(path))).get(os.path.basename(path))
    return recorded is not None and recorded == sha256_of(path)


def may_replace(path: str) -> bool:
    return not os.path.lexists(path) or written_by_edgepose(path)


def check_replaceable(path: str) -> None:
    if not may_replace(path):
        raise EdgeposeError(f"{path}: exists and was not written by edgepose; not replacing it "
                            f"(move it away or choose another output)")


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def record_written(path: str) -> None:
    """Add a file that was just put in place to its folder's manifest."""
    folder = os.path.dirname(os.path.abspath(path))
    files = read_manifest(folder)
    files[os.path.basename(path)] = sha256_of(path)
    _write_manifest(folder, files)


def forget_written(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    files = read_manifest(folder)
    if files.pop(os.path.basename(path), None) is not None:
        _write_manifest(folder, files)


def atomic_write(path: str, content: Union[bytes, str, Callable[[str], None]]) -> str:
    """Write `content` (bytes, text, or a function that writes a given temporary path) to `path`.

    Refuses to replace a file edgepose did not write; records the new file in the folder's manifest.
    """
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    check_replaceable(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        if callable(content):
            os.close(fd)
            content(tmp)
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(content.encode() if isinstance(content, str) else content)
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise
    record_written(path)
    return path


def atomic_write_json(path: str, data, indent: Optional[int] = 1) -> str:
    return atomic_write(path, json.dumps(data, indent=indent) + "\n")


def put_in_place(tmp: str, path: str) -> str:
    """Rename a finished temporary file (beside `path`) over `path`, with the same ownership rule."""
    path = os.path.abspath(path)
    check_replaceable(path)
    os.replace(tmp, path)
    record_written(path)
    return path
