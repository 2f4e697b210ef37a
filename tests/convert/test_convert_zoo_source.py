"""`edgepose convert ZOO_NAME`: fetched (verified) into the cache first, then converted.
Network use is limited to a server on 127.0.0.1 started here; the manifest entry is
pointed at it (the zoo's own tests do the same)."""
from __future__ import annotations

import functools
import hashlib
import http.server
import threading
import time

import pytest

from edgepose.convert import zoo
from edgepose.cli import main
from edgepose.model_meta import ModelMeta
from helpers import closed_port
from edgepose.files import MANIFEST

SERVED = "reference/official/rtmpose-t_wholebody_256x192.pth"   # the dwpose-t architecture


class QuietFileHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture()
def served_folder(shared):
    handler = functools.partial(QuietFileHandler, directory=str(shared))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def point_zoo_at(monkeypatch, tmp_path, name, **changes):
    entry = dict(zoo.load_manifest()[name], **changes)
    monkeypatch.setattr(zoo, "load_manifest", lambda path=zoo.MANIFEST: {name: entry})
    monkeypatch.setenv("EDGEPOSE_CACHE", str(tmp_path / "cache"))
    return entry


def test_convert_zoo_name_offline_fails_fast_with_where_to_put_the_file(tmp_path, monkeypatch, capsys):
    entry = point_zoo_at(monkeypatch, tmp_path, "dwpose-t",
                         url=f"http://127.0.0.1:{closed_port()}/x.pth")
    start = time.monotonic()
    rc = main(["convert", "dwpose-t", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and time.monotonic() - start < 10
    assert len(err.strip().splitlines()) == 1
    assert f"place it at {tmp_path / 'cache' / entry['file']}" in err and "Offline?" in err
    assert not (tmp_path / "out").exists()


def test_convert_unknown_name_says_it_is_neither_file_nor_zoo_name(tmp_path, capsys):
    rc = main(["convert", "dwpose-q", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "dwpose-q" in err and "not a model zoo name" in err and "dwpose-t" not in err
    rc = main(["convert", "dwpose", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "dwpose-t" in err          # near zoo names are suggested


def test_convert_zoo_name_fetches_then_converts(tmp_path, monkeypatch, shared, served_folder, capsys):
    digest = hashlib.sha256((shared / SERVED).read_bytes()).hexdigest()
    entry = point_zoo_at(monkeypatch, tmp_path, "dwpose-t", url=f"{served_folder}/{SERVED}",
                         sha256_prefix=digest[:8], sha256=digest)
    rc = main(["convert", "dwpose-t", "-o", str(tmp_path / "out"), "--no-check"])
    assert rc == 0, capsys.readouterr().err
    cached = tmp_path / "cache" / entry["file"]
    assert cached.read_bytes() == (shared / SERVED).read_bytes()
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.name != MANIFEST) == \
        ["dwpose-t.json", "dwpose-t.ncnn.bin", "dwpose-t.ncnn.param"]
    meta = ModelMeta.load(str(tmp_path / "out" / "dwpose-t.json"))
    assert meta.source["file"] == entry["file"] and meta.source["sha256"] == digest
    # the zoo entry's config was used, not an inference from the checkpoint
    assert meta.source["config"] == "rtmpose-t_8xb64-270e_coco-ubody-wholebody-256x192"
    assert not any("inferred" in n for n in meta.source["notes"])
    assert (meta.input_width, meta.input_height) == (192, 256) and len(meta.keypoints["names"]) == 133
