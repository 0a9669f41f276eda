"""The call pipeline: cache -> cost check -> per-backend connection limit -> retry -> backend -> ledger -> events."""

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
from econash.engine.ledger import CostLimitReached, Ledger, PriceTable, Spending
from econash.errors import BackendError, ConfigError, RetriesExhaustedError

EventSink = Callable[[dict[str, Any]], None]
CallSink = Callable[[CallRecord, str], None]


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
    _limits: dict[str, asyncio.Semaphore] = field(default_factory=dict)
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

    def limit_for(self, backend: Backend) -> asyncio.Semaphore:
        key = self.connection_key(backend)
        if key not in self._limits:
            size = self.max_connections or backend.capabilities.max_concurrency
            self._limits[key] = asyncio.Semaphore(size)
        return self._limits[key]

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

    async def _generate_with_retries(self, backend: Backend, request: LLMRequest) -> tuple[LLMResult, int]:
        limit = self.limit_for(backend)
        attempt = 0
        while True:
            attempt += 1
            try:
                async with limit:
                    self.stats.in_flight += 1
                    try:
                        result = await asyncio.wait_for(backend.generate(request), self.timeout_s)
                    finally:
                        self.stats.in_flight -= 1
                return result, attempt - 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                timed_out = isinstance(exc, (asyncio.TimeoutError, TimeoutError))
                kind, retry_after = (ErrorKind.TRANSIENT, None) if timed_out else backend.classify_error(exc)
                described = (
                    f"{backend.name} did not answer within {self.timeout_s:g} s"
                    if timed_out
                    else backend.describe_error(exc)
                )
                if kind is ErrorKind.FATAL:
                    raise BackendError(_sentence(described)) from exc
                if attempt >= self.retry.max_attempts:
                    raise RetriesExhaustedError(
                        f"{_clause(described)}; gave up after {attempt} attempts (check the server, or raise "
                        "retry.max_attempts), and `econash resume RUN_DIR` continues the run."
                    ) from exc
                if kind is ErrorKind.RATE_LIMIT and retry_after is not None:
                    wait = min(retry_after, self.retry.max_wait_s)
                else:
                    wait = backoff_wait(attempt, self.retry, self._rng)
                self._emit({"type": "retry", "backend": backend.name, "model": backend.model, "role": request.role,
                            "agent": request.agent, "attempt": attempt, "kind": kind.value,
                            "error": type(exc).__name__, "wait_s": round(wait, 3)})
                self.stats.retry_waiting += 1
                self.stats.retries += 1
                try:
                    await asyncio.sleep(wait)
                finally:
                    self.stats.retry_waiting -= 1

    async def call(self, backend: Backend, request: LLMRequest, *, phase: str, episode: int | None = None,
                   problem_id: str | None = None) -> tuple[LLMResult, CallRecord]:
        """One call through the pipeline; ``episode`` and ``problem_id`` go into its record."""
        cache = self.cache if phase in self.cache_phases else None
        key = ""
        if cache is not None:
            key = cache_key(backend.name, backend.model, backend.cache_identity(), request)
            cached = await cache.get_async(key)
            if cached is not None:
                return cached, self._record(backend, request, cached, phase, retries=0, episode=episode,
                                            problem_id=problem_id)
        reserved = self._reserve(backend, request)
        asked = self.stats.call_asked()
        try:
            started = time.perf_counter()
            result, retries = await self._generate_with_retries(backend, request)
            if not result.latency_s:
                result = result.model_copy(update={"latency_s": time.perf_counter() - started})
        finally:
            self._reserved -= reserved
            self.stats.call_done(asked)
        if cache is not None:
            await cache.put_async(key, backend.name, result)
        return result, self._record(backend, request, result, phase, retries=retries, episode=episode,
                                    problem_id=problem_id)

    def _record(self, backend: Backend, request: LLMRequest, result: LLMResult, phase: str, retries: int,
                episode: int | None, problem_id: str | None) -> CallRecord:
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
            # priced by the model the backend was asked for, the name the price table is checked for
            cost=(0.0 if result.cached else self.prices.cost(backend.model, result.usage)) if self.prices else None,
        )
        self.ledger(self.ledger_phases.get(phase, phase)).add(record)
        if not record.cached:
            self.spending.add(phase, record.cost, backend.model)
        if self.on_call is not None:
            self.on_call(record, phase)
        return record


def _clause(text: str) -> str:
    return text.rstrip().rstrip(".")


def _sentence(text: str) -> str:
    text = _clause(text)
    return text[:1].upper() + text[1:] + "."
