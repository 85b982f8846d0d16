"""Build the desktop image when (and only when) the current sources have none.

    tag = image_tag()                         # pure: cua-harness/desktop:<12 hex of the context>
    tag = await ensure_image()                # builds if missing, returns the tag

Base: `debian:bookworm-slim` where Docker Hub is reachable, else a debootstrapped bookworm
imported as an image (see debootstrap.py). `debootstrap=None` picks: CUA_DEBOOTSTRAP=1 -> debootstrap;
a bookworm-slim or debootstrap base already present -> that one (no network); else try to pull
bookworm-slim and fall back to debootstrap when the pull fails.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiodocker
import anyio

from harness.base.errors import SandboxError
from vm.image import context, debootstrap, dockerapi, fonts, manifest, vscode_bundle

HUB_BASE = "debian:bookworm-slim"
BUILD_TIMEOUT_S = 3600.0
PULL_TIMEOUT_S = 120.0
WHEEL_TIMEOUT_S = 600.0
MANIFEST_TIMEOUT_S = 60.0
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cua-harness"

Log = Callable[[str], None]


def image_tag() -> str:
    """The tag of the image the current sources describe (`cua-harness/desktop:<12 hex>`)."""
    return context.image_tag()


async def ensure_image(*, debootstrap: bool | None = None, force: bool = False, log: Log = print) -> str:
    """Return the current image's tag, building it first if it does not exist.

    `force` rebuilds from scratch (no layer cache: fresh Debian packages); a cached debootstrap
    base is reused either way.
    """
    tag = image_tag()
    async with aiodocker.Docker() as docker:
        if not force and await dockerapi.image_exists(docker, tag):
            log(f"image {tag} is up to date")
            await _cache_manifest(docker, tag, log, refresh=False)
            return tag
        base = await _choose_base(docker, debootstrap, log)
        wheels = await _wheels(log)
        extra = await fonts.ubuntu_fonts(CACHE_DIR, log)  # the osworld desktop's interface font
        vscode = await vscode_bundle.vscode_bundle(log)
        started = time.monotonic()
        with anyio.fail_after(BUILD_TIMEOUT_S):
            await _build(docker, tag, base, wheels, log, nocache=force, extra=extra, vscode=vscode)
        log(f"built {tag} on {base} in {time.monotonic() - started:.0f} s")
        await _cache_manifest(docker, tag, log, refresh=True)
    return tag


async def _cache_manifest(docker: aiodocker.Docker, tag: str, log: Log, *, refresh: bool) -> None:
    """Copy the image's app manifest to the host cache (manifest.image_manifest reads it)."""
    if not refresh and manifest.image_manifest(tag) is not None:
        return
    with anyio.fail_after(MANIFEST_TIMEOUT_S):
        data = await dockerapi.read_image_file(docker, tag, manifest.IMAGE_MANIFEST_PATH)
    if data is None:
        log(f"image {tag} has no {manifest.IMAGE_MANIFEST_PATH} (built before app manifests)")
        return
    try:
        parsed = json.loads(data)
    except ValueError as e:
        raise SandboxError(f"image {tag}: {manifest.IMAGE_MANIFEST_PATH} is not JSON: {e}") from e
    await anyio.to_thread.run_sync(manifest.cache_manifest, tag, parsed)


async def _choose_base(docker: aiodocker.Docker, use_debootstrap: bool | None, log: Log) -> str:
    if use_debootstrap is None:
        if os.environ.get("CUA_DEBOOTSTRAP") == "1":
            use_debootstrap = True
        elif await dockerapi.image_exists(docker, HUB_BASE):
            return HUB_BASE
        elif await dockerapi.image_exists(docker, debootstrap.BASE_TAG):
            return debootstrap.BASE_TAG
        else:
            try:
                await _pull(docker, HUB_BASE, log)
                return HUB_BASE
            except (SandboxError, TimeoutError) as e:
                log(f"cannot pull {HUB_BASE} ({e}); falling back to debootstrap")
                use_debootstrap = True
    if use_debootstrap:
        return await debootstrap.ensure_base(docker, log=log)
    if not await dockerapi.image_exists(docker, HUB_BASE):
        await _pull(docker, HUB_BASE, log)
    return HUB_BASE


async def _pull(docker: aiodocker.Docker, image: str, log: Log) -> None:
    log(f"pulling {image}")
    name, _, tag = image.partition(":")
    try:
        with anyio.fail_after(PULL_TIMEOUT_S):
            await docker.images.pull(name, tag=tag or "latest")
    except aiodocker.DockerError as e:
        raise SandboxError(f"docker pull {image} failed: {e.message}; use --debootstrap where Docker Hub is unreachable") from e


async def _wheels(log: Log) -> list[Path]:
    """Pure-python wheels for the pins in wheels.txt, built on the host once per pin set."""
    pins = context.pinned_wheels()
    key = hashlib.sha256("\n".join(pins).encode()).hexdigest()[:12]
    folder = CACHE_DIR / "wheels" / key
    done = folder / ".complete"
    if done.exists():
        return sorted(folder.glob("*.whl"))
    partial = folder.with_name(folder.name + ".partial")
    await anyio.to_thread.run_sync(shutil.rmtree, partial, True)
    partial.mkdir(parents=True)
    log(f"building wheels on the host: {' '.join(pins)}")
    argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(partial), *pins]
    with anyio.fail_after(WHEEL_TIMEOUT_S):
        result = await anyio.run_process(argv, check=False, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        err = result.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise SandboxError("pip wheel for the image failed: " + " | ".join(err))
    wheels = sorted(partial.glob("*.whl"))
    if len(wheels) != len(pins):
        raise SandboxError(f"pip wheel made {len(wheels)} wheels for {len(pins)} pins in {partial}")
    (partial / ".complete").touch()
    await anyio.to_thread.run_sync(shutil.rmtree, folder, True)
    partial.rename(folder)
    return sorted(folder.glob("*.whl"))


_STEP = re.compile(r"^Step \d+/\d+ : ")
HEARTBEAT_S = 10.0  # inside a long step, echo its latest output line this often


async def _build(
    docker: aiodocker.Docker, tag: str, base: str, wheels: list[Path], log: Log, *, nocache: bool = False,
    extra: dict[str, bytes] | None = None, vscode: Path | None = None,
) -> None:
    tar = await anyio.to_thread.run_sync(functools.partial(context.context_tar, wheels, extra=extra, vscode=vscode))
    digest = context.context_hash()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    log_path = CACHE_DIR / f"build-{digest[:12]}.log"
    log(f"building {tag} from {base} (context {len(tar) // 1024} KiB; full log: {log_path})")
    tail: list[str] = []
    started = last_shown = time.monotonic()
    with log_path.open("w") as full_log:
        try:
            events = dockerapi.build(
                docker,
                tar,
                tag=tag,
                buildargs={"BASE": base, "CONTEXT_HASH": digest[:12]},
                labels={"cua-harness.context": digest, "cua-harness.base": base},
                nocache=nocache,
            )
            async for event in events:
                text = event.get("stream") or event.get("status") or ""
                if not text:
                    continue
                full_log.write(text if text.endswith("\n") else text + "\n")
                for line in text.splitlines():
                    line = line.rstrip()
                    if not line:
                        continue
                    tail = [*tail[-29:], line]
                    now = time.monotonic()
                    if _STEP.match(line):
                        log(f"  [{now - started:5.1f}s] {line[:160]}")
                        last_shown = now
                    elif now - last_shown >= HEARTBEAT_S:
                        log(f"  [{now - started:5.1f}s]   … {line[:140]}")
                        last_shown = now
        except SandboxError as e:
            raise SandboxError(f"image build failed: {e}; last output:\n" + "\n".join(tail) + f"\n(full log: {log_path})") from e
    if not await dockerapi.image_exists(docker, tag):
        raise SandboxError(f"image build ended without producing {tag}; see {log_path}")
