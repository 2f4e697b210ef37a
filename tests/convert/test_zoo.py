"""Model zoo manifest and fetch: verified, atomic downloads; fast clear failure offline.
Network use is limited to a server on 127.0.0.1 started here."""
import hashlib
import http.server
import os
import threading
import time

import pytest

from edgepose.convert import zoo
from edgepose.errors import EdgeposeError
from helpers import closed_port

PAYLOAD = os.urandom(200_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        name = self.path.rsplit("/", 1)[-1]
        if name.startswith("cut-"):
            # announces the whole size, sends half, hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if name.startswith("missing"):
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def leftovers(folder):
    return [f for f in os.listdir(folder) if f.endswith(".part")]


def test_good_download_is_verified_and_cached(server, tmp_path):
    url = f"{server}/m/model_x-{SHA[:8]}_20230101.pth"
    path = zoo.fetch(url, cache_dir=str(tmp_path))
    assert path == str(tmp_path / f"model_x-{SHA[:8]}_20230101.pth")
    assert open(path, "rb").read() == PAYLOAD
    assert not leftovers(tmp_path)
    # cached: a second fetch needs no server (the URL's port is wrong now) and gives the same file
    again = zoo.fetch(url.replace(server, f"http://127.0.0.1:{closed_port()}"), cache_dir=str(tmp_path))
    assert again == path


def test_bad_checksum_leaves_nothing(server, tmp_path):
    wrong = "0123abcd" if not SHA.startswith("0123abcd") else "fedc9876"
    with pytest.raises(EdgeposeError, match=f"failed verification.*prefix {wrong}"):
        zoo.fetch(f"{server}/model-{wrong}.pth", cache_dir=str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_truncated_download_is_not_kept(server, tmp_path):
    with pytest.raises(EdgeposeError, match="stopped after|connection lost"):
        zoo.fetch(f"{server}/cut-model.pth", cache_dir=str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_http_404_names_url_and_target(server, tmp_path):
    with pytest.raises(EdgeposeError, match=r"HTTP 404.*place it at .*missing-model\.pth"):
        zoo.fetch(f"{server}/missing-model.pth", cache_dir=str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_offline_fails_fast_and_says_where_to_put_the_file(tmp_path, monkeypatch):
    entry = zoo.load_manifest()["rtmpose-t"]
    offline_url = f"http://127.0.0.1:{closed_port()}/" + entry["file"]
    monkeypatch.setattr(zoo, "load_manifest", lambda path=zoo.MANIFEST: {"rtmpose-t": dict(entry, url=offline_url)})
    monkeypatch.setenv("EDGEPOSE_CACHE", str(tmp_path / "cache"))
    start = time.monotonic()
    with pytest.raises(EdgeposeError) as e:
        zoo.fetch("rtmpose-t")
    assert time.monotonic() - start < 5
    target = tmp_path / "cache" / entry["file"]
    assert f"place it at {target}" in str(e.value) and "Offline?" in str(e.value)
    assert not leftovers(tmp_path / "cache")


def test_wrong_cached_file_is_replaced_only_by_a_verified_one(server, tmp_path):
    name = f"model-{SHA[:8]}.pth"
    (tmp_path / name).write_bytes(b"not the model")
    with pytest.raises(EdgeposeError, match="cached file is not the published one"):
        zoo.fetch(f"http://127.0.0.1:{closed_port()}/{name}", cache_dir=str(tmp_path))
    assert (tmp_path / name).read_bytes() == b"not the model"
    path = zoo.fetch(f"{server}/{name}", cache_dir=str(tmp_path))
    assert open(path, "rb").read() == PAYLOAD


def test_local_file_and_unknown_name(tmp_path):
    local = tmp_path / "mine.pth"
    local.write_bytes(b"x")
    assert zoo.fetch(str(local)) == str(local)
    with pytest.raises(EdgeposeError, match="unknown model 'rtmpose-q'.*rtmpose-t"):
        zoo.fetch("rtmpose-q", cache_dir=str(tmp_path))


def test_hash_prefix_from_name():
    assert zoo.hash_prefix_from_name("rtmpose-m_simcc-body7_pt-body7_420e-256x192-e48f03d0_20230504.pth") == "e48f03d0"
    assert zoo.hash_prefix_from_name("rtmdet_nano_8xb32-100e_coco-obj365-person-05d8511e.pth") == "05d8511e"
    assert zoo.hash_prefix_from_name("rtmw-dw-l-m_simcc-cocktail14_270e-256x192-20231122.pth") is None


def test_manifest_agrees_with_specs_and_keypoint_sets():
    import torch  # noqa: F401
    from edgepose.convert.models.configs import get_spec
    from edgepose.keypoint_sets import get_keypoint_set
    manifest = zoo.load_manifest()
    wanted = {"rtmpose-t", "rtmpose-s", "rtmpose-m", "rtmpose-l", "rtmpose-m-wholebody", "rtmpose-l-wholebody",
              "dwpose-t", "dwpose-s", "dwpose-m", "dwpose-l", "rtmw-m", "rtmw-l", "rtmw-x", "rtmdet-nano-person"}
    assert wanted <= set(manifest)
    for name, e in manifest.items():
        spec = get_spec(e["config"])
        assert e["url"].startswith("https://") and e["url"].endswith("/" + e["file"]), name
        assert e["sha256_prefix"] == zoo.hash_prefix_from_name(e["file"]) or name == "rtmpose-m-hand", name
        assert e["sha256"] is None or len(e["sha256"]) == 64, name
        assert tuple(e["input_size"]) == spec.input_size and e["task"] == spec.task, name
        assert tuple(e["mean"]) == spec.mean and tuple(e["std"]) == spec.std, name
        assert e["channel_order"] == spec.channel_order, name
        if e["task"] == "pose":
            kp = get_keypoint_set(e["keypoint_set"])
            assert kp["num_keypoints"] == e["num_keypoints"] == spec.num_keypoints, name


def test_cli_list_and_fetch_local(tmp_path, capsys):
    from edgepose.cli import main
    assert main(["fetch", "--list", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "dwpose-l" in out and "rtmdet-nano-person" in out and "256x192" in out
    local = tmp_path / "a.pth"
    local.write_bytes(b"x")
    assert main(["fetch", str(local)]) == 0
    assert capsys.readouterr().out.strip() == str(local)
    assert main(["fetch", "rtmpose-q"]) == 2
    assert "unknown model" in capsys.readouterr().err
