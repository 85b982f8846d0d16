"""Host kernel limits every Docker sandbox shares: inotify (docs/design/image.md, "One inotify budget").

The sandboxes share the host's user namespace and their apps run as uid 1000 (`user`), so the
inotify instances and watches of all sandboxes, and of a host user with uid 1000, count against
one per-uid kernel limit (`fs.inotify.max_user_instances`, 128 on stock Debian/Ubuntu). A fork's
instances count against root's instead: CRIU creates them as root before it restores the
processes' uids, and the charge stays with the creator. Past the limit an app's inotify_init
fails: it loses file monitoring without a word (the desktop not seeing a file a task made), and
CRIU cannot restore a fork ("fsnotify: Can't create inotify ...: Too many open files").

The provider cannot see the budget's other users nor raise it (root, host-wide), so it warns once
per process when its live sandboxes get within reach of the limit (`InotifyBudget.check`), and a
restore failure of that kind names the sysctl (`exhausted_hint`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

RAISE_TO = {"max_user_instances": 8192, "max_user_watches": 524288}  # what scripts/setup.sh sets
# uid 1000's inotify use per sandbox with apps open, a round figure above what was measured
# (docs/design/image.md): osworld 6 instances / 45 watches idle, +4 / +116 with VS Code, +2 / +6
# Chromium, +1 each Nautilus, GIMP, Thunderbird, LibreOffice none; light 2 / 3 idle.
PER_SANDBOX = {
    "osworld": {"max_user_instances": 16, "max_user_watches": 400},
    "light": {"max_user_instances": 12, "max_user_watches": 300},
}
# Warn when the live sandboxes (the one starting included) need this share of the limit: the
# rest is for sandboxes starting at once, a warm start's forks restored beside the sandboxes they
# replace, and the host's own processes of uid 1000.
MARGIN = 0.5


def read_sysctl(name: str) -> int | None:
    """fs.inotify.<name> of this host (host-wide: the containers share the host's kernel and
    user namespace); None when it cannot be read. A procfs read: no disk, fine on the loop."""
    try:
        with open(f"/proc/sys/fs/inotify/{name}") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def raise_command(name: str) -> str:
    return f"sudo sysctl -w fs.inotify.{name}={RAISE_TO[name]}"


def shortfall(limits: dict[str, int | None], sandboxes: int, desktop: str) -> str | None:
    """One line naming the first limit `sandboxes` sandboxes of `desktop` get within reach of
    (need above MARGIN of it), its value and the command that raises it; None when all fit."""
    for name, each in PER_SANDBOX.get(desktop, {}).items():
        limit = limits.get(name)
        if limit is None or sandboxes * each <= limit * MARGIN:
            continue
        return (f"fs.inotify.{name} is {limit} on this host, one per-uid budget for every sandbox (apps run as "
                f"uid 1000, forks count as root) and the host's own processes: {sandboxes} {desktop} sandbox(es) may hold ~{sandboxes * each} "
                f"({each} each with apps open); past it apps lose file monitoring and forks fail to restore. "
                f"Raise it: `{raise_command(name)}` (scripts/setup.sh does, persistently)")
    return None


@dataclass
class InotifyBudget:
    """Checks the host's inotify limits against the live sandboxes; warns once (per process: the
    budget is host-wide, whatever number of providers share it)."""

    read: Callable[[str], int | None] = read_sysctl
    _limits: dict[str, int | None] | None = None
    warned: str | None = None

    def check(self, sandboxes: int, desktop: str | None) -> str | None:
        """Before a sandbox starts: `sandboxes` live ones, itself included, of `desktop` (None: not
        our desktop image, nothing to check). Logs the warning the first time one is due."""
        if self.warned is not None or desktop is None:
            return None
        if self._limits is None:  # read once: raising it needs root, rarely happens mid-run
            self._limits = {name: self.read(name) for name in RAISE_TO}
        why = shortfall(self._limits, sandboxes, desktop)
        if why:
            self.warned = why
            log.warning("%s", why)
        return why


BUDGET = InotifyBudget()


def check_inotify(sandboxes: int, desktop: str | None) -> None:
    """The provider's hook (vm/docker.py): `BUDGET.check`."""
    BUDGET.check(sandboxes, desktop)


def exhausted_hint(criu_errors: str) -> str | None:
    """For a CRIU restore (or dump) whose errors say inotify ran out of instances: the cause and
    the sysctl, with its value here; None otherwise."""
    text = criu_errors.lower()
    if "inotify" not in text or "too many open files" not in text:
        return None
    value = read_sysctl("max_user_instances")
    now = f" (now {value})" if value is not None else ""
    return (f"the host's inotify instances per user are used up: fs.inotify.max_user_instances{now} is one "
            f"budget for every sandbox (forks count as root, apps as uid 1000); raise it: "
            f"`{raise_command('max_user_instances')}`")
