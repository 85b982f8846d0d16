"""The Ubuntu font for the osworld desktop, fetched from the npm registry on the host.

Debian's main archive has no Ubuntu font; npm's `ubuntu-fontface` package carries the original
TTFs (Ubuntu Font Licence 1.0). Like the wheels, the host fetches it (`npm pack`, checked against
the pinned sha512 in files/gnome/ubuntu-font.pin, which is hashed into the image tag) and the
build context carries the TTFs under `fonts/ubuntu/`. Cached per pin in ~/.cache/cua-harness.
"""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import anyio

from harness.base.errors import SandboxError
from vm.image.context import IMAGE_DIR

PIN_FILE = IMAGE_DIR / "files" / "gnome" / "ubuntu-font.pin"
NPM_TIMEOUT_S = 120.0
_MEMBER_DIR = "package/fonts/original-pack/"
_KEEP_SUFFIXES = (".ttf",)
_KEEP_NAMES = ("LICENCE.txt",)


def font_pin(pin_file: Path = PIN_FILE) -> tuple[str, str]:
    """(`name@version`, `sha512-<base64>`) from the pin file's one non-comment line."""
    lines = [ln.strip() for ln in pin_file.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    parts = lines[0].split() if len(lines) == 1 else []
    if len(parts) != 2 or "@" not in parts[0] or not parts[1].startswith("sha512-"):
        raise SandboxError(f"{pin_file}: expected one line 'name@version sha512-<base64>'")
    return parts[0], parts[1]


def extract_fonts(tgz: bytes, integrity: str) -> dict[str, bytes]:
    """Context path -> bytes of the TTFs (and licence) in an npm tarball whose sha512 matches."""
    got = "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()
    if got != integrity:
        raise SandboxError(f"npm tarball integrity {got} != pinned {integrity} ({PIN_FILE})")
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        for member in tar.getmembers():
            name = member.name.removeprefix(_MEMBER_DIR)
            if member.isfile() and member.name.startswith(_MEMBER_DIR) and "/" not in name \
                    and (name.endswith(_KEEP_SUFFIXES) or name in _KEEP_NAMES):
                data = tar.extractfile(member)
                if data is not None:
                    out[f"fonts/ubuntu/{name}"] = data.read()
    if not any(k.endswith(".ttf") for k in out):
        raise SandboxError(f"npm tarball for {PIN_FILE} has no {_MEMBER_DIR}*.ttf")
    return out


async def ubuntu_fonts(cache_dir: Path, log=print) -> dict[str, bytes]:
    """The pinned Ubuntu font files for the build context, fetched with `npm pack` once per pin."""
    spec, integrity = font_pin()
    folder = cache_dir / "npm" / hashlib.sha256(f"{spec} {integrity}".encode()).hexdigest()[:12]
    tgzs = sorted(folder.glob("*.tgz")) if folder.is_dir() else []
    if not tgzs:
        if shutil.which("npm") is None:
            raise SandboxError(f"the osworld desktop needs {spec} from the npm registry, and npm is not installed")
        partial = folder.with_name(folder.name + ".partial")
        await anyio.to_thread.run_sync(shutil.rmtree, partial, True)
        partial.mkdir(parents=True)
        log(f"fetching {spec} from the npm registry")
        with anyio.fail_after(NPM_TIMEOUT_S):
            result = await anyio.run_process(["npm", "pack", "--silent", spec], cwd=partial, check=False,
                                             stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            err = result.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
            raise SandboxError(f"npm pack {spec} failed: " + " | ".join(err))
        await anyio.to_thread.run_sync(shutil.rmtree, folder, True)
        partial.rename(folder)
        tgzs = sorted(folder.glob("*.tgz"))
    data = await anyio.to_thread.run_sync(tgzs[0].read_bytes)
    return extract_fonts(data, integrity)
