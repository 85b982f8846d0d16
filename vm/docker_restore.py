"""Start a Docker container from a CRIU checkpoint under a deadline, keeping CRIU's restore log
(docs/design/fork.md, "Restore failures").

Two things Docker does not do for us:
- **A hung restore.** Seen once in a full test run: runc and CRIU waited for ever, the container
  stayed `Created`, and Docker could neither inspect nor remove it until CRIU was killed. At the
  deadline (or on any cancellation) the restore's processes are killed: runc's `restore` of this
  container (its id is on runc's command line), every process in the container's cgroup (runc
  moves CRIU there before it restores the tree, and the restored tasks are there) and their
  descendants. Nothing of another container matches: a container id is 64 random hex digits.
- **The log of a failed restore.** containerd's runc shim has CRIU write `restore.log` into the
  task's work folder and removes that folder when the restore fails, so the error lines were lost
  ("criu failed: type NOTIFY errno 0" and nothing else). The log (and runc's own, `log.json`) is
  opened as soon as it appears and read through that handle afterwards, whatever was removed; a
  failed restore's copy is kept in a folder of ours and its error lines go into the error.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
import time
from pathlib import Path

import aiodocker
import anyio

from harness.base.errors import SandboxError
from vm.host_limits import exhausted_hint

log = logging.getLogger(__name__)

# Where containerd (as Docker 20.10 runs it) keeps a task's bundle; runc's restore writes CRIU's
# log to `work/restore.log` and its own to `log.json` there.
TASK_ROOT = Path("/run/docker/containerd/daemon/io.containerd.runtime.v2.task")
LOG_NAMES = ("work/restore.log", "log.json")
KEPT_LOGS = 50  # failed restores' logs kept (the oldest go first)


class RestoreHung(SandboxError):
    """The restore did not finish by its deadline; its processes were killed."""


async def start_from_checkpoint(docker: aiodocker.Docker, container_id: str, name: str, checkpoint: str, *,
                                timeout: float, keep_logs: Path) -> None:
    """POST start with `checkpoint`, within `timeout` s. A failure raises SandboxError with CRIU's
    error lines (its log kept under `keep_logs`); at the deadline RestoreHung, once the restore's
    processes are killed (then Docker can remove the container)."""
    stop = threading.Event()
    held: dict[str, int] = {}
    holder = threading.Thread(target=_hold_logs, args=(TASK_ROOT / "moby" / container_id, held, stop),
                              name=f"restore-log-{name}", daemon=True)
    holder.start()
    try:
        with anyio.fail_after(timeout):
            await docker._query_json(f"containers/{container_id}/start", "POST", params={"checkpoint": checkpoint})
    except aiodocker.DockerError as e:
        stop.set()
        text = await anyio.to_thread.run_sync(_read_held, holder, held)
        kept = await anyio.to_thread.run_sync(_keep, keep_logs, name, text)
        raise SandboxError(f"{name}: restore failed: {_reason(e.message, kept)}") from e
    except BaseException as e:  # the deadline, or a cancellation from outside: the restore must not live on
        stop.set()
        with anyio.CancelScope(shield=True):
            killed = await anyio.to_thread.run_sync(kill_restore, container_id)
            text = await anyio.to_thread.run_sync(_read_held, holder, held)
            hung = isinstance(e, TimeoutError)
            kept = await anyio.to_thread.run_sync(_keep, keep_logs, name, text) if hung or killed else None
        if killed:
            log.warning("%s: restore stopped (%s); killed its runc/CRIU processes %s%s", name,
                        type(e).__name__, killed, f", logs kept in {kept}" if kept else "")
        if hung:
            last = _last_line(text)
            raise RestoreHung(f"{name}: restore not done within {timeout:g}s; killed its runc/CRIU processes "
                              f"{killed}" + (f"; CRIU's last line: {last}" if last else "")
                              + (f" (log: {kept})" if kept else "")) from e
        raise
    finally:
        stop.set()
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_close_held, holder, held)


def _hold_logs(task: Path, held: dict[str, int], stop: threading.Event) -> None:
    """Open the restore's log files as they appear (until `stop`): read later through these
    handles, they outlive the folder containerd removes after a failed restore."""
    while not stop.is_set() and len(held) < len(LOG_NAMES):
        for rel in LOG_NAMES:
            if rel not in held:
                try:
                    held[rel] = os.open(task / rel, os.O_RDONLY | os.O_CLOEXEC)
                except OSError:
                    pass
        stop.wait(0.01)


def _read_held(holder: threading.Thread, held: dict[str, int]) -> str:
    holder.join()  # stopped: no more opens
    parts = []
    for rel, fd in held.items():
        try:
            data = os.pread(fd, 1 << 24, 0).decode(errors="replace")
        except OSError:
            continue
        parts.append(f"--- {rel}\n{data}")
    return "\n".join(parts)


def _close_held(holder: threading.Thread, held: dict[str, int]) -> None:
    holder.join()
    for fd in held.values():
        os.close(fd)
    held.clear()


def _keep(folder: Path, name: str, text: str) -> Path | None:
    """The failed restore's logs under `folder` (private), the oldest beyond KEPT_LOGS removed."""
    if not text:
        return None
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}.log"
        path.write_text(text)
        old = sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime)[:-KEPT_LOGS]
        for p in old:
            p.unlink(missing_ok=True)
    except OSError as e:
        log.info("could not keep the restore log of %s: %s", name, e)
        return None
    return path


def _reason(message: str, kept: Path | None) -> str:
    """The engine's message with CRIU's error lines from our copy of its log (the path the engine
    names is gone with the task's folder), and where that copy is."""
    if kept is None:
        return criu_reason(message)
    head = re.split(r"\s(?:log file:|path=)", str(message))[0]
    return f"{criu_reason(f'{head} log file: {kept}')} (log: {kept})"


_STAMPED = re.compile(r"^\(\d+\.\d+\).*$", re.M)


def _last_line(text: str) -> str:
    lines = _STAMPED.findall(text)
    return " ".join(lines[-1].split())[:300] if lines else ""


def _procs() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, command line, cgroup file) of every process we can read."""
    found: dict[int, tuple[int, str, str]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
            with open(f"/proc/{entry.name}/cgroup", "rb") as f:
                cgroup = f.read().decode(errors="replace")
        except OSError:
            continue
        found[int(entry.name)] = (int(stat.rsplit(")", 1)[1].split()[1]), cmd, cgroup)
    return found


def restore_processes(container_id: str) -> list[int]:
    """Pids of this container's restore: runc's `restore` of it, every process in its cgroup, and
    their descendants. Not its containerd shim (no `restore` on its command line), nothing of
    another container (the id is 64 random hex digits) and never this process."""
    if not re.fullmatch(r"[0-9a-f]{64}", container_id):
        raise ValueError(f"not a full container id: {container_id!r}")
    procs = _procs()
    roots = set()
    for pid, (_, cmd, cgroup) in procs.items():
        argv = cmd.split("\0")
        runc = os.path.basename(argv[0]) == "runc" and "restore" in argv and container_id in argv
        if runc or container_id in cgroup:
            roots.add(pid)
    found = roots | set(_descendants(procs, roots))
    found.discard(os.getpid())
    found.discard(1)
    return sorted(found)


def _descendants(procs: dict[int, tuple[int, str, str]], roots: set[int]) -> list[int]:
    """The descendants of `roots` in `procs` (from `_procs`), parents before their children."""
    found: list[int] = []
    seen, todo = set(roots), list(roots)
    while todo:
        parent = todo.pop()
        for pid, (ppid, _, _) in procs.items():
            if ppid == parent and pid not in seen:
                seen.add(pid)
                found.append(pid)
                todo.append(pid)
    return found


def kill_restore(container_id: str, rounds: int = 3) -> list[int]:
    """SIGKILL the restore's processes (`restore_processes`), again while new ones turn up; the
    pids killed. A stopped (SIGSTOP) or waiting process dies too."""
    killed: list[int] = []
    for _ in range(rounds):
        pids = [p for p in restore_processes(container_id) if p not in killed]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.2)
    return killed


def kill_tree(pid: int) -> list[int]:
    """SIGKILL `pid`'s descendants, then `pid` (a `runc checkpoint` and the CRIU it runs: CRIU must
    die before runc, or it is orphaned and its tie to this dump lost); the pids killed. A dump's
    CRIU holds the container's processes seized: alive, it keeps them stopped."""
    killed = []
    for victim in [*reversed(_descendants(_procs(), {pid})), pid]:
        if victim in (os.getpid(), 1):
            continue
        try:
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)
        except (ProcessLookupError, PermissionError):
            pass
    return killed


_CRIU_ERROR = re.compile(r"Error \([^)]*\): (.*)")


def criu_reason(message: str) -> str:
    """The engine's error with CRIU's own error lines from the log file it names (runc's message
    says only "criu failed"); the harmless RLIMIT_NOFILE complaint is left out. Out of inotify
    instances, it names the sysctl that raises them (vm/host_limits.py)."""
    found = re.search(r"(?:log file: |path= ?)(\S+\.log)", str(message))
    errors: list[str] = []
    if found:
        try:
            lines = Path(found.group(1)).read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        errors = [m.group(1).strip() for m in map(_CRIU_ERROR.search, lines)
                  if m and "RLIMIT_NOFILE" not in m.group(1)]
    head = _one_line(re.split(r"\s(?:log file:|path=)", str(message))[0])
    hint = exhausted_hint(" ".join(errors))  # the host's inotify budget, shared by every sandbox
    return head + (f"; CRIU: {' | '.join(errors[:4])}" if errors else "") + (f"; {hint}" if hint else "")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[-600:]
