"""One response cache for the whole cluster: the head's cache actor is the file's only writer.

`SharedCache` (inside the cache actor on the head) holds the run's `ResponseCache`: the same
SQLite file and schema a local run uses (`--llm-cache` or `<run_dir>/llm_cache.sqlite`), so a
local resume after a cluster run replays from it, and the other way round. Workers reach it
through `RemoteCache`, the `Cache` their `LLMClient` uses.

Single-flight across the cluster: before paying, a worker claims the request's key. The first
claimant leads (pays, then puts the answer, which wakes the others); identical requests from
other workers wait inside the actor (bounded long polls, no spinning) and are answered from the
cache. A claim ends when its answer is put, when its holder lets go (failure, cancellation),
when its owner is found dead, or after `claim_ttl_s`; then the next waiter leads. Within one
worker the client's own SingleFlight already merges identical requests.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from harness.cluster.service_link import LinkSettings, ServiceLink
from harness.llm.cache import ResponseCache

log = logging.getLogger(__name__)


@dataclass
class _Claim:
    id: str
    owner: str
    deadline: float
    done: anyio.Event = field(default_factory=anyio.Event)


class SharedCache:
    """The run's cache file plus the cluster's claims on keys being paid for. One event loop."""

    def __init__(self, path: str | Path, settings: LinkSettings | None = None) -> None:
        self.cache = ResponseCache(path)
        self.settings = settings or LinkSettings()
        self._claims: dict[str, _Claim] = {}
        self.totals = {"gets": 0, "hits": 0, "puts": 0, "claims": 0, "waited": 0, "expired": 0, "reclaimed": 0}

    async def get_many(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        found = await self.cache.get_many(keys)
        self.totals["gets"] += len(keys)
        self.totals["hits"] += len(found)
        return found

    async def put_many(self, rows: Sequence[tuple[str, str, str, dict[str, Any]]]) -> None:
        await self.cache.put_many(rows)  # committed when this returns
        self.totals["puts"] += len(rows)
        for key, *_ in rows:
            claim = self._claims.pop(key, None)
            if claim is not None:
                claim.done.set()

    async def claim(self, key: str, claim_id: str, owner: str, wait_s: float) -> tuple[str, Any]:
        """("hit", value), ("lead", None): the caller pays and puts, or ("wait", None): ask again."""
        with anyio.move_on_after(wait_s):
            while True:
                stored = (await self.cache.get_many([key])).get(key)
                if stored is not None:
                    self.totals["hits"] += 1
                    return "hit", stored
                current = self._claims.get(key)
                if current is None or current.id == claim_id:
                    if current is None:
                        self.totals["claims"] += 1
                        self._claims[key] = _Claim(claim_id, owner, anyio.current_time() + self.settings.claim_ttl_s)
                    return "lead", None
                self.totals["waited"] += 1
                await current.done.wait()
        return "wait", None

    def release_claim(self, key: str, claim_id: str) -> None:
        claim = self._claims.get(key)
        if claim is not None and claim.id == claim_id:
            del self._claims[key]
            claim.done.set()

    def holders(self) -> set[str]:
        return {c.owner for c in self._claims.values()}

    def reap(self, dead_owners: set[str] | None = None) -> int:
        dead_owners = dead_owners or set()
        now = anyio.current_time()
        freed = 0
        for key, claim in list(self._claims.items()):
            if claim.owner in dead_owners:
                self.totals["reclaimed"] += 1
            elif claim.deadline <= now:
                self.totals["expired"] += 1
            else:
                continue
            self.release_claim(key, claim.id)
            freed += 1
        return freed

    def stats(self) -> dict[str, Any]:
        return {"path": str(self.cache.path), "open_claims": len(self._claims), **self.totals}

    async def aclose(self) -> None:
        for key, claim in list(self._claims.items()):
            self.release_claim(key, claim.id)
        await self.cache.aclose()


class RemoteCache:
    """The `Cache` of a worker's client: every get and put goes to the head's cache actor."""

    def __init__(self, link: ServiceLink) -> None:
        self._link = link
        self.path = None  # the file is on the head
        self.enabled = True
        self.hits = 0
        self.misses = 0
        self._leading: set[str] = set()  # keys this worker claimed and is paying for
        self._put_keys: set[str] = set()  # ... of which it has put the answer (that ended the claim)

    async def get(self, key: str) -> dict[str, Any] | None:
        return (await self.get_many([key])).get(key)

    async def get_many(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not keys:
            return {}
        found: dict[str, dict[str, Any]] = await self._link.call("get_many", list(keys))
        self.hits += len(found)
        self.misses += len(keys) - len(found)
        return found

    async def put(self, key: str, kind: str, model: str, value: dict[str, Any]) -> None:
        await self.put_many([(key, kind, model, value)])

    async def put_many(self, rows: Sequence[tuple[str, str, str, dict[str, Any]]]) -> None:
        if rows:
            # Shielded: a paid answer is kept even if the caller is cancelled right now.
            with anyio.CancelScope(shield=True):
                await self._link.call("put_many", list(rows))
            self._put_keys.update(row[0] for row in rows if row[0] in self._leading)

    @asynccontextmanager
    async def claim(self, key: str) -> AsyncIterator[dict[str, Any] | None]:
        claim_id = uuid.uuid4().hex
        settings = self._link.settings
        try:
            while True:
                state, value = await self._link.call("claim", key, claim_id, self._link.owner.id, settings.wait_s,
                                                     timeout=settings.wait_s + settings.rpc_timeout_s)
                if state != "wait":
                    break
        except BaseException:
            self._link.send("release_claim", key, claim_id)
            raise
        if state == "hit":
            self.hits += 1
            yield value
            return
        self.misses += 1
        self._leading.add(key)
        try:
            yield None
        finally:
            self._leading.discard(key)
            if key in self._put_keys:
                self._put_keys.discard(key)  # the put ended the claim and woke the waiters
            else:
                self._link.send("release_claim", key, claim_id)

    async def aclose(self) -> None:
        pass  # the head's cache actor owns the file and closes it
