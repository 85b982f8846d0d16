"""Faults for tests/test_task_faults.py, loaded into every process of a test run (the harness and
each Ray worker) by a `sitecustomize.py` the test puts first on PYTHONPATH.

- getters `fault_value_error` / `fault_permission_error`: raise those types (our bug / the host);
- `CUA_TEST_WORKER_EVENTS={"<task id>": [event, ...]}`: a cluster worker sends these raw events
  before the attempt's own, as a worker of another version or a hostile one would.
"""

from __future__ import annotations

import json
import os
from typing import Any

from scoring.registry import getter


@getter("fault_value_error")
async def fault_value_error(guest: Any, spec: Any, ctx: Any) -> Any:
    """Test getter: raises ValueError (an evaluation error, never a silent 0)."""
    raise ValueError("fault_value_error: injected by the test")


@getter("fault_permission_error")
async def fault_permission_error(guest: Any, spec: Any, ctx: Any) -> Any:
    """Test getter: raises PermissionError on the host (the environment's fault)."""
    raise PermissionError(13, "Permission denied (injected by the test)")


def _hostile_worker(plan: dict[str, list[list[Any]]]) -> None:
    from harness.cluster import worker

    body = worker.SandboxWorker._attempt_body

    async def attempt_body(self: Any, domain: str, task_id: str, number: int, queue: Any) -> None:
        for event in plan.get(task_id, []):
            await queue.put(tuple(event))
        await body(self, domain, task_id, number, queue)

    worker.SandboxWorker._attempt_body = attempt_body  # type: ignore[method-assign]


if os.environ.get("CUA_TEST_WORKER_EVENTS"):
    _hostile_worker(json.loads(os.environ["CUA_TEST_WORKER_EVENTS"]))
