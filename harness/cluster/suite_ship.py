"""Shipping a task suite to cluster nodes: the head packs the suite folder once (a tar in Ray's
object store, named by its content hash); each node unpacks it into a per-hash cache folder, so
a node reuses it across workers and runs and never depends on the head's file system."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

MAX_SUITE_BYTES = 512 * 1024 * 1024  # a suite (tasks + assets) larger than this is to be put on nodes by hand
CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cua-harness" / "suites"


def pack_suite(folder: Path) -> tuple[str, bytes]:
    """(sha256 hex of the archive, tar bytes) of `folder`; deterministic order and metadata."""
    folder = Path(folder)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            if "__pycache__" in path.parts or not (path.is_file() or path.is_dir()):
                continue
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(folder)))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_file():
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
            if buf.tell() > MAX_SUITE_BYTES:
                raise ValueError(f"suite {folder} is larger than {MAX_SUITE_BYTES >> 20} MiB: too big to ship "
                                 "through the object store; put it on every node at the same path instead")
    data = buf.getvalue()
    return hashlib.sha256(data).hexdigest(), data


def unpack_suite(digest: str, data: bytes, root: Path | None = None) -> Path:
    """The suite unpacked under `root/<digest>` (done once per node; atomic rename)."""
    root = Path(root or CACHE_ROOT)
    target = root / digest[:24]
    if target.is_dir():
        return target
    if hashlib.sha256(data).hexdigest() != digest:
        raise ValueError("shipped suite archive does not match its hash")
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=root))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
            tar.extractall(tmp, filter="data")  # refuses absolute paths, links out of the folder
        try:
            tmp.rename(target)
        except OSError:  # another worker on this node won the race
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
