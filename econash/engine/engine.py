"""The call pipeline: cache -> cost check -> connection slot on an endpoint (replicas: the least busy)
-> timeout and retry -> backend -> ledger -> events."""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from econash.backend import Backend, ErrorKind
from econash.call_types import CallRecord, LLMRequest, LLMResult, Usage
from econash.config_types import RetryConfig
from econash.engine.cache import ResponseCache, cache_key
from econash.engine.endpoints import Endpoint, Outcome, Router, Slot
from econash.engine.ledger import CostLimitReached, Ledger, PriceTable, Spending
from econash.errors import BackendError, ConfigError, RetriesExhaustedError
from econash.log import get_logger, note

EventSink = Callable[[dict[str, Any]], None]
CallSink = Callable[[CallRecord, str], None]
#: a backend's replicas: each server's label (its URL without secrets) and the backend calling it
Replicas = list[tuple[str, Backend]]

logger = get_logger("engine")


@dataclass
class EngineStats:
    """Live counters for the progress display."""

    in_flight: int = 0
    retry_waiting: int = 0
    retries: int = 0
    #: when each call not yet answered was asked for (time.monotonic()), by call number: the plain
    #: display's heartbeat reports the oldest one's age, waiting for a connection and retries included
    _asked_at: dict[int, float] = field(default_factory=dict)
    _calls_asked: int = 0

    def call_asked(self) -> int:
        """Note a call the engine starts on; returns its number for ``call_done``."""
        self._calls_asked += 1
        self._asked_at[self._calls_asked] = time.monotonic()
        return self._calls_asked

    def call_done(self, number: int) -> None:
        self._asked_at.pop(number, None)

    @property
    def calls_waiting(self) -> int:
        """Calls asked for and not yet answered (sent, waiting for a connection, or between retries)."""
        return len(self._asked_at)

    def oldest_call_age_s(self) -> float | None:
        """Seconds since the oldest call not yet answered was asked for; None when there is none."""
        return time.monotonic() - min(self._asked_at.values()) if self._asked_at else None


def backoff_wait(attempt: int, retry: RetryConfig, rng: random.Random) -> float:
    """Exponential backoff with additive jitter, capped: initial * 2**(attempt-1) + U(0, jitter)."""
    base = retry.initial_wait_s * (2 ** (attempt - 1))
    return min(retry.max_wait_s, base + rng.uniform(0.0, retry.jitter_s))


def estimate_prompt_tokens(request: LLMRequest) -> int:
    """A deliberately generous estimate (3 characters a token) used only for cost-limit checks."""
    return sum(len(m.content) for m in request.messages) // 3 + 8 * len(request.messages)


@dataclass
class Engine:
    """Runs LLM calls for methods with caching, limits, retries, accounting and events."""

    retry: RetryConfig = field(default_factory=RetryConfig)
    timeout_s: float = 120.0
    cache: ResponseCache | None = None
    cache_phases: frozenset[str] = frozenset({"eval"})
    prices: PriceTable | None = None
    cost_limit: float | None = None
    max_connections: int | None = None
    #: phases whose calls are counted in another phase's ledger: the dev-slice evaluations made
    #: while training are part of what training cost
    ledger_phases: dict[str, str] = field(default_factory=lambda: {"dev": "train"})
    emit: EventSink | None = None
    on_call: CallSink | None = None
    ledgers: dict[str, Ledger] = field(default_factory=dict)
    #: what the run has spent, earlier sessions included (the runner seeds it from events.jsonl):
    #: the cost limit holds for the whole run, not for one session
    spending: Spending = field(default_factory=Spending)
    stats: EngineStats = field(default_factory=EngineStats)
    stopped: str | None = None
    #: the endpoints (servers) by connection key, and the queue of calls waiting for their slots
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    _router: Router[Backend] | None = None
    #: backends with replicas (``set_replicas``), by id: each replica's label and backend
    _replicas: dict[int, Replicas] = field(default_factory=dict)
    _crowded_timeouts_noted: set[str] = field(default_factory=set)
    _reserved: float = 0.0
    _rng: random.Random = field(default_factory=random.Random)

    def ledger(self, phase: str) -> Ledger:
        return self.ledgers.setdefault(phase, Ledger())

    @property
    def spent(self) -> float:
        """Dollars spent by the run so far, in every phase and session (ledgers restored from a
        checkpoint are not summed: what they count is already in ``spending``)."""
        return self.spending.known_total

    def connection_key(self, backend: Backend) -> str:
        """Backends that talk to the same endpoint share one connection limit."""
        return json.dumps([backend.name, backend.cache_identity()], sort_keys=True, default=str)

    def set_replicas(self, backend: Backend, replicas: Replicas) -> None:
        """Send ``backend``'s calls to ``replicas`` (each a label, the URL without secrets, and a backend
        for that server; ``backend`` is usually the first): servers of one model."""
        self._replicas[id(backend)] = list(replicas)

    def replicas_of(self, backend: Backend) -> list[tuple[str | None, Backend]]:
        """Where ``backend``'s calls may go: its replicas, or itself alone (no label)."""
        replicas: list[tuple[str | None, Backend]] = [(None, backend)]
        return list(self._replicas.get(id(backend), [])) or replicas

    def endpoint_for(self, backend: Backend, label: str | None = None) -> Endpoint:
        """The endpoint of ``backend``'s server, made on first use with ``--max-connections`` slots,
        else the backend's ``capabilities.max_concurrency``."""
        key = self.connection_key(backend)
        if key not in self.endpoints:
            size = self.max_connections or backend.capabilities.max_concurrency
            self.endpoints[key] = Endpoint(label=label, slots=size)
        endpoint = self.endpoints[key]
        endpoint.label = endpoint.label or label  # a server also used without replicas is still counted
        return endpoint

    def cache_identity(self, backend: Backend) -> Any:
        """What besides the model decides ``backend``'s answers, for the cache key: the backend's own
        identity, or with replicas all of theirs, sorted, so the key does not depend on which answered."""
        replicas = self._replicas.get(id(backend))
        if not replicas:
            return backend.cache_identity()
        return {"replicas": sorted(json.dumps(r.cache_identity(), sort_keys=True, default=str) for _, r in replicas)}

    @property
    def router(self) -> Router[Backend]:
        if self._router is None:
            self._router = Router(cooldown_s=self.retry.cooldown_s, max_cooldown_s=self.retry.max_cooldown_s)
        return self._router

    def _emit(self, event: dict[str, Any]) -> None:
        if self.emit is not None:
            self.emit(event)

    def _reserve(self, backend: Backend, request: LLMRequest) -> float:
        """Check the cost limit before a call; return the amount reserved for it."""
        if self.stopped:
            raise CostLimitReached(self.stopped)
        if self.cost_limit is None:
            return 0.0
        price = self.prices.price(backend.model) if self.prices else None
        if price is None:
            raise ConfigError(
                f"--cost-limit needs a price for model '{backend.model}'; add it to the price table given with --prices."
            )
        worst = Usage(prompt_tokens=estimate_prompt_tokens(request), completion_tokens=request.sampling.max_tokens)
        estimate = (worst.prompt_tokens * price.prompt + worst.completion_tokens * price.completion) / 1e6
        if self.spent + self._reserved + estimate > self.cost_limit:
            self.stopped = "cost_limit"
            self._emit({"type": "stop", "reason": "cost_limit", "spent": self.spent, "limit": self.cost_limit})
            raise CostLimitReached("cost_limit")
        self._reserved += estimate
        return estimate

    async def _send(self, choices: list[tuple[Backend, Endpoint]], request: LLMRequest) -> tuple[LLMResult, Endpoint]:
        """One attempt: wait for a slot (outside the timeout), then send, timed from here."""
        slot: Slot[Backend] = await self.router.acquire(choices)
        outcome = Outcome.NEUTRAL
        crowd = slot.endpoint.in_flight - 1
        self.stats.in_flight += 1
        try:
            result = await asyncio.wait_for(slot.choice.generate(request), self.timeout_s)
            outcome = Outcome.OK
            return result, slot.endpoint
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failure = _Failed(exc, slot.choice, slot.endpoint, crowd)
            outcome = Outcome.NEUTRAL if failure.kind is ErrorKind.FATAL else Outcome.FAILED
            raise failure from exc
        finally:
            self.stats.in_flight -= 1
            self.router.release(slot, outcome)

    async def _generate_with_retries(self, backend: Backend, request: LLMRequest) -> tuple[LLMResult, int, str | None]:
        choices = [(replica, self.endpoint_for(replica, label)) for label, replica in self.replicas_of(backend)]
        attempt = 0
        while True:
            attempt += 1
            try:
                result, endpoint = await self._send(choices, request)
                return result, attempt - 1, endpoint.label
            except _Failed as failure:
                exc, kind, retry_after = failure.exc, failure.kind, failure.retry_after
                described = self._described(failure)
                failed = {"backend": backend.name, "model": backend.model, "role": request.role,
                          "agent": request.agent, "attempt": attempt, "kind": kind.value,
                          "error": type(exc).__name__,
                          **({"endpoint": failure.endpoint.label} if failure.endpoint.label else {})}
                if kind is ErrorKind.FATAL:
                    self._emit({"type": "call_failed", **failed})
                    raise BackendError(_sentence(described)) from exc
                if attempt >= self.retry.max_attempts:
                    self._emit({"type": "call_failed", **failed})
                    raise RetriesExhaustedError(
                        f"{_clause(described)}; gave up after {attempt} attempts (check the server, or raise "
                        "retry.max_attempts), and `econash resume RUN_DIR` continues the run."
                    ) from exc
                if kind is ErrorKind.RATE_LIMIT and retry_after is not None:
                    wait = min(retry_after, self.retry.max_wait_s)
                else:
                    wait = backoff_wait(attempt, self.retry, self._rng)
                self._emit({"type": "retry", **failed, "wait_s": round(wait, 3)})
                self.stats.retry_waiting += 1
                self.stats.retries += 1
                try:
                    await asyncio.sleep(wait)
                finally:
                    self.stats.retry_waiting -= 1

    def _described(self, failure: _Failed) -> str:
        """The failed attempt in words; a timeout with other calls in flight on its server says how a
        server that runs fewer requests at once makes queued calls time out (once per server, as a note)."""
        backend, endpoint = failure.backend, failure.endpoint
        if not failure.timed_out:
            return backend.describe_error(failure.exc)
        described = f"{backend.name} did not answer within {self.timeout_s:g} s"
        if failure.crowd < 1:
            return described
        server = endpoint.label or f"the {backend.name} server"
        hint = (f"{described} with {failure.crowd + 1} calls in flight to {server}; a server that runs fewer "
                "requests at once (llama-cpp-python's server runs one) keeps the rest waiting while their timeout "
                "runs, so set --max-connections to the number it runs at once (docs/engine.md)")
        if server not in self._crowded_timeouts_noted:
            self._crowded_timeouts_noted.add(server)
            note(logger, _sentence(hint))
        return hint

    async def call(self, backend: Backend, request: LLMRequest, *, phase: str, episode: int | None = None,
                   problem_id: str | None = None) -> tuple[LLMResult, CallRecord]:
        """One call through the pipeline; ``episode`` and ``problem_id`` go into its record."""
        cache = self.cache if phase in self.cache_phases else None
        key = ""
        if cache is not None:
            key = cache_key(backend.name, backend.model, self.cache_identity(backend), request)
            cached = await cache.get_async(key)
            if cached is not None:
                return cached, self._record(backend, request, cached, phase, retries=0, episode=episode,
                                            problem_id=problem_id)
        reserved = self._reserve(backend, request)
        asked = self.stats.call_asked()
        try:
            started = time.perf_counter()
            result, retries, endpoint = await self._generate_with_retries(backend, request)
            if not result.latency_s:
                result = result.model_copy(update={"latency_s": time.perf_counter() - started})
        finally:
            self._reserved -= reserved
            self.stats.call_done(asked)
        if cache is not None:
            await cache.put_async(key, backend.name, result)
        return result, self._record(backend, request, result, phase, retries=retries, episode=episode,
                                    problem_id=problem_id, endpoint=endpoint)

    def _record(self, backend: Backend, request: LLMRequest, result: LLMResult, phase: str, retries: int,
                episode: int | None, problem_id: str | None, endpoint: str | None = None) -> CallRecord:
        record = CallRecord(
            role=request.role,
            agent=request.agent,
            episode=episode,
            problem_id=problem_id,
            model=result.model,
            sampling=request.sampling,
            text=result.text,
            usage=result.usage,
            finish_reason=result.finish_reason,
            latency_s=result.latency_s,
            cached=result.cached,
            retries=retries,
            endpoint=endpoint,
            # priced by the model the backend was asked for, the name the price table is checked for
            cost=(0.0 if result.cached else self.prices.cost(backend.model, result.usage)) if self.prices else None,
        )
        self.ledger(self.ledger_phases.get(phase, phase)).add(record)
        if not record.cached:
            self.spending.add(phase, record.cost, backend.model)
        if self.on_call is not None:
            self.on_call(record, phase)
        return record


class _Failed(Exception):
    """A failed attempt, with the replica and endpoint it went to and how the backend classifies it."""

    def __init__(self, exc: Exception, backend: Backend, endpoint: Endpoint, crowd: int) -> None:
        super().__init__(str(exc))
        self.exc, self.backend, self.endpoint = exc, backend, endpoint
        #: other calls in flight on the endpoint when this one was sent
        self.crowd = crowd
        self.timed_out = isinstance(exc, (asyncio.TimeoutError, TimeoutError))
        self.kind, self.retry_after = (ErrorKind.TRANSIENT, None) if self.timed_out else backend.classify_error(exc)


def _clause(text: str) -> str:
    return text.rstrip().rstrip(".")


def _sentence(text: str) -> str:
    text = _clause(text)
    return text[:1].upper() + text[1:] + "."
