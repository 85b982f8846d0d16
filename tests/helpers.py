"""Helpers shared by tests of several packages (tests/ is on pytest's import path).

- `harness(*args)`: `python -m harness ...` in a subprocess from the repository, as a user runs it.
- `sim_client(sim, ...)`: our LLM client pointed at a running llm-sim, with short retry backoffs.
- `setup_context(tmp_path, domain)`: a task's setup context with its own work and download folders.
- `serve(app)`: an aiohttp app on 127.0.0.1 (a free port) for the test's duration; yields its URL.
- `saved(doc, path, edit, part)`: an office document (python-docx, openpyxl, ...) saved after an edit.
- `freeze_a_restore(provider_id)`: SIGSTOP the CRIU of the next restore (fork) of one of a Docker
  provider's containers, as a hung restore; `traces_of(container_id)` finds what is left of it;
  `freeze_a_dump(container_id)` the same for a snapshot's dump; `alive(pid)`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def harness(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def sim_client(sim: Any, cache_path: Path | None = None, *, enabled: bool | None = None, retry: dict | None = None,
               top: dict | None = None, **endpoint: object) -> Any:
    """An LLMClient on llm-sim `sim`; the response cache only with `cache_path` (or `enabled`)."""
    from harness.llm.client import LLMClient

    providers = {
        "default_model": "sim-model",
        "embedding_model": "sim-embed",
        "retry": {"base_s": 0.01, "cap_s": 0.05, **(retry or {})},
        "endpoints": [{"name": "sim", "kind": "openai-compatible", "base_url": sim.url, "timeout_s": 5.0, **endpoint}],
        **(top or {}),
    }
    return LLMClient.from_config(providers, cache_path=cache_path,
                                 cache_enabled=cache_path is not None if enabled is None else enabled, env={})


def setup_context(tmp_path: Path, domain: str) -> Any:
    """The setup context of a stand-in task `<domain>-rig` (for steps, getters and metrics run by hand)."""
    from benchmarks.context import RunContext
    from benchmarks.downloads import HostFiles
    from benchmarks.schema import Task

    task = Task.model_validate({"id": f"{domain}-rig", "instruction": "i", "evaluator": {"func": "infeasible"}})
    run = RunContext(work_root=tmp_path / "work", downloads=HostFiles(tmp_path / "cache"))
    return run.for_setup(task.bind(domain=domain), object())


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    from aiohttp import web

    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def saved(doc: Any, path: Path, edit: Any = None, part: Any = None) -> str:
    """`edit(part or doc)` if given, then `doc.save(path)`; the path as a string (what metrics take)."""
    if edit:
        edit(doc if part is None else part)
    doc.save(path)
    return str(path)


def _criu_of(container_id: str, verb: bytes = b"restore") -> int | None:
    """The pid of the `criu` that runc's `verb` (restore, checkpoint) of this container started,
    if one runs now."""
    procs = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        procs[int(pid)] = (ppid, cmd)
    runc = {pid for pid, (_, cmd) in procs.items()
            if cmd[0].endswith(b"runc") and verb in cmd and container_id.encode() in cmd}
    return next((pid for pid, (ppid, cmd) in procs.items() if ppid in runc and cmd[0].startswith(b"criu")), None)


async def freeze_a_restore(provider_id: str, timeout: float = 300) -> tuple[str, int]:
    """SIGSTOP the CRIU process of the next restore of a container of this Docker provider (a
    container created and not yet running): the restore then waits for ever, as the one that hung
    in a full test run. Returns (container id, the stopped pid)."""
    import aiodocker
    import anyio

    async with aiodocker.Docker() as docker:
        with anyio.fail_after(timeout):
            while True:
                created = await docker.containers.list(
                    all=True, filters={"label": [f"cua-harness.provider={provider_id}"], "status": ["created"]})
                for c in created:
                    pid = await anyio.to_thread.run_sync(_criu_of, c.id)
                    if pid is not None:
                        os.kill(pid, signal.SIGSTOP)
                        return c.id, pid
                await anyio.sleep(0.02)


async def freeze_a_dump(container_id: str, timeout: float = 300) -> int:
    """SIGSTOP the CRIU of the next checkpoint (snapshot) of this running container: the dump then
    waits for ever, holding the container's processes. Returns the stopped pid."""
    import anyio

    with anyio.fail_after(timeout):
        while (pid := await anyio.to_thread.run_sync(_criu_of, container_id, b"checkpoint")) is None:  # noqa: ASYNC110
            await anyio.sleep(0.005)  # polled: nothing announces that runc started CRIU
    os.kill(pid, signal.SIGSTOP)
    return pid


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def traces_of(container_id: str) -> list[int]:
    """Live processes with this container id on their command line (runc, its shim) or in their cgroup."""
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            cgroup = Path(f"/proc/{pid}/cgroup").read_text()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and (container_id.encode() in cmd or container_id in cgroup):
            left.append(int(pid))
    return left

