"""The guest server as root acting as the desktop's user (vm/guest/user.py), in-process on the host.

Needs root (the image runs the server as root); `nobody` stands in for the desktop's user.
"""

from __future__ import annotations

import os
import pwd
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from vm.guest import procs, user

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the guest drops to its user only when it runs as root")


@pytest.fixture
def as_nobody():
    desktop = user.configure("nobody")
    try:
        yield desktop
    finally:
        user.configure(None)


async def test_children_run_with_the_users_ids_and_groups(as_nobody):
    result = await procs.run(["sh", "-c", "id -u; id -g; id -G"], timeout=10)
    uid, gid, groups = result["output"].split("\n")[:3]
    nobody = pwd.getpwnam("nobody")
    assert (int(uid), int(gid)) == (nobody.pw_uid, nobody.pw_gid)
    assert "0" not in groups.split()  # root's own group is not kept


async def test_scripts_are_readable_by_the_user_who_runs_them(as_nobody, tmp_path):
    result = await procs.run_script("/bin/sh", "id -u\n", ".sh", timeout=10, cwd="/")
    assert result["returncode"] == 0, result
    assert int(result["output"]) == pwd.getpwnam("nobody").pw_uid


@pytest.fixture
def open_dir():
    """A folder anyone may traverse (pytest's tmp_path is private to root)."""
    with tempfile.TemporaryDirectory(prefix="guest-user-") as name:
        os.chmod(name, 0o755)
        yield Path(name)


async def test_files_are_written_and_read_with_the_users_rights(as_nobody, open_dir):
    tmp_path = open_dir
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    created = shared / "made-by-guest"
    await user.as_user(created.write_bytes, b"x")
    assert created.stat().st_uid == pwd.getpwnam("nobody").pw_uid
    secret = tmp_path / "root-only"
    secret.write_text("root's")
    secret.chmod(0o600)
    with pytest.raises(PermissionError):
        await user.as_user(secret.read_text)
    # The thread is root again afterwards, and so is the process.
    assert await user.as_user(os.geteuid) == 0
    (tmp_path / "after").write_text("root still writes")


async def test_without_a_user_everything_runs_as_the_server(tmp_path):
    assert user.configure(None) is None
    result = await procs.run(["id", "-u"], timeout=10)
    assert result["output"].strip() == str(os.geteuid())


async def test_a_dedicated_thread_becomes_the_user_and_the_process_stays_root(as_nobody):
    nobody = pwd.getpwnam("nobody")
    with ThreadPoolExecutor(1, initializer=user.become_user_on_this_thread) as pool:
        ids = pool.submit(lambda: (os.getuid(), os.geteuid(), os.getgid(), os.getgroups())).result()
    assert ids == (nobody.pw_uid, nobody.pw_uid, nobody.pw_gid, [nobody.pw_gid])
    assert (os.getuid(), os.geteuid()) == (0, 0)
