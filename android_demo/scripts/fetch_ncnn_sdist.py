"""Download ncnn's source distribution of one version and check its sha256.

`pip download --no-binary :all: ncnn==X` cannot be used: pip builds the sdist's
metadata, and ncnn's setup.py reports a version that differs from the file name,
so pip rejects it. Here we only read the package index pip itself is configured
with (PIP_INDEX_URL / pip config / pip's default) and fetch the file it lists.
No index address is written in this repository.

usage: python fetch_ncnn_sdist.py VERSION OUT_DIR   -> prints the .tar.gz path
"""
import hashlib
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request


def configured_index_urls():
    urls = []
    env = os.environ.get("PIP_INDEX_URL")
    if env:
        urls.append(env)
    else:
        out = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            m = re.match(r"^(global|download|install)\.index-url='(.*)'$", line.strip())
            if m:
                urls.append(m.group(2))
        if not urls:
            from pip._internal.models.index import PyPI  # pip's built-in default index
            urls.append(PyPI.simple_url)
    return urls


def find_sdist(version):
    wanted = f"ncnn-{version}.tar.gz"
    for index in configured_index_urls():
        page_url = index.rstrip("/") + "/ncnn/"
        try:
            with urllib.request.urlopen(page_url, timeout=120) as r:
                page = r.read().decode("utf-8", "replace")
        except OSError as e:
            print(f"fetch_ncnn_sdist: {page_url}: {e}", file=sys.stderr)
            continue
        for href in re.findall(r'href="([^"]+)"', page):
            href = href.replace("&amp;", "&")
            url, _, frag = href.partition("#")
            if url.rsplit("/", 1)[-1] == wanted:
                sha = frag[len("sha256="):] if frag.startswith("sha256=") else None
                return urllib.parse.urljoin(page_url, url), sha
    raise SystemExit(f"fetch_ncnn_sdist: {wanted} not found in the configured package index")


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    version, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    dest = os.path.join(out_dir, f"ncnn-{version}.tar.gz")
    if not os.path.isfile(dest):
        url, sha = find_sdist(version)
        tmp = dest + ".part"
        h = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=600) as r, open(tmp, "wb") as f:
            for chunk in iter(lambda: r.read(1 << 20), b""):
                h.update(chunk)
                f.write(chunk)
        if sha and h.hexdigest() != sha:
            os.remove(tmp)
            raise SystemExit(f"fetch_ncnn_sdist: sha256 mismatch for {url}")
        os.replace(tmp, dest)
    print(dest)


if __name__ == "__main__":
    main()
