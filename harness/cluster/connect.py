"""Connecting the head process to a Ray cluster: `--ray ADDRESS | auto | local:N`, or RAY_ADDRESS.

Addresses: ``HOST:PORT`` (the GCS of a cluster started with ``ray start --head``), ``auto`` (the
cluster this machine's ``ray start`` wrote down), ``env`` (``$RAY_ADDRESS``, Ray's own convention;
what a bare ``--ray`` means) and ``local:N`` (start an N-node loopback cluster for this run, see
local.py). A loopback address turns on the loopback rules (local.py) before Ray is imported, so
the driver never rewrites 127.0.0.1 into the machine's interface address. A bad address is one
line before any task starts: the GCS port is dialled (with a deadline) before ``ray.init``.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from harness.base.errors import ConfigError

CONNECT_TIMEOUT_S = 5.0
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
_HOST_PORT = re.compile(r"^(?:ray://)?(?P<host>\[[^\]]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class RayTarget:
    kind: str  # "address" | "auto" | "local"
    address: str | None = None
    host: str | None = None
    port: int | None = None
    local_nodes: int = 0

    @property
    def loopback(self) -> bool:
        return self.kind == "local" or (self.host or "") in _LOOPBACK_HOSTS


def parse_target(value: str) -> RayTarget:
    """`--ray` value -> what to connect to; ConfigError (one line) when it cannot be one."""
    raw = (value or "").strip()
    if raw in ("", "env"):
        raw = os.environ.get("RAY_ADDRESS", "").strip()
        if not raw:
            raise ConfigError("--ray: no address given and RAY_ADDRESS is not set "
                              "(expected HOST:PORT, auto or local:N)")
    if raw == "auto":
        return RayTarget("auto", address="auto")
    m = re.fullmatch(r"local:(\d+)", raw)
    if m:
        n = int(m.group(1))
        if not 1 <= n <= 16:
            raise ConfigError(f"--ray {raw}: local:N needs 1 <= N <= 16 nodes")
        return RayTarget("local", local_nodes=n)
    m = _HOST_PORT.match(raw)
    if not m or not 0 < int(m.group("port")) < 65536:
        raise ConfigError(f"--ray {raw!r}: expected HOST:PORT (a Ray head's GCS address), auto, env or local:N")
    host = m.group("host").strip("[]")
    return RayTarget("address", address=raw, host=host, port=int(m.group("port")))


def _dial(host: str, port: int) -> None:
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as e:
        raise ConfigError(f"--ray {host}:{port}: no Ray head answers there ({e.strerror or e}); start one with "
                          "`ray start --head` or fix the address") from None


def check_target(value: str) -> RayTarget:
    """Parse `--ray` and, for HOST:PORT, dial the head (blocking, at most CONNECT_TIMEOUT_S): a bad
    address is one line before the run directory is touched."""
    target = parse_target(value)
    if target.kind == "address" and not (target.address or "").startswith("ray://"):
        _dial(target.host or "", target.port or 0)
    return target


@contextlib.contextmanager
def connect(value: str, *, sandboxes_per_local_node: int = 4, quiet: bool = True) -> Iterator[Any]:
    """Connect this process (the head/driver) to the cluster; yields the ``ray`` module. Blocking:
    call it in a worker thread. Disconnects (and stops a ``local:N`` cluster) on exit."""
    target = check_target(value)
    from harness.cluster.local import apply_loopback_env, local_cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if target.loopback:
        apply_loopback_env()
    with contextlib.ExitStack() as stack:
        address = target.address
        if target.kind == "local":
            cluster = stack.enter_context(local_cluster([{"cua_sandbox": sandboxes_per_local_node}] * target.local_nodes))
            address = cluster.address
        import ray

        try:
            ray.init(address=address, log_to_driver=not quiet, configure_logging=False,
                     namespace="cua-harness")
        except (ConnectionError, RuntimeError, ValueError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ConfigError(f"--ray {value}: cannot connect: {first[:300]}") from None
        stack.callback(ray.shutdown)
        yield ray
