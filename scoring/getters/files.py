"""File getters: files from the guest (`vm_file`), gold files from the host (`cloud_file`),
files an execute step wrote (`cache_file`), and `content_from_vm_file`.

Files land in the task's cache folder under their `dest` names, as upstream: some metrics
rely on it (compare_table's sheet_print reads `<stem>-<sheet>.csv` next to the workbook).
"""

from __future__ import annotations

import posixpath
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio

from benchmarks.context import TaskContext
from benchmarks.schema import GetterSpec
from harness.base.errors import TaskError
from scoring.getters.guest_files import fetch_to_work
from scoring.registry import getter
from vm.types import Guest


def _pairs(spec: GetterSpec) -> list[tuple[str, str]]:
    if spec.multi:
        paths, dests = spec.path, spec.dest
        if not isinstance(paths, list) or not isinstance(dests, list) or len(paths) != len(dests):
            raise TaskError("multi: path and dest must be lists of equal length")
        return [(str(p), str(d)) for p, d in zip(paths, dests, strict=True)]
    if not isinstance(spec.path, str) or not spec.path:
        raise TaskError("path: expected a string")
    dest = spec.dest if isinstance(spec.dest, str) and spec.dest else posixpath.basename(spec.path)
    return [(spec.path, dest)]


def _gives(spec: GetterSpec, found: list[str | None]) -> Any:
    """OSWorld's `gives`: which entries reach the metric; one entry is passed bare, more as a list."""
    picked = [found[i] for i in (spec.gives or [0]) if 0 <= i < len(found)]
    return picked[0] if len(picked) == 1 else picked


def _check_pairs(spec: dict[str, Any]) -> list[str]:
    if spec.get("multi") in (True, "true", "True"):
        p, d = spec.get("path"), spec.get("dest")
        if not isinstance(p, list) or not isinstance(d, list) or len(p) != len(d):
            return ["multi needs equal-length path and dest lists"]
    elif not isinstance(spec.get("path"), str):
        return ["path must be a string"]
    return []


@getter("vm_file", check=_check_pairs)
async def vm_file(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> Any:
    """Files from the guest, saved to the task's cache folder; missing ones give None."""
    pairs = _pairs(spec)
    extra = spec.model_extra or {}
    if not spec.multi and extra.get("time_suffix"):
        stamp = datetime.now().strftime(str(extra.get("time_format") or "%Y%m%d_%H%M%S"))
        stem, ext = posixpath.splitext(pairs[0][1])
        pairs = [(pairs[0][0], f"{stem}_{stamp}{ext}")]
    found: list[str | None] = []
    for path, dest in pairs:
        found.append(await fetch_to_work(guest, ctx, path, dest))
    return _gives(spec, found)


@getter("cloud_file", check=_check_pairs)
async def cloud_file(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> Any:
    """Gold files: an http(s) URL (cached on the host) or a path/file:// URL in the suite's assets."""
    found: list[str | None] = []
    for ref, dest in _pairs(spec):
        local = await ctx.fetch(ref)
        target = ctx.work_path(dest)

        def copy(src: Path = local, dst: Path = target) -> None:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)

        await anyio.to_thread.run_sync(copy)
        found.append(str(target))
    return _gives(spec, found)


@getter("cache_file", check=lambda s: [] if isinstance(s.get("path"), str) else ["path must be a string"])
async def cache_file(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> str | None:
    """A file an earlier `execute` step wrote with `stdout`/`stderr` (None if it was not written)."""
    found = await anyio.to_thread.run_sync(ctx.find_cached, str(spec.path))
    return str(found) if found else None


def _check_content(spec: dict[str, Any]) -> list[str]:
    if spec.get("file_type") != "xlsx" or spec.get("file_content") != "last_row":
        return [f"file_type={spec.get('file_type')} file_content={spec.get('file_content')}"]
    return []


@getter("content_from_vm_file", check=_check_content)
async def content_from_vm_file(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> list[str] | None:
    """The last data row of a guest xlsx as strings (upstream: pandas' `df.iloc[-1].astype(str)`)."""
    from scoring.metrics.table_read import last_row_as_strings

    path = str(spec.path)
    local = await fetch_to_work(guest, ctx, path, posixpath.basename(path))
    if local is None:
        return None
    return await anyio.to_thread.run_sync(last_row_as_strings, local, limiter=ctx.run.cpu)


def _needs(*keys: str):
    return lambda s: [f"{k} is required" for k in keys if not isinstance(s.get(k), str) or not s.get(k)]


@getter("gimp_config_file", check=_needs("file_name", "dest"))
async def gimp_config_file(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> str | None:
    """A GIMP 2.10 config file (`~/.config/GIMP/2.10/<file_name>`) saved as `dest`."""
    extra = spec.model_extra or {}
    return await fetch_to_work(guest, ctx, f"~/.config/GIMP/2.10/{extra['file_name']}", str(spec.dest))

