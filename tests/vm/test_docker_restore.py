"""What a restore's deadline kills (vm/docker_restore.py): runc's `restore` of that container and
what it started, never another container's. Real processes posing as runc, no Docker needed."""

from __future__ import annotations

import secrets
import subprocess
import time

import pytest

from vm.docker_restore import kill_restore, restore_processes


def _fake_runc(container_id: str) -> subprocess.Popen[bytes]:
    """A process whose command line reads `runc ... restore <id>`, with a child (as runc's criu)."""
    return subprocess.Popen(["runc", "-c", "sleep 60; true", "restore", container_id], executable="/bin/sh")


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def test_the_restore_of_one_container_is_killed_with_its_children_and_no_other() -> None:
    mine, other = secrets.token_hex(32), secrets.token_hex(32)
    a, b = _fake_runc(mine), _fake_runc(other)
    try:
        deadline = time.monotonic() + 10
        while not (_children(a.pid) and _children(b.pid)) and time.monotonic() < deadline:
            time.sleep(0.02)
        child = _children(a.pid)[0]
        assert set(restore_processes(mine)) == {a.pid, child}
        killed = kill_restore(mine)
        assert set(killed) == {a.pid, child}
        assert a.wait(timeout=10) == -9
        assert b.poll() is None and restore_processes(other)  # the other container's restore lives on
        assert restore_processes(mine) == []
    finally:
        for p in (a, b):
            p.kill()
            p.wait()


def test_only_a_full_container_id_is_looked_for() -> None:
    with pytest.raises(ValueError, match="not a full container id"):
        restore_processes("abc")
