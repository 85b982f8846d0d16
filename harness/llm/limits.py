"""Per-endpoint limits: an adaptive in-flight cap and a requests/tokens-per-window gate.

Callers wait (never fail) for both. Order matters: a caller takes an in-flight slot first and
passes the rate gate last, so the time the gate records is never later than the actual send.

RateGate guarantees at most `rpm` requests and `tpm` tokens in ANY window of `window_s`
(sliding log, plus a small margin for send-to-arrival jitter), and paces sends evenly (GCRA with
`burst_s` of tolerance) so it starts at full rate without bursting a whole window's quota into
the first second. Waiters are served FIFO (anyio.Lock hands off in order), so one large request
cannot be starved by a stream of small ones. No busy loops: waiters sleep until the computed
deadline or until the state changes (settled usage, Retry-After).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import anyio


class AdaptiveLimit:
    """In-flight cap: multiplicative decrease on 429 (once per cooldown), +1 per clean round."""

    def __init__(self, maximum: int, minimum: int = 1, factor: float = 0.7, cooldown_s: float = 5.0) -> None:
        self.maximum = maximum
        self.minimum = minimum
        self.factor = factor
        self.cooldown_s = cooldown_s
        self.limit = float(maximum)  # start at full width: no slow start
        self.in_flight = 0
        self.decreases = 0
        self._waiters: deque[anyio.Event] = deque()
        self._clean = 0
        self._last_cut = -math.inf

    @property
    def cap(self) -> int:
        return max(self.minimum, int(self.limit))

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self) -> None:
        if self.in_flight < self.cap and not self._waiters:
            self.in_flight += 1
            return
        event = anyio.Event()
        self._waiters.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():
                self.release()  # the slot was handed to us as we were cancelled
            else:
                self._waiters.remove(event)
            raise

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.cap:
            self.in_flight += 1
            self._waiters.popleft().set()

    def on_success(self) -> None:
        if self.limit >= self.maximum:
            return
        self._clean += 1
        if self._clean >= self.cap:  # one clean round at the current width: widen by one
            self._clean = 0
            self.limit = min(float(self.maximum), self.limit + 1)
            self._wake()

    def on_rate_limited(self, now: float) -> None:
        self._clean = 0
        # One wave of in-flight requests tends to 429 together: cut once per cooldown.
        if now - self._last_cut >= self.cooldown_s:
            self._last_cut = now
            self.limit = max(float(self.minimum), self.limit * self.factor)
            self.decreases += 1


@dataclass
class Ticket:
    """What the gate charged for one send; `settle` corrects the token charge from usage."""

    time: float
    tokens: int
    entry: list[float] | None  # [time, tokens, alive] in the token log


class RateGate:
    def __init__(
        self,
        rpm: int | None,
        tpm: int | None,
        *,
        window_s: float = 60.0,
        margin_s: float | None = None,
        burst_s: float = 1.0,
    ) -> None:
        self.rpm = rpm
        self.tpm = tpm
        margin = margin_s if margin_s is not None else max(0.1, 0.01 * window_s)
        self.window = window_s + margin
        self.burst_s = burst_s
        self.waiting = 0
        self._req_log: deque[float] = deque()
        self._tok_log: deque[list[float]] = deque()
        self._tok_sum = 0.0
        self._req_tat = -math.inf  # GCRA theoretical arrival times
        self._tok_tat = -math.inf
        self._pause_until = -math.inf
        self._lock = anyio.Lock()
        self._changed = anyio.Event()

    # -- state changes that may let a waiter go earlier or must hold it back ---------------------
    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def pause(self, seconds: float) -> None:
        """Hold every send until `seconds` from now (Retry-After, rate-limit reset headers)."""
        until = anyio.current_time() + seconds
        if until > self._pause_until:
            self._pause_until = until
            self._notify()

    def paused_for(self) -> float:
        return max(0.0, self._pause_until - anyio.current_time())

    def settle(self, ticket: Ticket, actual_tokens: int) -> None:
        """Replace the estimated token charge with what the provider reported."""
        if not self.tpm or ticket.entry is None:
            return
        delta = actual_tokens - ticket.tokens
        ticket.tokens = actual_tokens
        if ticket.entry[2]:  # still inside the window
            ticket.entry[1] += delta
            self._tok_sum += delta
        self._tok_tat += delta * self.window / self.tpm
        if delta < 0:
            self._notify()

    # -- the gate ----------------------------------------------------------------------------------
    def _expire(self, now: float) -> None:
        horizon = now - self.window
        while self._req_log and self._req_log[0] <= horizon:
            self._req_log.popleft()
        while self._tok_log and self._tok_log[0][0] <= horizon:
            entry = self._tok_log.popleft()
            entry[2] = 0.0
            self._tok_sum -= entry[1]

    def delay(self, now: float, tokens: int) -> float:
        """Seconds until a send costing `tokens` is allowed (0 = now)."""
        self._expire(now)
        wait = self._pause_until - now
        if self.rpm:
            if len(self._req_log) >= self.rpm:
                wait = max(wait, self._req_log[len(self._req_log) - self.rpm] + self.window - now)
            wait = max(wait, self._req_tat - self.burst_s - now)
        if self.tpm:
            excess = self._tok_sum + tokens - self.tpm
            if excess > 0 and self._tok_log:
                # Oldest entries leave the window first: wait until enough of them have.
                freed = 0.0
                until = self._tok_log[-1][0]  # a request larger than tpm goes alone
                for t, n, _ in self._tok_log:
                    freed += n
                    if freed >= excess:
                        until = t
                        break
                wait = max(wait, until + self.window - now)
            wait = max(wait, self._tok_tat - self.burst_s - now)
        return max(0.0, wait)

    def _record(self, now: float, tokens: int) -> Ticket:
        entry = None
        if self.rpm:
            self._req_log.append(now)
            self._req_tat = max(self._req_tat, now) + self.window / self.rpm
        if self.tpm:
            entry = [now, float(tokens), 1.0]
            self._tok_log.append(entry)
            self._tok_sum += tokens
            self._tok_tat = max(self._tok_tat, now) + tokens * self.window / self.tpm
        return Ticket(now, tokens, entry)

    async def acquire(self, tokens: int = 0) -> Ticket:
        self.waiting += 1
        try:
            async with self._lock:  # FIFO: the head waits for its deadline, the rest queue
                while True:
                    now = anyio.current_time()
                    wait = self.delay(now, tokens)
                    if wait <= 0:
                        return self._record(now, tokens)
                    changed = self._changed
                    with anyio.move_on_after(wait):
                        await changed.wait()
        finally:
            self.waiting -= 1

    def snapshot(self) -> dict[str, float | int | None]:
        now = anyio.current_time()
        self._expire(now)
        return {
            "rpm": self.rpm,
            "tpm": self.tpm,
            "requests_in_window": len(self._req_log),
            "tokens_in_window": int(self._tok_sum),
            "paused_s": round(self.paused_for(), 3),
            "waiting": self.waiting,
        }


class EndpointLimits(Protocol):
    """What an endpoint needs from its limits, wherever they are kept.

    `LocalLimits` keeps them in this process; a cluster run leases them from one limiter that
    every worker shares (harness/cluster/lease_limits.py), so they hold cluster-wide. A caller
    holds `slot(tokens)` (in-flight slot, then rate permit) for exactly one send and, inside it,
    reports a successful send's real usage with `settle`.
    """

    def slot(self, tokens: int) -> AbstractAsyncContextManager[Any]: ...

    def settle(self, ticket: Any, actual_tokens: int) -> None: ...

    def on_success(self) -> None: ...

    def on_rate_limited(self, pause_s: float) -> None: ...

    def pause(self, seconds: float) -> None: ...

    def paused_for(self) -> float: ...

    def load(self) -> float: ...

    def snapshot(self) -> dict[str, Any]: ...


class LocalLimits:
    """An endpoint's in-flight cap and rate gate, kept in this process (a single-machine run)."""

    def __init__(self, slots: AdaptiveLimit, gate: RateGate) -> None:
        self.slots = slots
        self.gate = gate

    async def acquire(self, tokens: int) -> Ticket:
        """In-flight slot first, rate permit last (right before the send); pair with `release`."""
        await self.slots.acquire()
        try:
            return await self.gate.acquire(tokens)
        except BaseException:
            self.slots.release()
            raise

    def release(self) -> None:
        self.slots.release()

    @asynccontextmanager
    async def slot(self, tokens: int) -> AsyncIterator[Ticket]:
        ticket = await self.acquire(tokens)
        try:
            yield ticket
        finally:
            self.release()

    def settle(self, ticket: Ticket, actual_tokens: int) -> None:
        self.gate.settle(ticket, actual_tokens)

    def on_success(self) -> None:
        self.slots.on_success()

    def on_rate_limited(self, pause_s: float) -> None:
        self.slots.on_rate_limited(anyio.current_time())
        self.gate.pause(pause_s)

    def pause(self, seconds: float) -> None:
        self.gate.pause(seconds)

    def paused_for(self) -> float:
        return self.gate.paused_for()

    def load(self) -> float:
        """Queue depth relative to width; lower is better."""
        return (self.slots.in_flight + self.slots.waiting + self.gate.waiting) / self.slots.cap

    def snapshot(self) -> dict[str, Any]:
        return {
            "in_flight": self.slots.in_flight,
            "limit": self.slots.cap,
            "max_in_flight": self.slots.maximum,
            **self.gate.snapshot(),
            "waiting": self.slots.waiting + self.gate.waiting,
        }
