"""File helpers every layer shares: hashing, the cache folder, and writes that lose nothing.

A write goes to a temporary file beside its target and is renamed over it only when complete, so a
crash or Ctrl-C leaves either the old file or the new one. A file edgepose did not write is never
replaced: each folder edgepose writes into holds a manifest (`.edgepose-manifest`, JSON) with the
sha256 of every file it wrote there; an existing target is replaced only when the manifest lists it
with its current content (a file the user edited since is theirs again).

`Outputs` is what every command writes through: it proves the folder writable before any long
work, stages each file under a temporary name beside its target, puts them all in place on
`commit()` (the manifest updated once per folder) and on failure removes what it began (temporary
files, folders it created), so a failed command leaves nothing that looks like a result.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Union

from .errors import BadArgumentError

MANIFEST = ".edgepose-manifest"  # no .json: a `*.json` glob over a model folder finds only models
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
        raise BadArgumentError(f"{folder}: {what} is not writable ({e.strerror or e})") from None
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
    text = json.dumps({"written_by": "edgepose", "files": dict(sorted(files.items()))}, indent=1) + "\n"
    replace_file(_manifest_path(folder), text)


def _temp_beside(path: str, suffix: str = ".tmp") -> str:
    """A new empty temporary file in `path`'s folder (same file system: the rename is atomic)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix,
                               dir=os.path.dirname(os.path.abspath(path)))
    os.close(fd)
    return tmp


def _fill(tmp: str, content: Union[bytes, str, Callable[[str], None]]) -> None:
    if callable(content):
        content(tmp)
    else:
        with open(tmp, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)


def replace_file(path: str, content: Union[bytes, str, Callable[[str], None]]) -> str:
    """Atomic write with no ownership rule: for files edgepose alone keeps (manifests, scratch
    folders, the cache registry). Everything a user may see goes through atomic_write / Outputs."""
    path = os.path.abspath(path)
    tmp = _temp_beside(path)
    try:
        _fill(tmp, content)
        _rename(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise
    return path


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
        raise BadArgumentError(f"{path}: exists and was not written by edgepose; refusing to overwrite "
                               f"it (move it away or choose another output)")


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def record_written(*paths: str) -> None:
    """Add files that were just put in place (all in one folder) to that folder's manifest."""
    if not paths:
        return
    folder = os.path.dirname(os.path.abspath(paths[0]))
    files = read_manifest(folder)
    for path in paths:
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
    check_replaceable(path)
    replace_file(path, content)
    record_written(path)
    return path


def atomic_write_json(path: str, data, indent: Optional[int] = 1) -> str:
    return atomic_write(path, json.dumps(data, indent=indent) + "\n")


def put_in_place(tmp: str, path: str) -> str:
    """Rename a finished temporary file (beside `path`) over `path`, with the same ownership rule."""
    path = os.path.abspath(path)
    check_replaceable(path)
    _rename(tmp, path)
    record_written(path)
    return path


def _rename(tmp: str, path: str) -> None:
    os.replace(tmp, path)      # the one rename-into-place of the package


def move_into_cache(tmp: str, path: str) -> str:
    """Rename a finished, verified temporary file over `path` in edgepose's own cache (no
    ownership rule: a wrong file under a cache name is replaced by the verified one)."""
    _rename(tmp, path)
    return path


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


class Outputs:
    """The files one command writes into `folder` (and its subfolders), as one unit.

    Construction proves the folder writable (creating it) before any long work. `claim(name)`
    checks a target up front (not a foreign file, not one of `inputs`); `stage(name)` gives a
    temporary path to fill; `commit()` renames every staged file into place and records it in the
    manifest; `rollback()` (or leaving a `with` block by an exception) deletes the staged files
    and every folder this command created that is still empty. Nothing outside the staged names
    is ever removed, so an input can never be lost.

    own_folder: the folder as a whole is the output (quantize's `<name>-int8/`): a folder already
    holding a file edgepose did not write is refused, not merged into.
    """

    def __init__(self, folder: str, what: str = "output folder", inputs: Iterable[str] = (),
                 own_folder: bool = False):
        self.folder = os.path.abspath(os.fspath(folder))
        self.what = what
        self.inputs = [os.path.abspath(os.fspath(p)) for p in inputs]
        self._created: List[str] = []
        self._staged: Dict[str, str] = {}      # final path -> temporary path
        self.written: List[str] = []
        self._make_folder(self.folder)
        if own_folder:
            self._check_own_folder()

    # -- folders ------------------------------------------------------------------------
    def _make_folder(self, folder: str) -> None:
        missing = []
        f = folder
        while not os.path.exists(f) and f != os.path.dirname(f):
            missing.append(f)
            f = os.path.dirname(f)
        if missing and not os.path.isdir(f):
            raise BadArgumentError(f"{f}: exists and is not a folder (the {self.what} {folder} would be in it)")
        ensure_writable_folder(folder, self.what)
        self._created += [m for m in reversed(missing) if m not in self._created]

    def _check_own_folder(self) -> None:
        ours = read_manifest(self.folder)
        foreign = sorted(n for n in os.listdir(self.folder)
                         if n != MANIFEST and not n.startswith(".edgepose-write-test-")
                         and not (n in ours and written_by_edgepose(os.path.join(self.folder, n))))
        if foreign:
            raise BadArgumentError(f"{self.folder}: already holds {', '.join(foreign[:3])}"
                                   f"{' ...' if len(foreign) > 3 else ''}, not written by edgepose; "
                                   f"not replacing it (move it away or choose another output)")

    # -- targets ------------------------------------------------------------------------
    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def claim(self, *names: str) -> None:
        """Check targets before the work: replaceable, and none of them an input."""
        for name in names:
            path = self.path(name)
            for given in self.inputs:
                if path == given or _same_file(path, given):
                    raise BadArgumentError(f"{path}: output would overwrite the input {given}; "
                                           f"choose another output")
            check_replaceable(path)

    def stage(self, name: str, suffix: str = ".tmp") -> str:
        """A temporary file beside `name`'s target (suffix: an extension writers need, e.g. .png)."""
        path = self.path(name)
        self.claim(name)
        if path in self._staged:
            return self._staged[path]
        self._make_folder(os.path.dirname(path))
        tmp = _temp_beside(path, suffix)
        self._staged[path] = tmp
        return tmp

    def write(self, name: str, content: Union[bytes, str, Callable[[str], None]]) -> str:
        tmp = self.stage(name)
        _fill(tmp, content)
        return tmp

    def write_json(self, name: str, data, indent: Optional[int] = 1) -> str:
        text = json.dumps(data, indent=indent, separators=None if indent else (",", ":"))
        return self.write(name, text + "\n")

    def discard(self, name: str) -> None:
        tmp = self._staged.pop(self.path(name), None)
        if tmp:
            _remove_quietly(tmp)

    # -- ending -------------------------------------------------------------------------
    def commit(self, order: Sequence[str] = ()) -> List[str]:
        """Put every staged file in place (`order` first, e.g. metadata last is `order` = the
        others); one manifest update per folder. Returns the paths written."""
        first = [self.path(n) for n in order if self.path(n) in self._staged]
        paths = first + [p for p in self._staged if p not in first]
        by_folder: Dict[str, List[str]] = {}
        for path in paths:
            check_replaceable(path)
        for path in paths:
            _rename(self._staged.pop(path), path)
            by_folder.setdefault(os.path.dirname(path), []).append(path)
            self.written.append(path)
        for group in by_folder.values():
            record_written(*group)
        return list(self.written)

    def rollback(self) -> None:
        for tmp in self._staged.values():
            _remove_quietly(tmp)
        self._staged.clear()
        for folder in reversed(self._created):
            try:
                os.rmdir(folder)          # only when empty: never a file
            except OSError:
                pass
        self._created = []

    def __enter__(self) -> "Outputs":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.rollback()
