"""Where a call is sent: the connection slots of each server, replicas, and their cool-downs.

An ``Endpoint`` is one server as the engine sees it: how many calls it may have in flight
(``slots``: ``--max-connections``, else the backend's ``max_concurrency``), how many it has, and
whether it is taken out after failing. Backends that talk to the same server share one (the
engine's ``connection_key``). A call names the endpoints that can answer it: one, or several when
its backend has replicas (``--base-url`` with several URLs).

The ``Router`` keeps the calls waiting for a slot in one queue, first come first served, and gives
each the replica with the fewest calls in flight (least outstanding requests; ties go to the one
sent fewer calls, so calls spread evenly). A call waits here, before its timeout starts: the engine
starts the clock only once the request is sent.

A replica whose call fails with an error the engine retries (a refused or reset connection, a
timeout, a 5xx, a rate limit, a malformed reply) is taken out for a cool-down that doubles with
each failure in a row (``cooldown_s``, at most ``max_cooldown_s``); the failed call's retry goes to
another. When the cool-down ends, one probe call goes to it; a success puts it back at full slots,
a failure takes it out for longer. Calls that were already in flight when it was taken out do not
lengthen the cool-down. When every replica is cooling down, calls go to the one back soonest, one
at a time (the engine's retry backoff spaces them). A call with one endpoint only never waits for
a cool-down: with nothing to choose from, the engine behaves as it always did.
"""

from __future__ import annotations

import asyncio
import enum
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Generic, TypeVar

T = TypeVar("T")  # what a choice carries besides its endpoint (the engine: the replica's backend)


class Outcome(enum.Enum):
    """How a call sent to an endpoint ended, for its health."""

    OK = "ok"
    FAILED = "failed"  # an error the engine retries: the server's fault
    NEUTRAL = "neutral"  # the request's fault (a fatal error), or cancelled: says nothing of the server


@dataclass(eq=False)
class Endpoint:
    """One server: its slots, calls in flight, and cool-down state."""

    #: how counts and events name it (a URL without secrets); None for a backend without replicas
    label: str | None
    slots: int
    in_flight: int = 0
    #: calls sent to it so far: ties of least-outstanding go to the replica sent fewer
    sent: int = 0
    failures_in_row: int = 0
    #: taken out until this time (the router's clock); 0: in service
    out_until: float = 0.0
    #: when its current cool-down began: a failure of a call sent before it does not lengthen it
    out_since: float = -math.inf

    def cooling(self, now: float) -> bool:
        return now < self.out_until

    def limit(self) -> int:
        """Calls it may have in flight: one probe after a cool-down, until a call succeeds."""
        return 1 if self.failures_in_row else self.slots


@dataclass
class Slot(Generic[T]):
    """A call's place on an endpoint, from ``Router.acquire`` to ``Router.release``."""

    choice: T
    endpoint: Endpoint
    sent_at: float


@dataclass
class Router(Generic[T]):
    """The engine's connection slots and replica routing (see the module docstring)."""

    cooldown_s: float = 2.0
    max_cooldown_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _waiters: deque[tuple[asyncio.Future[Slot[T]], list[tuple[T, Endpoint]]]] = field(default_factory=deque)
    _timer: asyncio.TimerHandle | None = None
    _timer_loop: asyncio.AbstractEventLoop | None = None
    #: every endpoint a call has named: whether any has a free slot, and when the next cool-down ends
    _known: set[Endpoint] = field(default_factory=set)

    async def acquire(self, choices: list[tuple[T, Endpoint]]) -> Slot[T]:
        """A slot on one of ``choices`` (each a replica and its endpoint), waiting in line for one."""
        self._known.update(endpoint for _, endpoint in choices)
        if not self._waiters and (picked := self.pick(choices)) is not None:
            return self._take(*picked)  # nobody in line: no queueing machinery
        future: asyncio.Future[Slot[T]] = asyncio.get_running_loop().create_future()
        self._waiters.append((future, choices))
        self._serve()
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(future.result(), Outcome.NEUTRAL)  # given a slot as it was cancelled
            else:
                self._waiters = deque((f, c) for f, c in self._waiters if f is not future)
            raise

    def release(self, slot: Slot[T], outcome: Outcome) -> None:
        """Give the slot back, count the outcome against its endpoint, and serve the calls waiting."""
        endpoint, now = slot.endpoint, self.clock()
        endpoint.in_flight -= 1
        if outcome is Outcome.OK:
            endpoint.failures_in_row, endpoint.out_until = 0, 0.0
        elif outcome is Outcome.FAILED and slot.sent_at >= endpoint.out_since:
            endpoint.failures_in_row += 1
            wait = min(self.max_cooldown_s, self.cooldown_s * 2 ** (endpoint.failures_in_row - 1))
            endpoint.out_since, endpoint.out_until = now, now + wait
        if self._waiters:
            self._serve()

    def pick(self, choices: list[tuple[T, Endpoint]]) -> tuple[T, Endpoint] | None:
        """The choice a call gets now, or None when it must wait."""
        if len(choices) == 1:
            only = choices[0]
            return only if only[1].in_flight < only[1].slots else None
        now = self.clock()
        in_service = [(i, c) for i, c in enumerate(choices) if not c[1].cooling(now)]
        if in_service:
            free = [(i, c) for i, c in in_service if c[1].in_flight < c[1].limit()]
            if not free:
                return None  # wait for a replica in service rather than try one that just failed
            return min(free, key=lambda item: (item[1][1].in_flight, item[1][1].sent, item[0]))[1]
        soonest = min(choices, key=lambda c: c[1].out_until)
        return soonest if soonest[1].in_flight == 0 else None

    def _take(self, choice: T, endpoint: Endpoint) -> Slot[T]:
        endpoint.in_flight += 1
        endpoint.sent += 1
        return Slot(choice, endpoint, self.clock())

    def _serve(self) -> None:
        """Hand free slots to the waiting calls, first come first served; a call whose replicas are all
        busy is passed over, not left to hold up one that can go elsewhere. It stops as soon as no
        endpoint has a slot left, so a release costs little however long the line."""
        passed_over: list[tuple[asyncio.Future[Slot[T]], list[tuple[T, Endpoint]]]] = []
        waiters = self._waiters
        while waiters and any(endpoint.in_flight < endpoint.slots for endpoint in self._known):
            future, choices = waiters.popleft()
            if future.done():
                continue
            picked = self.pick(choices)
            if picked is None:
                passed_over.append((future, choices))
            else:
                future.set_result(self._take(*picked))
        waiters.extendleft(reversed(passed_over))
        self._wake_when_back()

    def _wake_when_back(self) -> None:
        """Serve again when the next cool-down ends: a replica coming back frees slots no call releases
        (a timer already set for earlier is kept; serving when nothing changed is harmless)."""
        now = self.clock()
        ends = [endpoint.out_until for endpoint in self._known if endpoint.cooling(now)]
        if not ends or not self._waiters:
            return
        loop = asyncio.get_running_loop()
        at = loop.time() + min(ends) - now
        timer = self._timer
        if timer is not None and self._timer_loop is loop and not timer.cancelled() and timer.when() <= at:
            return
        if timer is not None:
            timer.cancel()
        self._timer, self._timer_loop = loop.call_at(at, self._fire), loop

    def _fire(self) -> None:
        self._timer = None
        self._serve()
