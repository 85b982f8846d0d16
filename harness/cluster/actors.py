"""Two things every head-side actor of a cluster run needs: to live on the head's node, and to be
stopped without the stop itself raising (the actor may be gone already)."""

from __future__ import annotations

import contextlib
from typing import Any


def pinned_here(**options: Any) -> dict[str, Any]:
    """Actor options that place it on this process's node (the head, where the run directory is),
    using no CPU slot and never restarted elsewhere; `options` add to or override them."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    return {"num_cpus": 0, "max_restarts": 0, "scheduling_strategy": here, **options}


def kill_quietly(actor: Any) -> None:
    """ray.kill that tolerates an actor that is already dead or unreachable."""
    import ray

    with contextlib.suppress(Exception):
        ray.kill(actor, no_restart=True)
