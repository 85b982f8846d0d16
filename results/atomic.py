"""Crash-safe file primitives: atomic replace and durable appends.

All functions here block (write + fsync); callers on the event loop run them through
`anyio.to_thread.run_sync`. A crash at any instant leaves either the old file or the new one,
plus at most a hidden temp file that `clean_temp_files` removes on the next open.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import orjson

# Temp files are hidden (leading dot) so OSWorld's readers, which look for `result.txt` by exact
# name, never mistake a half-written file for a record.
TEMP_MARK = ".tmp-"


def temp_name_for(path: Path) -> Path:
    return path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")


def dump_json(obj: Any) -> bytes:
    """Readable JSON for the small record files (run.json, result.json, summary.json)."""
    return orjson.dumps(obj, default=str, option=orjson.OPT_INDENT_2) + b"\n"


def is_temp_name(name: str) -> bool:
    return name.startswith(".") and TEMP_MARK in name


def fsync_dir(directory: Path) -> None:
    """Make a rename or create inside `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, durable: bool = True, sync_dir: bool = True) -> None:
    """Replace `path` with `data`: temp file in the same folder, fsync, os.replace, fsync dir.

    `durable=False` skips both fsyncs: still atomic against a process crash (rename is atomic),
    but not against power loss. Records use it only for step screenshots (results/stepwriter.py).
    `sync_dir=False` leaves the folder's fsync to the caller (one for several files).
    """
    tmp = temp_name_for(path)
    try:
        _write_all(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), data, durable=durable)
        os.replace(tmp, path)
    except BaseException:
        # Best effort: a leftover temp file is harmless (cleaned at the next open).
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable and sync_dir:
        fsync_dir(path.parent)


def _write_all(fd: int, data: bytes, *, durable: bool) -> None:
    """Write every byte (os.write may write less), fsync if durable, close the descriptor."""
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)


def append_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Append `data` with one O_APPEND write loop, then fsync.

    The caller serialises appends to the same file (a lock), so lines never interleave.
    """
    created = not path.exists()
    _write_all(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644), data, durable=durable)
    if durable and created:
        fsync_dir(path.parent)


def ends_with_newline(path: Path) -> bool:
    """True for a missing/empty file or one whose last byte is a newline (no torn last line)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return True
    if size == 0:
        return True
    with path.open("rb") as f:
        f.seek(size - 1)
        return f.read(1) == b"\n"


def clean_temp_files(directory: Path, *, depth: int) -> list[Path]:
    """Remove our half-written temp files under `directory` down to `depth` levels.

    Only names made by `temp_name_for` are touched; they are never records, so removing them
    does not break the "never delete an attempt" rule.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return removed
    for entry in entries:
        if entry.is_file(follow_symlinks=False) and is_temp_name(entry.name):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        elif depth > 0 and entry.is_dir(follow_symlinks=False):
            removed.extend(clean_temp_files(Path(entry.path), depth=depth - 1))
    return removed
