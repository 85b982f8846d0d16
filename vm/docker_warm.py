"""Warm start: hand out forks of one boot snapshot instead of booting each sandbox (docs/design/fork.md).

An osworld sandbox needs ~3.3 s of CPU to boot GNOME Shell; a fork of a snapshot restores in about
1 s. With warm start (`DockerSettings.warm_starts()`: by default on for the osworld desktop, off
for light; `warm_start` True/False decides), the provider's first start boots one sandbox, waits until it
is ready, snapshots it untouched (the "boot snapshot") and stops it; every start then forks that
snapshot. Concurrent first starts wait for the one snapshot (a lock). Forks keep the snapshot's
guest token, so the sandboxes of one provider share it (docs/design/image.md: the agent's user
cannot read it).

Warm start never fails a start: when forks are unavailable here, or the boot snapshot or a fork
fails (or MAX_FORK_FAILURES forks in a row), the reason is logged once (at INFO when forks are
simply unavailable and warm start was not asked for) and the provider starts fresh sandboxes from
then on; a single failed fork makes only that start a fresh one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio

from harness.base.errors import SandboxError
from vm.types import Snapshot

if TYPE_CHECKING:
    from vm.docker import DockerProvider, DockerSandbox

log = logging.getLogger(__name__)

MAX_FORK_FAILURES = 3  # forks failed in a row before the provider starts fresh sandboxes only


class WarmStarts:
    """The boot snapshot of one DockerProvider and whether warm start is still on."""

    def __init__(self, provider: DockerProvider) -> None:
        self.provider = provider
        self.snapshot: Snapshot | None = None
        self.snapshots_taken = 0  # boot snapshots this provider took (one, unless it failed)
        self.off: str | None = None  # why this provider starts fresh sandboxes instead
        self._lock = anyio.Lock()
        self._failures = 0  # forks failed in a row

    def wanted(self) -> bool:
        """Whether the provider's profile asks for warm starts (DockerSettings.warm_starts)."""
        warm_starts = getattr(self.provider.profile, "warm_starts", None)
        return bool(warm_starts and warm_starts())

    @property
    def by_default(self) -> bool:
        """On because it is the desktop's default, not because the run asked (warm_start None)."""
        return getattr(self.provider.profile, "warm_start", True) is None

    async def start(self) -> DockerSandbox | None:
        """A fork of the boot snapshot (taken on first need), or None: start a fresh sandbox."""
        snap = await self._boot_snapshot()
        if snap is None:
            return None
        try:
            box = await self.provider.fork(snap)
        except SandboxError as e:
            # A restore can fail once under load (snapshots retry two such CRIU errors too): this
            # start goes fresh; only failures in a row say forks do not work here.
            self._failures += 1
            if self._failures >= MAX_FORK_FAILURES:
                await self._turn_off(f"{self._failures} forks of the boot snapshot failed in a row, the last: {e}")
            else:
                log.info("warm start: a fork failed, this sandbox starts fresh: %s", e)
            return None
        self._failures = 0
        return box

    async def _boot_snapshot(self) -> Snapshot | None:
        if self.off is not None:
            return None
        async with self._lock:
            if self.snapshot is not None or self.off is not None:
                return self.snapshot
            why = await self.provider.fork_unavailable(announce=not self.by_default)
            if why:
                await self._turn_off(f"forks are unavailable: {why}", expected=self.by_default)
                return None
            try:
                source = await self.provider.launch_fresh()
            except SandboxError as e:  # a fresh start failed: this start tries again fresh, the next warm
                log.info("warm start: booting the sandbox to snapshot failed (tried again next start): %s", e)
                return None
            try:
                self.snapshot = await self.provider.snapshot(source)
                self.snapshots_taken += 1
                log.info("warm start: boot snapshot %s of %s taken in %.1fs (%d MB); starts are forks of it",
                         self.snapshot.id, source.name, self.snapshot.seconds, self.snapshot.size_bytes >> 20)
            except SandboxError as e:
                await self._turn_off(f"the boot snapshot failed: {e}")
            finally:
                await self.provider.stop(source)
            return self.snapshot

    async def _turn_off(self, why: str, *, expected: bool = False) -> None:
        """From now on fresh starts; `expected` (no forks on this host, warm start not asked for) is
        said at INFO level: a host without CRIU is normal, its starts are only slower."""
        if self.off is None:
            self.off = why
            log.log(logging.INFO if expected else logging.WARNING,
                    "warm start is off for this provider, sandboxes start fresh: %s", why)
        snap, self.snapshot = self.snapshot, None
        if snap is not None:  # forks still being restored from it keep it until they are done
            with anyio.CancelScope(shield=True):
                await self.provider.drop(snap)
