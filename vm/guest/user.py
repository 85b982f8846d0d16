"""Whom the desktop's programs and files belong to when the server itself runs as root.

The image runs the server as root so the agent's user (uid 1000, which runs the agent's pyautogui
code and every app) can neither read its token (/proc/PID/environ is readable only by the same uid)
nor touch the folder of its socket. Everything the server does on the desktop's behalf still
happens as that user, as on OSWorld's VM where the server is the user's own process:
- children (commands, scripts, launched apps, wmctrl, xdg-open) start with the user's uid, gid and
  groups (`spawn_kwargs`); HOME, USER, DISPLAY and the session bus come from the server's
  environment, which the entrypoint sets to the user's;
- file reads and writes run on a thread whose filesystem uid/gid are switched to the user's
  (`as_user`, setfsuid/setfsgid: per thread, unlike setuid), so permission checks, symlinks and
  the owner of created files are the user's. The thread keeps root's supplementary group list
  (root's own group only);
- the AT-SPI thread becomes the user for good (`become_user_on_this_thread`, raw per-thread
  setresuid): applications serve their accessibility tree on a private socket that accepts only
  their own uid (at-spi2's atk-bridge checks the peer), so root would see every app as defunct.
  The kernel marks the process non-dumpable when a thread changes its ids, so that thread does
  not open the server's memory or /proc files to the user.

GUEST_RUN_AS=NAME turns this on (the entrypoint sets it); without it, or when the server is not
root, everything runs as the server's own user (the tests run the server in-process that way).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import platform
import pwd
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DesktopUser:
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]


_user: DesktopUser | None = None
_libc: Any = None


def configure(name: str | None) -> DesktopUser | None:
    """Run children and file operations as `name` from now on (only when this process is root)."""
    global _user, _libc
    if not name or os.geteuid() != 0:
        _user = None
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise SystemExit(f"guest: GUEST_RUN_AS={name!r}: no such user") from None
    _libc = ctypes.CDLL(None, use_errno=True)
    _user = DesktopUser(name, entry.pw_uid, entry.pw_gid, tuple(os.getgrouplist(name, entry.pw_gid)))
    return _user


def current() -> DesktopUser | None:
    return _user


def spawn_kwargs() -> dict[str, Any]:
    """Extra arguments for asyncio.create_subprocess_exec that start the child as the user."""
    if _user is None:
        return {}
    return {"user": _user.uid, "group": _user.gid, "extra_groups": list(_user.groups)}


# Raw syscall numbers: glibc's setresuid/setgroups change every thread of the process.
_SYSCALLS = {
    "x86_64": {"setgroups": 116, "setresuid": 117, "setresgid": 119},
    "aarch64": {"setgroups": 159, "setresuid": 147, "setresgid": 149},
}


def become_user_on_this_thread() -> None:
    """Give the calling thread (only) the user's uid, gid and groups, irreversibly; no-op when not
    configured. For a dedicated thread, e.g. as a ThreadPoolExecutor initializer."""
    if _user is None:
        return
    numbers = _SYSCALLS.get(platform.machine())
    if numbers is None:
        raise OSError(f"guest: no per-thread setresuid for {platform.machine()}")
    groups = (ctypes.c_uint * len(_user.groups))(*_user.groups)
    for name, args in (("setgroups", (len(_user.groups), groups)),
                       ("setresgid", (_user.gid, _user.gid, _user.gid)),
                       ("setresuid", (_user.uid, _user.uid, _user.uid))):
        if _libc.syscall(numbers[name], *args) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"guest: {name} for the AT-SPI thread failed: {os.strerror(errno)}")


def _switch(uid: int, gid: int) -> None:
    # setfsgid first: it needs CAP_SETGID, which a nonzero fsuid does not drop but let us not rely on it.
    _libc.setfsgid(gid)
    _libc.setfsuid(uid)
    # Both calls return the previous id and never an error: read the ids back to be sure.
    if _libc.setfsuid(-1) != uid or _libc.setfsgid(-1) != gid:
        raise PermissionError(f"guest: could not switch the filesystem ids to {uid}:{gid}")


def _as_user_on_thread(fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    assert _user is not None
    _switch(_user.uid, _user.gid)
    try:
        return fn(*args)
    finally:
        _libc.setfsuid(0)
        _libc.setfsgid(0)


async def as_user(fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) on the default executor, with the user's file permissions when configured."""
    loop = asyncio.get_running_loop()
    if _user is None:
        return await loop.run_in_executor(None, fn, *args)
    return await loop.run_in_executor(None, _as_user_on_thread, fn, args)
