"""`edgepose fetch NAME|URL` and `edgepose fetch --list`."""
from __future__ import annotations

import os
import sys


def add_arguments(parser) -> None:
    parser.add_argument("model", nargs="?", help="zoo name (see --list), an https URL of a .pth, or a local file")
    parser.add_argument("--list", action="store_true", help="list the models of the zoo and whether they are cached")
    parser.add_argument("--cache-dir", default=None,
                        help="download folder (default: $EDGEPOSE_CACHE or ~/.cache/edgepose)")
    parser.add_argument("--timeout", type=float, default=None, help="network timeout in seconds (default 10)")


def _list(cache: str) -> int:
    from .zoo import load_manifest
    rows = []
    for name, e in load_manifest().items():
        w, h = e["input_size"]
        what = f"{e['num_keypoints']} kp ({e['keypoint_set']})" if e["task"] == "pose" else f"{e['num_classes']} cls"
        cached = "cached" if os.path.isfile(os.path.join(cache, e["file"])) else ""
        rows.append((name, e["task"], f"{h}x{w}", what, e["config"], cached))
    rows.insert(0, ("name", "task", "input hxw", "outputs", "config", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(wd) for c, wd in zip(r, widths)).rstrip())
    print(f"cache: {cache}")
    return 0


def main(args) -> int:
    from edgepose.errors import EdgeposeError

    from .zoo import cache_dir, fetch, print_progress
    cache = cache_dir(args.cache_dir)
    if args.list:
        return _list(cache)
    if not args.model:
        raise EdgeposeError("name a model to fetch (edgepose fetch --list shows them)")
    progress = print_progress if sys.stderr.isatty() else None
    path = fetch(args.model, cache_dir=args.cache_dir, timeout=args.timeout, progress=progress)
    if progress:
        sys.stderr.write("\n")
    print(path)
    return 0
