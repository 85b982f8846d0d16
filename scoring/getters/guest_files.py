"""Copying guest files into the task's work folder, for every getter that hands a metric a path."""

from __future__ import annotations

import anyio

from benchmarks.context import TaskContext
from vm.types import Guest


async def save_work_file(ctx: TaskContext, dest: str, data: bytes) -> str:
    """Write `data` as the task's work file `dest`; its local path."""
    target = ctx.work_path(dest)
    await anyio.Path(target.parent).mkdir(parents=True, exist_ok=True)
    await anyio.Path(target).write_bytes(data)
    return str(target)


async def fetch_to_work(guest: Guest, ctx: TaskContext, path: str, dest: str) -> str | None:
    """The guest file `path` (~ and relative paths from the guest's home) saved as `dest`; its
    local path, or None when the guest has no such file. Streamed to disk when the guest can
    (a file past the client's size cap is a TooLarge task error, never held in memory)."""
    download_to = getattr(guest, "download_to", None)
    if download_to is not None:
        target = ctx.work_path(dest)
        await anyio.Path(target.parent).mkdir(parents=True, exist_ok=True)
        return str(target) if await download_to(ctx.guest_path(path), target) else None
    data = await guest.download(ctx.guest_path(path))
    return None if data is None else await save_work_file(ctx, dest, data)
