"""Model zoo: the official checkpoints users want (convert/zoo.json) and a safe download cache.

Stdlib only (no torch), so `edgepose fetch` works on any machine.

A cached file is only ever created by renaming a completely downloaded, verified
`.part` file into place, so a file under its final name is whole. Checksums: OpenMMLab
file names end in `-<8 hex>.pth`, the first 8 hex digits of the file's sha256; that
prefix (and a full sha256 where the manifest has one) is verified.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, Optional

from edgepose.errors import EdgeposeError, OfflineError
from edgepose.files import cache_dir, move_into_cache, sha256_of

MANIFEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zoo.json")
DEFAULT_TIMEOUT = 10.0  # seconds per connect/read: offline fails fast, not after minutes
CHUNK = 1 << 20


def load_manifest(path: str = MANIFEST) -> Dict[str, Dict[str, Any]]:
    """name -> entry (url, file, sha256_prefix, sha256, config, input_size, keypoint_set, ...)."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise EdgeposeError(f"{path}: cannot read the model zoo manifest ({e})") from None
    return {m["name"]: m for m in data["models"]}


def hash_prefix_from_name(file_name: str) -> Optional[str]:
    """The publisher's sha256 prefix in an OpenMMLab file name, e.g. `...-cd5e845c_20230123.pth`.
    An 8-digit date (`-20231122.pth`) is not a hash."""
    m = re.search(r"-([0-9a-f]{8})(?:_\d{8})?\.pth$", file_name)
    if not m or re.fullmatch(r"(19|20)\d{6}", m.group(1)):
        return None
    return m.group(1)


def _checksum_problem(digest: str, prefix: Optional[str], full: Optional[str]) -> Optional[str]:
    if full and digest != full.lower():
        return f"sha256 {digest} differs from the published {full}"
    if prefix and not digest.startswith(prefix.lower()):
        return f"sha256 {digest[:16]}... does not start with the published prefix {prefix}"
    return None


def resolve(name_or_url: str) -> Dict[str, Any]:
    """Manifest entry for a zoo name, or a synthetic entry for a URL."""
    manifest = load_manifest()
    if name_or_url in manifest:
        return dict(manifest[name_or_url])
    if re.match(r"^https?://", name_or_url):
        file_name = os.path.basename(urllib.parse.urlparse(name_or_url).path)
        if not file_name:
            raise EdgeposeError(f"{name_or_url}: URL has no file name")
        return {"name": file_name, "url": name_or_url, "file": file_name,
                "sha256_prefix": hash_prefix_from_name(file_name), "sha256": None}
    raise EdgeposeError(f"unknown model {name_or_url!r}: not a file, not a URL, not in the zoo "
                        f"(edgepose fetch --list shows: {', '.join(manifest)})")


def fetch(name_or_url: str, cache_dir: Optional[str] = None, timeout: Optional[float] = None,
          progress: Optional[Callable[[int, Optional[int]], None]] = None) -> str:
    """Path of a verified local copy of a zoo model (name), a URL, or a local file (returned as is)."""
    if os.path.isfile(name_or_url):
        return os.path.abspath(name_or_url)
    entry = resolve(name_or_url)
    folder = _cache_dir(cache_dir)
    target = os.path.join(folder, entry["file"])
    prefix, full = entry.get("sha256_prefix"), entry.get("sha256")
    stale = None
    if os.path.isfile(target):
        stale = _checksum_problem(sha256_of(target), prefix, full) if (prefix or full) else None
        if stale is None:
            return target
        # A wrong file under our name is replaced below by a verified download.
    if timeout is None:
        timeout = float(os.environ.get("EDGEPOSE_FETCH_TIMEOUT", DEFAULT_TIMEOUT))
    try:
        _download(entry["url"], target, prefix, full, timeout, progress)
    except EdgeposeError as e:
        if stale:
            raise EdgeposeError(f"{target}: cached file is not the published one ({stale}); {e}") from None
        raise
    return target


def _cache_dir(override: Optional[str]) -> str:
    folder = cache_dir(override)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise EdgeposeError(f"{folder}: cannot create the model cache ({e.strerror}); "
                            f"set EDGEPOSE_CACHE to a writable folder") from None
    return folder


def _offline_help(url: str, target: str, why: str) -> OfflineError:
    return OfflineError(f"cannot download {url} ({why}).",
                        f"Offline? Download that file elsewhere and place it at {target}, "
                        f"or pass the local .pth file instead of the model name")


def _download(url: str, target: str, prefix: Optional[str], full: Optional[str], timeout: float,
              progress: Optional[Callable[[int, Optional[int]], None]]) -> None:
    folder = os.path.dirname(target)
    fd, part = tempfile.mkstemp(prefix=os.path.basename(target) + ".", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                resp = urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "edgepose"}),
                                              timeout=timeout)
            except urllib.error.HTTPError as e:
                raise EdgeposeError(f"cannot download {url}: the server answered HTTP {e.code} ({e.reason}); "
                                    f"the file may have moved: get it by hand and place it at {target}") from None
            except (urllib.error.URLError, socket.timeout, OSError) as e:
                raise _offline_help(url, target, str(getattr(e, "reason", e))) from None
            with resp:
                length = resp.headers.get("Content-Length")
                expected = int(length) if length and length.isdigit() else None
                digest, done = hashlib.sha256(), 0
                try:
                    for chunk in iter(lambda: resp.read(CHUNK), b""):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, expected)
                except (socket.timeout, OSError, ValueError) as e:
                    raise _offline_help(url, target, f"connection lost after {done} bytes: {e}") from None
            out.flush()
            os.fsync(out.fileno())
        if expected is not None and done != expected:
            raise EdgeposeError(f"download of {url} stopped after {done} of {expected} bytes; "
                                f"nothing was saved: run the command again")
        if done == 0:
            raise EdgeposeError(f"download of {url} returned an empty file; nothing was saved")
        problem = _checksum_problem(digest.hexdigest(), prefix, full)
        if problem:
            raise EdgeposeError(f"download of {url} failed verification ({problem}); nothing was saved")
        move_into_cache(part, target)
    finally:
        if os.path.exists(part):
            os.remove(part)


def print_progress(done: int, total: Optional[int]) -> None:
    if total:
        sys.stderr.write(f"\r  {done / 1e6:7.1f} / {total / 1e6:.1f} MB")
    else:
        sys.stderr.write(f"\r  {done / 1e6:7.1f} MB")
    sys.stderr.flush()
