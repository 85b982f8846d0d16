"""The image's build context: which files go in, their hash (the image tag), and the tar.

The tag is `cua-harness/desktop:<12 hex>` over the Dockerfile, the entrypoint, the files copied into
the image, the app list (apps.json, which the generated `app-packages.txt` follows), the guest
server's sources and the pinned wheel list, so editing any of them names a new image (and `ensure_image` builds it), while an unchanged tree reuses the image it has.
Wheels and the VS Code bundle themselves are not hashed (a rebuild of the same pins may differ in bytes); their pins are.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

IMAGE_REPO = "cua-harness/desktop"
IMAGE_DIR = Path(__file__).resolve().parent
GUEST_DIR = IMAGE_DIR.parent / "guest"

# Build-context path -> source (relative to the image folder); directories are walked.
_IMAGE_FILES = ("Dockerfile", "entrypoint.sh", "wheels.txt", "vscode.txt", "apps.json", "write_manifest.py")
# Context paths that must be executable in the image (the tar carries modes; COPY keeps them).
_EXECUTABLE_PREFIXES = ("files/usr/local/bin/", "files/vscode/bin/")
_IMAGE_TREES = ("files",)
_SKIP_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
_SKIP_SUFFIXES = (".pyc", ".pyo", ".swp", "~")


def _walk(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if not path.is_file() or _SKIP_PARTS.intersection(path.relative_to(root).parts):
            continue
        if path.name.endswith(_SKIP_SUFFIXES):
            continue
        yield path


def context_files(image_dir: Path = IMAGE_DIR, guest_dir: Path = GUEST_DIR) -> dict[str, Path]:
    """Build-context path -> file on disk, for everything hashed (wheels come later)."""
    files: dict[str, Path] = {}
    for name in _IMAGE_FILES:
        files[name] = image_dir / name
    for tree in _IMAGE_TREES:
        for path in _walk(image_dir / tree):
            files[f"{tree}/{path.relative_to(image_dir / tree).as_posix()}"] = path
    for path in _walk(guest_dir):
        if path.suffix == ".py":
            files[f"guest/{path.relative_to(guest_dir).as_posix()}"] = path
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"image build context incomplete: missing {', '.join(missing)}")
    return files


def context_hash(image_dir: Path = IMAGE_DIR, guest_dir: Path = GUEST_DIR) -> str:
    """sha256 over (context path, content) of every context file, in path order.

    File modes and times are left out: checkouts differ in them, the image does not.
    """
    digest = hashlib.sha256()
    for name, path in sorted(context_files(image_dir, guest_dir).items()):
        digest.update(name.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def image_tag(image_dir: Path = IMAGE_DIR, guest_dir: Path = GUEST_DIR) -> str:
    """`cua-harness/desktop:<12 hex>` for the current sources (pure: no Docker involved)."""
    return f"{IMAGE_REPO}:{context_hash(image_dir, guest_dir)[:12]}"


def pinned_wheels(image_dir: Path = IMAGE_DIR) -> list[str]:
    """The `name==version` lines of wheels.txt."""
    lines = (image_dir / "wheels.txt").read_text().splitlines()
    return [ln.split("#", 1)[0].strip() for ln in lines if ln.split("#", 1)[0].strip()]


def context_tar(wheels: list[Path], image_dir: Path = IMAGE_DIR, guest_dir: Path = GUEST_DIR,
                extra: dict[str, bytes] | None = None, *,
                vscode: Path | None = None) -> bytes:
    """The uncompressed tar Docker's build endpoint takes: context files + app-packages.txt +
    wheels/ + requirements + `extra` (context path -> bytes fetched on the host, e.g. fonts) + the
    VS Code bundle (vscode_bundle.py) as `vscode.tar.gz`."""
    from vm.image.manifest import app_packages  # manifest imports this module

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, path in sorted(context_files(image_dir, guest_dir).items()):
            executable = name.endswith(".sh") or name.startswith(_EXECUTABLE_PREFIXES)
            _add(tar, name, path.read_bytes(), 0o755 if executable else 0o644)
        # The Debian packages apps.json declares, one per line, for the Dockerfile's apt step.
        packages = "\n".join(app_packages(image_dir / "apps.json")) + "\n"
        _add(tar, "app-packages.txt", packages.encode(), 0o644)
        for wheel in sorted(wheels):
            _add(tar, f"wheels/{wheel.name}", wheel.read_bytes(), 0o644)
        requirements = "\n".join(pinned_wheels(image_dir)) + "\n"
        _add(tar, "wheels/requirements.txt", requirements.encode(), 0o644)
        for name, data in sorted((extra or {}).items()):
            _add(tar, name, data, 0o644)
        if vscode is not None:
            _add(tar, "vscode.tar.gz", vscode.read_bytes(), 0o644)
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 0  # stable layers: the builder's cache keys on content, not time
    tar.addfile(info, io.BytesIO(data))
