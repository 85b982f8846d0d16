"""The Docker provider: one container per sandbox, driven through aiodocker only.

A sandbox is a container of the desktop image (vm/image/) with no network, memory/CPU/pids
limits, and a per-sandbox host folder bind-mounted at /run/guest where the guest server puts its
unix socket. Each sandbox gets a fresh random bearer token. Containers carry labels
(`cua-harness.managed=1`, `cua-harness.run=<run_id>`) so `gc_containers` can remove leftovers of
crashed runs (`python -m harness vm gc`).

Start = create + start + wait for /health under one deadline; on any failure or cancellation the
container and its folder are removed under a shielded scope. Closing the provider removes every
container it started, whatever state it is in (label `cua-harness.provider=<id>`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import aiodocker
import anyio
from pydantic import BaseModel, ConfigDict, Field

from harness.base.errors import ConfigError, SandboxError
from vm import actions
from vm.client import GuestClient
from vm.docker_fork import DockerForks, gc_snapshots
from vm.docker_gc import (  # re-exported: callers import them from vm.docker
    LABEL_DIR,
    LABEL_MANAGED,
    LABEL_OWNER,
    LABEL_PROVIDER,
    LABEL_RUN,
    gc_containers,
    owner_label,
    remove_networks,
)
from vm.docker_gc import remove_labeled as _remove_labeled
from vm.docker_warm import WarmStarts
from vm.host_limits import check_inotify
from vm.types import (
    MAX_FILE_BYTES,
    MAX_MESSAGE_BYTES,
    ExecResult,
    GuestBacked,
    Observation,
    SandboxInfo,
    Snapshot,
)

if TYPE_CHECKING:
    from vm.providers import SandboxSettings

log = logging.getLogger(__name__)

GUEST_MOUNT = "/run/guest"
SOCKET_NAME = "guest.sock"
MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux; keep a margin


def default_runtime_dir() -> Path:
    """Where per-sandbox socket folders live: /run when root, else XDG_RUNTIME_DIR, else /tmp."""
    if os.geteuid() == 0 and os.access("/run", os.W_OK):
        return Path("/run/cua-harness")
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.access(xdg, os.W_OK):
        return Path(xdg) / "cua-harness"
    return Path(tempfile.gettempdir()) / f"cua-harness-{os.geteuid()}"


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    """What a profile needs to describe one sandbox's container."""

    sid: str
    name: str
    token: str | None
    host_dir: Path
    labels: dict[str, str]
    network: str | None = None  # the provider's own network, when the profile asks for a bridge


class ContainerProfile(Protocol):
    """How to build a container for a kind of image and how to reach its guest server."""

    kind: str
    start_timeout_s: float
    stop_timeout_s: float

    def resolve_image(self) -> str: ...
    def uses_token(self) -> bool: ...
    def container_config(self, spec: SandboxSpec, image: str) -> dict[str, Any]: ...
    def sandbox_extra(self, inspect: dict[str, Any]) -> dict[str, Any]: ...
    def guest_client(self, spec: SandboxSpec, inspect: dict[str, Any]) -> GuestClient: ...
    def ready_update(self) -> dict[str, Any] | None: ...  # resources to set once the guest is ready
    def max_starting(self) -> int | None: ...  # starts that fit the host at once; None: one per core
    def max_boots(self) -> int | None: ...  # fresh boots (not forks) that fit the host at once; None: no limit


class DockerSettings(BaseModel):
    """Settings of the desktop-image profile (our own image, guest on a unix socket)."""

    model_config = ConfigDict(extra="forbid")

    kind: str = "desktop"
    image: str | None = Field(None, description="image tag; default: the tag of the current vm/image build context")
    screen_width: int = Field(1920, ge=320, le=7680)
    screen_height: int = Field(1080, ge=200, le=4320)
    screen_depth: int = Field(24, description="Xvfb depth: 16, 24 or 32")
    desktop: Literal["osworld", "light"] = Field("osworld", description="osworld: GNOME Shell as on OSWorld's VM; "
                                                 "light: openbox (smaller, faster to start)")
    memory_mb: int = Field(2048, ge=256, description="hard memory limit per sandbox (no swap)")
    cpus: float = Field(1.0, gt=0, description="CPU quota per sandbox, in cores")
    start_cpus: float | None = Field(None, gt=0, description="CPU quota while a sandbox starts (until its guest "
                                     "is ready), then `cpus`; default twice `cpus`, at most the host's cores")
    pids_limit: int = Field(512, ge=64)
    shm_mb: int = Field(512, ge=64, description="/dev/shm size; LibreOffice needs more than Docker's 64 MB")
    network: str = Field("none", description="Docker network mode; 'none' unless a task needs the network; "
                         "'bridge' means a network of this provider's own with inter-container traffic off")
    start_timeout_s: float = Field(120.0, gt=0, description="create + start + guest ready, per sandbox (GNOME Shell "
                                   "took up to 45 s to draw its dock on a 2-core host at load 40)")
    stop_timeout_s: float = Field(30.0, gt=0)
    request_timeout_s: float = Field(30.0, gt=0, description="default deadline of one guest request")
    runtime_dir: Path | None = Field(None, description="parent of the per-sandbox socket folders")
    env: dict[str, str] = Field(default_factory=dict, description="extra environment for the guest")
    max_file_bytes: int = Field(MAX_FILE_BYTES, ge=1, description="largest file taken from a sandbox (streamed "
                                "to disk); more is a task error")
    max_message_bytes: int = Field(MAX_MESSAGE_BYTES, ge=1, description="largest response or WebSocket message "
                                   "held in memory from a sandbox; more is a task error")
    snapshot_dir: Path | None = Field(None, description="parent of the checkpoint folders of snapshots (forks)")
    restore_timeout_s: float = Field(60.0, gt=0, description="deadline of a fork's CRIU restore (0.3-2 s here); "
                                     "a restore still running then is killed and the fork fails")
    warm_start: bool | None = Field(None, description="start sandboxes as forks of one snapshot of a freshly "
                                    "booted, untouched sandbox, taken on the first start (~1 s instead of a 2.7 s "
                                    "GNOME boot); they share its guest token. Default (None): on for the osworld "
                                    "desktop, off for light. Falls back to fresh starts where forks fail or this "
                                    "host cannot fork (docs/design/fork.md)")

    def warm_starts(self) -> bool:
        """Whether starts are forks of a boot snapshot: as asked, else for the osworld desktop, whose
        boot costs ~3.3 s of CPU (a fork ~1 s, image.md); a light boot is already ~0.4 s."""
        return self.desktop == "osworld" if self.warm_start is None else self.warm_start

    def resolve_image(self) -> str:
        if self.image:
            return self.image
        from vm.image.build import image_tag  # the image helper's contract

        return image_tag()

    def uses_token(self) -> bool:
        return True

    def container_config(self, spec: SandboxSpec, image: str) -> dict[str, Any]:
        env = {
            "SCREEN_WIDTH": str(self.screen_width),
            "SCREEN_HEIGHT": str(self.screen_height),
            "SCREEN_DEPTH": str(self.screen_depth),
            "DESKTOP": self.desktop,
            "GUEST_LISTEN": f"unix:{GUEST_MOUNT}/{SOCKET_NAME}",
            **self.env,
            "GUEST_TOKEN": spec.token or "",
        }
        mem = self.memory_mb * 1024 * 1024
        return {
            "Image": image,
            "Env": [f"{k}={v}" for k, v in env.items()],
            "Labels": spec.labels,
            "Hostname": "desktop",  # same in every sandbox: identical screens replay from the LLM cache
            "HostConfig": {
                "Binds": [f"{spec.host_dir}:{GUEST_MOUNT}"],
                "NetworkMode": spec.network or self.network,
                "Memory": mem,
                "MemorySwap": mem,  # equal to Memory: no swap, so a runaway app is killed, not the host slowed
                "NanoCpus": int(self.starting_cpus() * 1e9),
                "PidsLimit": self.pids_limit,
                "ShmSize": self.shm_mb * 1024 * 1024,
                "Init": False,
            },
        }

    def starting_cpus(self) -> float:
        """GNOME Shell needs ~3.3 s of CPU to draw its bar and dock, spread over several processes:
        with 2 cores instead of 1 a sandbox was ready in 2.5-3.1 s instead of 3.5-3.7 s (image.md).
        The quota drops to `cpus` once the guest is ready (ready_update)."""
        if self.start_cpus is not None:
            return self.start_cpus
        return max(self.cpus, min(2 * self.cpus, float(os.cpu_count() or 1)))

    def ready_update(self) -> dict[str, Any] | None:
        return {"NanoCpus": int(self.cpus * 1e9)} if self.starting_cpus() != self.cpus else None

    def max_boots(self) -> int | None:
        """Fresh boots that fit the host at once. A GNOME boot is CPU-bound (~3.3 s of CPU): two in
        flight on 2 cores each took twice as long and all 16 of a bench were ready no sooner (start
        p50 3.7 s vs 1.95 s, 30.8 s vs 32.5 s for all, image.md). So as many boots as their start
        quotas fit in the host's cores. Openbox starts are not CPU-bound (Docker's own create/start):
        None, one per core."""
        if self.desktop != "osworld":
            return None
        return max(1, int((os.cpu_count() or 1) // self.starting_cpus()))

    def max_starting(self) -> int | None:
        """Starts in flight: with warm start one per core (a fork restores in ~1 s, not CPU-bound as a
        boot is; the provider still holds its own fresh boots to max_boots), else max_boots."""
        return None if self.warm_starts() else self.max_boots()

    def sandbox_extra(self, inspect: dict[str, Any]) -> dict[str, Any]:
        return {}

    def guest_client(self, spec: SandboxSpec, inspect: dict[str, Any]) -> GuestClient:
        return GuestClient(
            socket_path=str(spec.host_dir / SOCKET_NAME),
            token=spec.token,
            name=spec.name,
            request_timeout=self.request_timeout_s,
            max_file_bytes=self.max_file_bytes,
            max_message_bytes=self.max_message_bytes,
            # GNOME Shell draws its bar and dock seconds after X is up: a task must not start on
            # a black screen, so an osworld sandbox is ready only once they are (docs/design/image.md).
            health_path="/health?desktop=1" if self.desktop == "osworld" else "/health",
        )


class DockerSandbox(GuestBacked):
    """One running container + its guest client. Implements `vm.types.Sandbox`."""

    def __init__(
        self,
        provider: DockerProvider,
        spec: SandboxSpec,
        container_id: str,
        guest: GuestClient,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.provider = provider
        self.spec = spec
        self.container_id = container_id
        self.guest = guest
        self.info = SandboxInfo(
            id=container_id,
            provider=provider.name,
            run_id=provider.run_id,
            socket_path=guest.socket_path,
            base_url=None if guest.socket_path else guest.base_url,
            labels=dict(spec.labels),
            extra={"name": spec.name, "sid": spec.sid, **(extra or {})},
        )
        self.start_s: float | None = None  # create -> guest ready, measured by the provider
        self._screen: tuple[int, int] | None = None

    def __repr__(self) -> str:
        return f"DockerSandbox({self.spec.name})"

    @property
    def name(self) -> str:
        return self.spec.name

    async def screen_size(self) -> tuple[int, int]:
        if self._screen is None:
            self._screen = await self.guest.screen_size()
        return self._screen

    async def observe(self, *, accessibility: bool = True) -> Observation:
        """Screenshot and accessibility tree fetched concurrently; screen size cached after the first call."""
        got: dict[str, Any] = {}
        errors: list[SandboxError] = []

        async def fetch(key: str, fn: Any) -> None:
            try:
                got[key] = await fn()
            except SandboxError as e:  # raised below as itself, not wrapped in an ExceptionGroup
                errors.append(e)
                tg.cancel_scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(fetch, "shot", self.guest.screenshot)
            if accessibility:
                tg.start_soon(fetch, "tree", self.guest.accessibility)
            tg.start_soon(fetch, "size", self.screen_size)
        if errors:
            raise errors[0]
        return Observation(screenshot=got["shot"], accessibility_tree=got.get("tree"), screen_size=got["size"])

    async def execute(self, action: Any, *, timeout: float = 120.0) -> ExecResult:
        """Run a pyautogui string or computer_13 dict. WAIT/FAIL/DONE return a success no-op result
        without contacting the guest; invalid actions raise vm.actions.ActionError."""
        planned = actions.plan(action, screen_size=self._screen)
        if planned.kind == "special":
            return ExecResult(returncode=0, output="", error="", status="success")
        return await self.guest.execute(planned.command(), timeout=timeout)

    async def alive(self) -> bool:
        return await self.provider.is_alive(self)

    async def close(self) -> None:
        await self.provider.stop(self)


class DockerProvider:
    """Starts sandboxes as containers. Use as `async with DockerProvider(settings) as provider:`.

    Implements `vm.types.Provider`. `profile` is DockerSettings (our desktop image) or
    vm.osworld_profile.OSWorldSettings (OSWorld's QEMU image).
    """

    name = "docker"
    needs_image = True  # the desktop image: built (or checked against the head's) before the first start

    @property
    def max_starting(self) -> int | None:
        """Starts cost host CPU: the profile says how many fit at once (None: one per core)."""
        return self.profile.max_starting()

    def __init__(self, profile: ContainerProfile | None = None, *, run_id: str | None = None) -> None:
        self.profile: ContainerProfile = profile or DockerSettings()
        self.run_id = run_id or time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
        self.provider_id = secrets.token_hex(6)
        runtime = getattr(self.profile, "runtime_dir", None)
        self.runtime_dir = Path(runtime) if runtime else default_runtime_dir()
        self._docker: aiodocker.Docker | None = None
        self._image: str | None = None
        self._live: dict[str, DockerSandbox] = {}
        self._closed = False
        self._network: str | None = None
        self._network_lock = anyio.Lock()
        self.forks = DockerForks(self, getattr(self.profile, "snapshot_dir", None))
        self.warm = WarmStarts(self)  # used when the profile asks for warm_start
        self._boots: anyio.CapacityLimiter | None = None  # fresh boots in flight (profile.max_boots)
        self.orphan_images: set[str] = set()  # dropped snapshots' images a fork still used

    @staticmethod
    def clock_regions(settings: SandboxSettings) -> tuple[tuple[float, float, float, float], ...]:
        """The osworld desktop's top-bar clock (vm.providers.clock_regions): centred in the 27 px
        bar; with weekday and seconds shown it spans x 932-1058 of 1920 (measured), so 855-1135
        leaves room for longer dates. The light desktop shows no clock."""
        if settings.desktop != "osworld":
            return ()
        return ((855 / 1920, 0.0, 1135 / 1920, min(1.0, 28 / settings.screen_height)),)

    @classmethod
    def from_settings(cls, settings: SandboxSettings, run_id: str) -> DockerProvider:
        return cls(DockerSettings(image=settings.image, screen_width=settings.screen_width,
                                  screen_height=settings.screen_height, network=settings.network,
                                  max_file_bytes=settings.max_file_bytes, max_message_bytes=settings.max_message_bytes,
                                  desktop=settings.desktop,  # type: ignore[arg-type]  # checked by DockerSettings
                                  warm_start=settings.warm_start),
                   run_id=run_id)

    async def __aenter__(self) -> DockerProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def docker(self) -> aiodocker.Docker:
        if self._docker is None:
            try:
                self._docker = aiodocker.Docker()
            except Exception as e:
                raise SandboxError(f"no Docker engine found (DOCKER_HOST or /var/run/docker.sock): {e}") from e
        return self._docker

    @property
    def image(self) -> str:
        if self._image is None:
            self._image = self.profile.resolve_image()
        return self._image

    def live(self) -> list[DockerSandbox]:
        return list(self._live.values())

    # --- start / stop -----------------------------------------------------------------------------

    async def start(self) -> DockerSandbox:
        """A fresh sandbox, or with `warm_start` a fork of the boot snapshot (vm/docker_warm.py);
        `start_s` counts from this call either way."""
        t0 = anyio.current_time()
        box = await self.warm.start() if self.warm.wanted() else None
        if box is None:
            box = await self.launch_fresh()
        box.start_s = anyio.current_time() - t0
        return box

    async def launch_fresh(self) -> DockerSandbox:
        """Boot a new sandbox of the image with a token of its own, at most `max_boots` at once (the
        pool's limit of starts in flight counts forks too)."""
        token = secrets.token_urlsafe(32) if self.profile.uses_token() else None
        if self._boots is None and (most := self.profile.max_boots()):
            self._boots = anyio.CapacityLimiter(most)
        async with self._boots or contextlib.nullcontext():
            return await self.launch(image=self.image, token=token)

    async def launch(self, *, image: str, token: str | None,
                     restore: Callable[[str, str], Awaitable[None]] | None = None,
                     extra: dict[str, Any] | None = None) -> DockerSandbox:
        """Create and start one container of `image` and wait for its guest. `restore(container id,
        name)`, for forks, starts the created container in place of a plain start (from a checkpoint)."""
        if self._closed:
            raise SandboxError("docker provider is closed; cannot start a sandbox")
        check_inotify(len(self._live) + 1, getattr(self.profile, "desktop", None))  # warns once when near the limit
        sid = secrets.token_hex(6)
        name = f"cua-{sid}"
        network = await self._isolated_network() if getattr(self.profile, "network", None) == "bridge" else None
        spec = SandboxSpec(
            sid=sid,
            name=name,
            token=token,
            host_dir=self.runtime_dir / sid,
            labels={
                LABEL_MANAGED: "1",
                LABEL_RUN: self.run_id,
                LABEL_PROVIDER: self.provider_id,
                LABEL_DIR: str(self.runtime_dir / sid),
                LABEL_OWNER: owner_label(),
                "cua-harness.kind": self.profile.kind,
            },
            network=network,
        )
        if len(str(spec.host_dir / SOCKET_NAME)) > MAX_SOCKET_PATH:
            raise ConfigError(f"runtime_dir {self.runtime_dir} is too long for a unix socket path; use a shorter one")
        timeout = self.profile.start_timeout_s
        guest: GuestClient | None = None
        t0 = anyio.current_time()
        try:
            await anyio.to_thread.run_sync(_make_sandbox_dir, spec.host_dir)
            # The guest's own deadline fires first, with its last error; this one catches a hung engine.
            with anyio.fail_after(timeout + 5.0):
                config = self.profile.container_config(spec, image)
                update = self.profile.ready_update()
                if restore is not None and update:
                    # A restore runs with the resources its snapshot ran with: CRIU failed restores
                    # into a container with the start-time CPU quota ("criu failed: type NOTIFY").
                    config["HostConfig"].update(update)
                    update = None
                # Shielded: a create cancelled mid-request may still complete in the engine, after
                # our cleanup looked for it. Letting it finish (bounded) means cleanup finds it.
                with anyio.CancelScope(shield=True), anyio.fail_after(30.0):
                    container = await self.docker.containers.create(config, name=name)
                if restore is not None:
                    await restore(container.id, name)
                else:
                    await container.start()
                inspect = await container.show()
                guest = self.profile.guest_client(spec, inspect)
                remaining = max(0.5, timeout - (anyio.current_time() - t0))
                await guest.wait_ready(remaining, check=lambda: self._check_running(container, name))
                if update:  # e.g. the start-time CPU quota back to the running one
                    await self.docker._query_json(f"containers/{container.id}/update", "POST", data=update)
            box = DockerSandbox(self, spec, container.id, guest, {**self.profile.sandbox_extra(inspect), **(extra or {})})
            box.start_s = anyio.current_time() - t0
            self._live[sid] = box
            log.debug("%s ready in %.2fs", name, box.start_s)
            return box
        except BaseException as e:
            with anyio.CancelScope(shield=True):
                await self._destroy(spec, guest)
            if isinstance(e, aiodocker.DockerError):
                if e.status == 404 and "image" in str(e.message).lower():
                    raise SandboxError(
                        f"{name}: image {image} not found; build it with `python -m harness vm build`"
                    ) from e
                raise SandboxError(f"{name}: docker refused to start the container: {e.message}") from e
            if isinstance(e, TimeoutError):
                raise SandboxError(f"{name}: not ready within {timeout:.0f}s (docker engine slow or stuck)") from e
            raise

    async def _isolated_network(self) -> str:
        """This provider's bridge network with inter-container traffic off (created on first use):
        its sandboxes reach the internet but not each other's ports, nor other runs' sandboxes.
        Enforced by the engine's iptables rules; an engine started with --iptables=false does not."""
        async with self._network_lock:
            if self._network is None:
                name = f"cua-net-{self.provider_id}"
                config = {
                    "Name": name,
                    "Driver": "bridge",
                    "CheckDuplicate": True,
                    "Options": {"com.docker.network.bridge.enable_icc": "false"},
                    "Labels": {LABEL_MANAGED: "1", LABEL_RUN: self.run_id, LABEL_PROVIDER: self.provider_id,
                               LABEL_OWNER: owner_label()},
                }
                try:
                    with anyio.fail_after(30.0):
                        await self.docker.networks.create(config)
                except aiodocker.DockerError as e:
                    raise SandboxError(f"docker could not create the sandboxes' network {name}: {e.message}") from e
                self._network = name
            return self._network

    async def stop(self, sandbox: Any) -> None:
        """Remove the sandbox's container (forced) and its socket folder. Safe to call twice."""
        if not isinstance(sandbox, DockerSandbox):
            raise TypeError(f"DockerProvider.stop needs a DockerSandbox, got {type(sandbox).__name__}")
        with anyio.CancelScope(shield=True):
            self._live.pop(sandbox.spec.sid, None)
            await self._destroy(sandbox.spec, sandbox.guest)

    async def _destroy(self, spec: SandboxSpec, guest: GuestClient | None) -> None:
        """Best effort, bounded: close the client, remove the container, remove the folder."""
        if guest is not None:
            await guest.aclose()
        with anyio.move_on_after(self.profile.stop_timeout_s) as scope:
            try:
                await self.docker.containers.container(spec.name).delete(force=True, v=True)
            except aiodocker.DockerError as e:
                if e.status not in (404, 409):  # gone already / removal already in progress
                    log.warning("%s: container removal failed: %s", spec.name, e.message)
        if scope.cancelled_caught:
            log.warning("%s: container removal timed out; `python -m harness vm gc` will remove it", spec.name)
        await anyio.to_thread.run_sync(shutil.rmtree, spec.host_dir, True)

    async def _check_running(self, container: Any, name: str) -> None:
        """Raise SandboxError (with the last log lines) when the container is no longer running."""
        info = await container.show()
        state = info.get("State", {})
        if state.get("Running"):
            return
        try:
            lines = await container.log(stdout=True, stderr=True, tail=15)
            tail = " | ".join(line.strip() for line in lines if line.strip())[-800:]
        except aiodocker.DockerError:
            tail = "(no logs)"
        raise SandboxError(
            f"{name}: container {state.get('Status', 'stopped')} (exit code {state.get('ExitCode')}) "
            f"before the guest was ready; last log lines: {tail}"
        )

    # --- snapshots and forks (vm/docker_fork.py) ----------------------------------------------------

    async def fork_unavailable(self, *, announce: bool = True) -> str | None:
        return await self.forks.unavailable(announce=announce)

    async def snapshot(self, sandbox: Any) -> Snapshot:
        if not isinstance(sandbox, DockerSandbox):
            raise TypeError(f"DockerProvider.snapshot needs a DockerSandbox, got {type(sandbox).__name__}")
        return await self.forks.snapshot(sandbox)

    async def fork(self, snapshot: Snapshot) -> DockerSandbox:
        return await self.forks.fork(snapshot)

    async def drop(self, snapshot: Snapshot) -> None:
        await self.forks.drop(snapshot)

    # --- health and resources ---------------------------------------------------------------------

    async def is_alive(self, sandbox: DockerSandbox) -> bool:
        """Container running and guest answering /health."""
        try:
            with anyio.fail_after(10.0):
                info = await self.docker.containers.container(sandbox.container_id).show()
        except (aiodocker.DockerError, TimeoutError):
            return False
        if not info.get("State", {}).get("Running"):
            return False
        return await sandbox.guest.health()

    async def _stats(self, sandbox: DockerSandbox) -> dict[str, Any]:
        with anyio.fail_after(15.0):
            stats = await self.docker.containers.container(sandbox.container_id).stats(stream=False)
        entry = stats[0] if isinstance(stats, list) and stats else stats
        return entry or {}

    async def cpu_seconds(self, sandbox: DockerSandbox) -> float | None:
        """CPU time the container's cgroup has used so far (None if unavailable)."""
        usage = ((await self._stats(sandbox)).get("cpu_stats") or {}).get("cpu_usage") or {}
        total = usage.get("total_usage")
        return None if total is None else int(total) / 1e9

    async def memory_bytes(self, sandbox: DockerSandbox) -> int | None:
        """Resident memory of the container's cgroup: usage minus page cache (None if unavailable)."""
        mem = (await self._stats(sandbox)).get("memory_stats") or {}
        usage = mem.get("usage")
        if usage is None:
            return None
        detail = mem.get("stats") or {}
        cache = detail.get("cache", detail.get("inactive_file", 0))  # cgroup v1 / v2
        return int(usage) - int(cache or 0)

    async def kill(self, sandbox: DockerSandbox) -> None:
        """SIGKILL the container from outside (tests and chaos drills)."""
        with anyio.fail_after(15.0):
            await self.docker.containers.container(sandbox.container_id).kill(signal="SIGKILL")

    # --- cleanup ----------------------------------------------------------------------------------

    async def gc(self, *, run_id: str | None = None, stale_only: bool = False) -> int:
        """Remove leftover containers of `run_id` (every run's if None), and its fork snapshots
        (image and checkpoint folder): a worker killed with a warm start's boot snapshot left one of
        ~300 MB. The number of containers removed."""
        removed = await gc_containers(run_id, docker=self.docker, stale_only=stale_only)
        snapshots = await gc_snapshots(self.docker, run_id, stale_only=stale_only)
        if snapshots:
            log.info("removed %d leftover snapshot(s) of forked sandboxes", snapshots)
        return removed

    async def aclose(self) -> None:
        """Remove every container this provider started (even half-started ones), then disconnect."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as tg:
                for box in list(self._live.values()):
                    tg.start_soon(self.stop, box)
            if self._docker is not None:
                await self.forks.aclose()
                for image in self.orphan_images:  # their forks are gone now
                    try:
                        await self._docker.images.delete(image, force=False)
                    except aiodocker.DockerError as e:
                        log.info("snapshot image %s kept: %s", image, e.message)
                try:
                    await _remove_labeled(self._docker, [f"{LABEL_PROVIDER}={self.provider_id}"])
                    await remove_networks(self._docker, [f"{LABEL_PROVIDER}={self.provider_id}"])
                except (aiodocker.DockerError, OSError, TimeoutError) as e:
                    log.warning("could not sweep this provider's containers (`python -m harness vm gc` will): %s", e)
                finally:
                    await self._docker.close()
                    self._docker = None


def _make_sandbox_dir(path: Path) -> None:
    # The parent is private to this user. The guest runs as root in the container and creates its
    # socket here; the agent's user (uid 1000 there) must not be able to add or replace entries,
    # so the folder is not writable by others (the entrypoint takes it when we are uid 1000 too).
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.mkdir(mode=0o755)
    path.chmod(0o755)
