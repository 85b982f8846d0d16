"""Files in the sandbox: multipart upload (streamed to disk), download, directory trees.

Every open, mkdir, move and listing runs through user.as_user: with the desktop user's
permissions, so created files are the user's (see user.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from typing import Any

from aiohttp import web

from . import user
from .protocol import BadRequest, NotFound

CHUNK = 1024 * 1024
HOME = os.path.expanduser("~")
MAX_TREE_ENTRIES = 20000
MAX_TREE_DEPTH = 32


def resolve(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


async def receive_upload(request: web.Request) -> str:
    """Store multipart `file_data` at `file_path` (parents created); returns the final path.

    Streams the file part to disk, so uploads are not bounded by memory; the part may come
    before or after `file_path` (then it is spooled to a temp file next to home and moved).
    """
    if request.content_type != "multipart/form-data":
        raise BadRequest("expected multipart/form-data with fields 'file_path' and 'file_data'")
    reader = await request.multipart()
    target: str | None = None
    written: str | None = None  # where file_data landed
    try:
        while True:
            part = await reader.next()
            if part is None:
                break
            name = getattr(part, "name", None)
            if name == "file_path":
                target = resolve((await part.text()).strip())
            elif name == "file_data":
                if target is not None:
                    dest = target
                    await user.as_user(_make_parent, dest)
                else:
                    dest = await user.as_user(_spool_file)
                await _write_part(part, dest)
                written = dest
            else:
                await part.release()
        if not target:
            raise BadRequest("missing multipart field 'file_path'")
        if written is None:
            raise BadRequest("missing multipart field 'file_data'")
        if written != target:
            await user.as_user(_move, written, target)
            written = target
        return target
    except PermissionError as e:  # the user may not write there (the server writes as the user)
        raise BadRequest(f"cannot write {target or e.filename}: permission denied") from e
    finally:
        if written is not None and written != target:
            with contextlib.suppress(OSError):
                await user.as_user(os.unlink, written)


def _spool_file() -> str:
    fd, path = tempfile.mkstemp(prefix=".upload-", dir=HOME)
    os.close(fd)
    return path


def _make_parent(path: str) -> None:
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)


def _move(src: str, dest: str) -> None:
    _make_parent(dest)
    shutil.move(src, dest)


async def _write_part(part: Any, dest: str) -> None:
    loop = asyncio.get_running_loop()
    f = await user.as_user(open, dest, "wb")
    try:
        while True:
            chunk = await part.read_chunk(CHUNK)
            if not chunk:
                break
            await loop.run_in_executor(None, f.write, chunk)
    finally:
        await loop.run_in_executor(None, f.close)


async def send_file(request: web.Request, path: str) -> web.StreamResponse:
    """The file's bytes as-is (no content-encoding guesses: a .gz stays gzip bytes); 404 if missing."""
    full = resolve(path)
    loop = asyncio.get_running_loop()
    try:
        f = await user.as_user(open, full, "rb")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise NotFound(f"File not found: {path}") from None
    except PermissionError as e:
        raise BadRequest(f"cannot read {path}: permission denied") from e
    try:
        size = os.fstat(f.fileno()).st_size
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = size
        await response.prepare(request)
        remaining = size  # a file growing meanwhile is cut at the size announced
        while remaining > 0:
            chunk = await loop.run_in_executor(None, f.read, min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        await loop.run_in_executor(None, f.close)


def directory_tree(path: str) -> dict[str, Any]:
    """OSWorld's /list_directory shape: {type, name, children} recursively (bounded)."""
    full = resolve(path)
    if not os.path.isdir(full):
        raise NotFound(f"Directory not found: {path}")
    budget = [MAX_TREE_ENTRIES]

    def walk(p: str, depth: int) -> dict[str, Any]:
        node: dict[str, Any] = {"type": "directory", "name": os.path.basename(p) or p, "children": []}
        if depth >= MAX_TREE_DEPTH:
            return node
        try:
            entries = sorted(os.scandir(p), key=lambda e: e.name)
        except OSError:
            return node
        for entry in entries:
            if budget[0] <= 0:
                break
            budget[0] -= 1
            if entry.is_dir(follow_symlinks=False):
                node["children"].append(walk(entry.path, depth + 1))
            else:
                node["children"].append({"type": "file", "name": entry.name})
        return node

    return walk(full, 0)


def desktop_path() -> str:
    return os.path.join(HOME, "Desktop")
