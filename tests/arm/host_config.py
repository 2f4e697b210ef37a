"""What the arm64 root borrows from this machine's own configuration, read at run time.

The repository never names a package mirror or index: the Debian mirror comes from this
machine's apt sources and the Python index settings from its pip configuration, so the
root reaches exactly the registries the host is set up for.

CLI (used by make_rootfs.sh):
  python3 host_config.py mirror            -> "URI SUITE" of the main Debian archive entry
  python3 host_config.py pip-conf CA_DEST  -> pip.conf text for the root on stdout;
                                              copies the host's CA bundle (if any) to CA_DEST
  python3 host_config.py runtime-deps PYPROJECT -> the [project] dependencies, one a line
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional

APT_SOURCES_LIST = "/etc/apt/sources.list"
APT_SOURCES_DIR = "/etc/apt/sources.list.d"
# pip keys that decide where packages come from and how the connection is trusted.
PIP_KEYS = ("index-url", "extra-index-url", "trusted-host", "cert", "timeout", "retries")
ROOT_CA_PATH = "/etc/edgepose-pip-ca.crt"


@dataclass
class AptSource:
    uri: str
    suites: List[str]
    components: List[str]


def _one_line_entries(text: str) -> Iterable[AptSource]:
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        words = line.split()
        if len(words) < 3 or words[0] != "deb":
            continue
        words = words[1:]
        if words[0].startswith("["):  # options like [arch=amd64 signed-by=...]
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if len(words) >= 2:
            yield AptSource(words[0], [words[1]], words[2:])


def _deb822_entries(text: str) -> Iterable[AptSource]:
    for stanza in text.split("\n\n"):
        fields: Dict[str, str] = {}
        key = None
        for raw in stanza.splitlines():
            if raw.startswith("#") or not raw.strip():
                continue
            if raw[0] in " \t" and key:
                fields[key] += " " + raw.strip()
                continue
            if ":" in raw:
                key, value = raw.split(":", 1)
                key = key.strip().lower()
                fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        for uri in fields.get("uris", "").split():
            yield AptSource(uri, fields.get("suites", "").split(), fields.get("components", "").split())


def apt_sources(sources_list: str = APT_SOURCES_LIST, sources_dir: str = APT_SOURCES_DIR) -> List[AptSource]:
    found: List[AptSource] = []
    paths = [sources_list] + sorted(glob.glob(os.path.join(sources_dir, "*.list")))
    for path in paths:
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                found.extend(_one_line_entries(f.read()))
    for path in sorted(glob.glob(os.path.join(sources_dir, "*.sources"))):
        with open(path, encoding="utf-8", errors="replace") as f:
            found.extend(_deb822_entries(f.read()))
    return found


def host_codename(os_release: str = "/etc/os-release") -> Optional[str]:
    try:
        with open(os_release, encoding="utf-8") as f:
            for line in f:
                if line.startswith("VERSION_CODENAME="):
                    return line.split("=", 1)[1].strip().strip('"') or None
    except OSError:
        return None
    return None


def debian_mirror(sources: List[AptSource], codename: Optional[str]) -> AptSource:
    """The main archive entry: suite equal to the release codename (not -updates/-security), with main."""
    for src in sources:
        for suite in src.suites:
            if (codename is None or suite == codename) and "-" not in suite and "main" in src.components:
                return AptSource(src.uri, [suite], ["main"])
    raise SystemExit("host_config: no 'deb <mirror> <codename> main' entry found in this machine's apt "
                     f"sources ({APT_SOURCES_LIST}, {APT_SOURCES_DIR}/*.list|*.sources); "
                     "debootstrap needs a Debian mirror")


def host_pip_settings() -> Dict[str, str]:
    """`pip config list` of this machine (all scopes, env included), keys without their section."""
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    settings: Dict[str, str] = {}
    for line in out.stdout.splitlines():
        if "=" not in line:
            continue
        name, value = line.split("=", 1)
        key = name.rsplit(".", 1)[-1]
        value = value.strip().strip("'\"")
        if key in PIP_KEYS and value:
            settings[key] = value
    return settings


def root_pip_conf(settings: Dict[str, str], ca_dest: Optional[str]) -> str:
    """pip.conf for the root: the host's index settings minus local paths the root cannot see."""
    lines = ["[global]", "disable-pip-version-check = 1"]
    for key in PIP_KEYS:
        value = settings.get(key)
        if not value:
            continue
        if key in ("index-url", "extra-index-url"):
            urls = [u for u in value.split() if not u.startswith("file:")]
            if not urls:
                continue
            value = " ".join(urls)
        if key == "cert":
            if not (ca_dest and os.path.isfile(value)):
                continue
            shutil.copyfile(value, ca_dest)
            value = ROOT_CA_PATH
        lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


def runtime_dependencies(pyproject: str) -> List[str]:
    try:
        import tomllib
    except ImportError:  # Python < 3.11 on the host
        import tomli as tomllib  # type: ignore
    with open(pyproject, "rb") as f:
        return list(tomllib.load(f)["project"]["dependencies"])


def main(argv: List[str]) -> int:
    if argv[:1] == ["mirror"]:
        src = debian_mirror(apt_sources(), host_codename())
        print(src.uri, src.suites[0])
    elif argv[:1] == ["pip-conf"] and len(argv) == 2:
        sys.stdout.write(root_pip_conf(host_pip_settings(), argv[1]))
    elif argv[:1] == ["runtime-deps"] and len(argv) == 2:
        print("\n".join(runtime_dependencies(argv[1])))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
