"""A worker's connection to one of the run's LLM services on the head (limiter or cache).

Every wait on the head has a deadline; a dead or silent service becomes a one-line
`LLMCallError(kind="service")` instead of a Ray traceback or a hang. The worker is known to the
services by an owner id; when the worker is a Ray actor its handle is registered once, so the
services can tell that it died and take back what it held (see lease_limits.py).
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from typing import Any

import anyio

from harness.base.redact import one_line
from harness.llm.retry import LLMCallError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkSettings:
    """Timing of the worker <-> service protocol (the same for every worker of a run)."""

    wait_s: float = 30.0  # longest a single acquire/claim waits inside the service before answering "wait"
    rpc_timeout_s: float = 30.0  # added to wait_s: the deadline for any one answer from the head
    lease_grace_s: float = 10.0  # a lease lives at most the endpoint's timeout_s plus this
    claim_ttl_s: float = 900.0  # a cache claim (one paid request, retries included) lives at most this
    housekeeping_s: float = 1.0  # how often the services expire leases and probe owners holding some
    probe_timeout_s: float = 5.0  # an owner that does not answer a probe is not presumed dead


@dataclass(frozen=True)
class Owner:
    """Who holds leases and claims: a worker actor (with its handle) or another process."""

    id: str
    handle: Any = None  # the Ray actor handle, when the owner is an actor

    @classmethod
    def current(cls) -> Owner:
        import ray

        if ray.is_initialized():
            ctx = ray.get_runtime_context()
            actor_id = ctx.get_actor_id()
            if actor_id:
                return cls(f"actor-{actor_id}", ctx.current_actor)
        return cls(f"proc-{os.getpid()}-{uuid.uuid4().hex[:8]}")


class ServiceLink:
    """Calls to one service actor with deadlines; the owner is registered with the first call."""

    def __init__(self, actor: Any, owner: Owner, what: str, settings: LinkSettings) -> None:
        self.actor = actor
        self.owner = owner
        self.what = what  # "limiter" or "cache": named in errors
        self.settings = settings
        self._registered = False

    def _register(self) -> None:
        if not self._registered:
            # Submitted before the call that needs it; a caller's calls start in submission order.
            self.actor.register_owner.remote(self.owner.id, self.owner.handle)
            self._registered = True

    async def call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        """`await actor.method(*args)` within `timeout` (default: the RPC deadline)."""
        self._register()
        deadline = timeout if timeout is not None else self.settings.rpc_timeout_s
        ref = getattr(self.actor, method).remote(*args)
        return await self.wait(ref, deadline, method)

    async def wait(self, ref: Any, timeout: float, method: str) -> Any:
        from ray.exceptions import RayError, RayTaskError

        try:
            with anyio.fail_after(timeout):
                return await ref
        except TimeoutError:
            raise LLMCallError(
                f"the run's LLM {self.what} on the head did not answer {method} within {timeout:.0f} s",
                kind="service", retryable=True) from None
        except RayTaskError as e:  # raised inside the service: its own message, not Ray's traceback
            cause = e.cause if isinstance(getattr(e, "cause", None), BaseException) else e
            raise LLMCallError(f"the run's LLM {self.what} failed in {method}: {one_line(str(cause), 240)}",
                               kind="service", retryable=True) from None
        except RayError as e:  # the head's actor died (the head stopped) or cannot be reached
            raise LLMCallError(f"the run's LLM {self.what} on the head is unreachable "
                               f"({type(e).__name__}); did the head process stop?",
                               kind="service", retryable=True) from None

    def send(self, method: str, *args: Any) -> None:
        """Fire and forget (releases on cancellation, pauses): never blocks, never raises."""
        try:
            self._register()
            getattr(self.actor, method).remote(*args)
        except Exception as e:  # the service is gone: what it tracked dies with it
            log.debug("LLM %s: %s not sent (%s)", self.what, method, type(e).__name__)
