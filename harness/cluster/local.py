"""A multi-node Ray cluster on this machine, loopback only: for tests, benchmarks and ``--ray local:N``.

Every node is a separate raylet (its own resources, its own worker processes) started through
``ray.cluster_utils.Cluster``, the way Ray's own tests build clusters. On these machines Ray must
talk to 127.0.0.1 only (docs/design/cluster.md, "Loopback"): every node binds 127.0.0.1, no
dashboard, usage statistics off, and ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` so neither the
nodes nor the driver rewrite 127.0.0.1 into the machine's interface address.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

LOOPBACK = "127.0.0.1"

# Set in os.environ before any Ray process starts, so every raylet, GCS and worker inherits them.
LOOPBACK_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}


def apply_loopback_env() -> None:
    """Put the loopback rules into this process's environment (inherited by every Ray child).

    Ray reads ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` once, when ``ray._private.ray_constants`` is
    first imported; if Ray was imported before this call, the constant is set in place too.
    """
    for key, value in LOOPBACK_ENV.items():
        os.environ[key] = value
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False


def _node_args(resources: dict[str, float] | None, cpus: int) -> dict[str, Any]:
    return {
        "num_cpus": cpus,
        "resources": dict(resources or {}),
        "node_ip_address": LOOPBACK,
        "include_dashboard": False,
        # Small object stores: the machine is shared; screenshots stream through and are freed.
        "object_store_memory": 100 * 1024 * 1024,
    }


@dataclass
class LocalCluster:
    """Handle on a running local cluster: its address, its worker nodes, and ways to hurt it."""

    _cluster: Any
    cpus_per_node: int
    _nodes: list[Any] = field(default_factory=list)

    @property
    def address(self) -> str:
        return str(self._cluster.address)

    @property
    def node_ids(self) -> list[str]:
        """Ray node ids (hex) of the worker nodes added so far, in order (killed ones included)."""
        return [n.node_id for n in self._nodes]

    @property
    def session_dir(self) -> str:
        """The cluster's Ray session folder (its logs are in `logs/`)."""
        return str(self._cluster.head_node.get_session_dir_path())

    @property
    def head_node_id(self) -> str:
        return str(self._cluster.head_node.node_id)

    def add_node(self, resources: dict[str, float] | None = None, *, cpus: int | None = None) -> str:
        """Start one more node with `resources`; returns its node id once it is alive."""
        node = self._cluster.add_node(wait=True, **_node_args(resources, cpus or self.cpus_per_node))
        self._nodes.append(node)
        return str(node.node_id)

    def kill_node(self, i: int) -> None:
        """Kill worker node `i` abruptly (no graceful drain): its raylet and workers die at once."""
        self._cluster.remove_node(self._nodes[i], allow_graceful=False)

    def shutdown(self) -> None:
        self._cluster.shutdown()


@contextlib.contextmanager
def local_cluster(
    nodes: list[dict[str, float]],
    *,
    head_resources: dict[str, float] | None = None,
    cpus_per_node: int = 1,
) -> Iterator[LocalCluster]:
    """Start a head node plus one node per entry of `nodes` (each with those custom resources).

    The head node offers `head_resources` (none by default, so sandbox work lands on the worker
    nodes) and `cpus_per_node` CPUs, like every node. The caller connects with
    ``harness.cluster.connect.connect(cluster.address)`` (or ``ray.init(address=...)`` after
    ``apply_loopback_env()``). Everything is stopped on exit, on every path.
    """
    apply_loopback_env()
    from ray.cluster_utils import Cluster

    # Ray's exit hooks (and the reaper that kills the nodes when this process dies) install signal
    # handlers, which only the main thread may do; off it (`--ray local:N` connects in a worker
    # thread) the nodes are stopped by the `finally` below.
    cluster = Cluster(
        initialize_head=True,
        connect=False,
        head_node_args=_node_args(head_resources, cpus_per_node),
        shutdown_at_exit=threading.current_thread() is threading.main_thread(),
    )
    handle = LocalCluster(cluster, cpus_per_node)
    try:
        for resources in nodes:
            handle.add_node(resources)
        yield handle
    finally:
        handle.shutdown()
