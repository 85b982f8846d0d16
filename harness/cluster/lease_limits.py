"""Provider limits that hold across a cluster: one limiter on the head, leases for the workers.

`SharedLimiter` (inside the limiter actor on the head) keeps, per (endpoint, model), the very
`LocalLimits` a single-machine run uses: the adaptive in-flight cap and the rpm/tpm gate. A
worker's `LeasedLimits` (the `EndpointLimits` its endpoints use) asks it for a lease before each
send; the limiter waits for an in-flight slot and then the rate permit, inside its own event loop
(no polling), records the send, and answers "granted". After the send the worker releases the
lease with the real token usage (success) or without (failure); a 429 and Retry-After pauses go
to the limiter too, so the whole cluster backs off together. One round trip per request: the
release is a message that needs no answer.

The leasing rule (what happens to a slot whose holder is gone):
- a lease is released by its holder when the send ends, on every path (a message that needs no
  answer, so cancellation cannot skip it);
- a holder cancelled while still waiting abandons its lease id; the limiter then stops the wait,
  or releases the lease if it was granted meanwhile (or remembers the id if it arrives later);
- every lease carries its owner's id: the limiter probes owners that hold leases (their actor
  handle, once per `housekeeping_s`) and releases all leases of an owner found dead;
- and every lease expires `timeout_s + lease_grace_s` after its grant (no send may take longer:
  each attempt is bounded by the endpoint's timeout), whoever holds it. A release that arrives
  after its lease expired is ignored, so a slot is never freed twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio

from harness.base.errors import ConfigError
from harness.cluster.service_link import LinkSettings, ServiceLink
from harness.llm.config import EndpointConfig
from harness.llm.limits import LocalLimits, Ticket
from harness.llm.providers import local_limits
from harness.llm.retry import LLMCallError

log = logging.getLogger(__name__)
_TOMBSTONE_S = 600.0  # how long an abandoned lease id is remembered (its acquire may still arrive)


@dataclass
class _Lease:
    id: str
    owner: str
    key: tuple[str, str]
    ticket: Ticket
    deadline: float


class SharedLimiter:
    """Every endpoint's limits for the whole cluster, lent out as leases. One event loop."""

    def __init__(self, endpoints: dict[str, EndpointConfig], settings: LinkSettings | None = None) -> None:
        self.configs = endpoints
        self.settings = settings or LinkSettings()
        self._limits: dict[tuple[str, str], LocalLimits] = {}
        self._leases: dict[str, _Lease] = {}
        self._pending: dict[str, tuple[str, anyio.CancelScope]] = {}  # acquisitions under way
        self._abandoned: dict[str, float] = {}  # lease ids given up before their grant
        self.totals = {"granted": 0, "released": 0, "expired": 0, "reclaimed": 0, "abandoned": 0,
                       "rate_limited": 0, "tokens": 0}

    def limits(self, endpoint: str, model: str) -> LocalLimits:
        key = (endpoint, model)
        found = self._limits.get(key)
        if found is None:
            config = self.configs.get(endpoint)
            if config is None:
                raise ConfigError(f"endpoint {endpoint!r} is not in the run's providers config "
                                  f"(known: {', '.join(sorted(self.configs)) or 'none'})")
            found = self._limits[key] = local_limits(config)
        return found

    def _reply(self, state: str, limits: LocalLimits | None) -> dict[str, Any]:
        if limits is None:
            return {"state": state, "paused_s": 0.0, "load": 0.0, "limit": 0}
        return {"state": state, "paused_s": limits.paused_for(), "load": limits.load(), "limit": limits.slots.cap}

    async def acquire(self, lease_id: str, owner: str, endpoint: str, model: str, tokens: int,
                      wait_s: float) -> dict[str, Any]:
        """Wait up to `wait_s` for a slot and the rate permit: "granted", "wait" (ask again with
        the same id) or "abandoned". Asking again for a granted id answers "granted" again."""
        if lease_id in self._leases:
            return self._reply("granted", self._limits[self._leases[lease_id].key])
        if lease_id in self._abandoned or lease_id in self._pending:
            return self._reply("abandoned", None)
        limits = self.limits(endpoint, model)
        scope = anyio.CancelScope()
        self._pending[lease_id] = (owner, scope)
        try:
            with scope, anyio.move_on_after(wait_s):
                ticket = await limits.acquire(tokens)
                timeout = self.configs[endpoint].timeout_s + self.settings.lease_grace_s
                self._leases[lease_id] = _Lease(lease_id, owner, (endpoint, model), ticket,
                                                anyio.current_time() + timeout)
                self.totals["granted"] += 1
                return self._reply("granted", limits)
        finally:
            self._pending.pop(lease_id, None)
        return self._reply("abandoned" if scope.cancel_called else "wait", limits)

    def release(self, lease_id: str, actual_tokens: int | None) -> dict[str, Any]:
        """End a lease: `actual_tokens` for a successful send (settles usage, widens AIMD), None after
        a failure (the estimate stays charged, as on one machine)."""
        lease = self._leases.pop(lease_id, None)
        if lease is None:  # expired or reclaimed already: its slot was freed then
            return self._reply("unknown", None)
        self.totals["released"] += 1
        return self._reply("released", self._end(lease, actual_tokens))

    def _end(self, lease: _Lease, actual_tokens: int | None) -> LocalLimits:
        limits = self._limits[lease.key]
        if actual_tokens is not None:
            limits.settle(lease.ticket, actual_tokens)
            self.totals["tokens"] += actual_tokens
        limits.release()
        if actual_tokens is not None:
            limits.on_success()
        return limits

    def abandon(self, lease_id: str) -> None:
        """The holder gave up (cancelled, timed out): stop its wait or free what it was granted."""
        self.totals["abandoned"] += 1
        pending = self._pending.get(lease_id)
        if pending is not None:
            pending[1].cancel()
        elif lease_id in self._leases:
            self.release(lease_id, None)
        else:
            self._abandoned[lease_id] = anyio.current_time()

    def rate_limited(self, endpoint: str, model: str, pause_s: float) -> None:
        self.totals["rate_limited"] += 1
        self.limits(endpoint, model).on_rate_limited(pause_s)

    def pause(self, endpoint: str, model: str, seconds: float) -> None:
        self.limits(endpoint, model).pause(seconds)

    def holders(self) -> set[str]:
        """Owners holding leases or waiting for one (the ones worth probing)."""
        return {lease.owner for lease in self._leases.values()} | {o for o, _ in self._pending.values()}

    def reap(self, dead_owners: set[str] | None = None) -> int:
        """Free leases that expired or whose owner is dead; stop dead owners' waits. Returns how many."""
        dead_owners = dead_owners or set()
        now = anyio.current_time()
        freed = 0
        for lease in list(self._leases.values()):
            if lease.owner in dead_owners:
                self.totals["reclaimed"] += 1
            elif lease.deadline <= now:
                self.totals["expired"] += 1
                log.warning("LLM lease of %s on %s expired unreleased; its slot is free again",
                            lease.owner, "/".join(lease.key))
            else:
                continue
            del self._leases[lease.id]
            self._end(lease, None)
            freed += 1
        for owner, scope in list(self._pending.values()):
            if owner in dead_owners:
                scope.cancel()
        for lease_id, t in list(self._abandoned.items()):
            if now - t > _TOMBSTONE_S:
                del self._abandoned[lease_id]
        return freed

    def stats(self) -> dict[str, Any]:
        endpoints = {"/".join(k): v.snapshot() for k, v in self._limits.items()}
        return {
            "in_flight": sum(e["in_flight"] for e in endpoints.values()),
            "waiting": sum(e["waiting"] for e in endpoints.values()),
            "leases": len(self._leases),
            "holders": len(self.holders()),
            **self.totals,
            "endpoints": endpoints,
        }


@dataclass
class LeaseTicket:
    """One lease as the worker sees it; `actual` is the real usage reported at release."""

    id: str
    tokens: int
    actual: int | None = None


class LeasedLimits:
    """`EndpointLimits` for one (endpoint, model) on a worker: every slot is a lease from the head."""

    def __init__(self, link: ServiceLink, endpoint: str, model: str, config: EndpointConfig) -> None:
        self._link = link
        self._endpoint = endpoint
        self._model = model
        self._config = config
        self.in_flight = 0  # this worker's leases
        self.waiting = 0
        self._cluster_load = 0.0  # from the limiter's last answer: cluster-wide queue depth / width
        self._cap = config.max_in_flight
        self._paused_until = float("-inf")

    def _observe(self, reply: dict[str, Any]) -> None:
        if reply.get("limit"):
            self._cluster_load = float(reply["load"])
            self._cap = int(reply["limit"])
            self._paused_until = max(self._paused_until, anyio.current_time() + float(reply["paused_s"]))

    async def _acquire(self, ticket: LeaseTicket) -> None:
        settings = self._link.settings
        try:
            while True:
                reply = await self._link.call(
                    "acquire", ticket.id, self._link.owner.id, self._endpoint, self._model, ticket.tokens,
                    settings.wait_s, timeout=settings.wait_s + settings.rpc_timeout_s)
                self._observe(reply)
                if reply["state"] == "granted":
                    return
                if reply["state"] != "wait":  # abandoned on the head (this worker was presumed gone)
                    raise LLMCallError(f"the run's LLM limiter dropped lease {ticket.id} of "
                                       f"{self._link.owner.id}", kind="service", retryable=True)
        except BaseException:
            self._link.send("abandon", ticket.id)  # frees it on the head whatever state it reached
            raise

    @asynccontextmanager
    async def slot(self, tokens: int) -> AsyncIterator[LeaseTicket]:
        ticket = LeaseTicket(uuid.uuid4().hex, tokens)
        self.waiting += 1
        try:
            await self._acquire(ticket)
        finally:
            self.waiting -= 1
        self.in_flight += 1
        try:
            yield ticket
        finally:
            self.in_flight -= 1
            # Not awaited: one round trip per request instead of two, and nothing to wait for on
            # cancellation. This worker's later calls reach the limiter after it (Ray starts one
            # caller's calls in order); if it is lost, the lease expires on the head.
            self._link.send("release", ticket.id, ticket.actual)

    def settle(self, ticket: LeaseTicket, actual_tokens: int) -> None:
        ticket.actual = actual_tokens  # sent with the release

    def on_success(self) -> None:
        pass  # the release of a settled lease widens the limiter's AIMD limit

    def on_rate_limited(self, pause_s: float) -> None:
        self._paused_until = max(self._paused_until, anyio.current_time() + pause_s)
        self._link.send("rate_limited", self._endpoint, self._model, pause_s)

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, anyio.current_time() + seconds)
        self._link.send("pause", self._endpoint, self._model, seconds)

    def paused_for(self) -> float:
        return max(0.0, self._paused_until - anyio.current_time())

    def load(self) -> float:
        return max(self._cluster_load, (self.in_flight + self.waiting) / max(1, self._cap))

    def snapshot(self) -> dict[str, Any]:
        return {
            "in_flight": self.in_flight,
            "limit": self._cap,
            "max_in_flight": self._config.max_in_flight,
            "rpm": self._config.rpm,
            "tpm": self._config.tpm,
            "paused_s": round(self.paused_for(), 3),
            "waiting": self.waiting,
            "leased": True,  # the cluster-wide figures are in the head's LLMServices.stats()
        }
