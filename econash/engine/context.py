"""What a method sees of a run (RunContext) and of one episode (EpisodeContext).

Every LLM call of a method goes through EpisodeContext.call, which applies the backend's
capabilities, its concurrency limit and the call timeout, records usage and emits events.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from econash.backend import Backend
from econash.errors import BackendError
from econash.types import CallRecord, GenerationConfig, LLMRequest, LLMResult, Message, SamplingParams, Usage

if TYPE_CHECKING:  # pragma: no cover
    from econash.task import Task


@dataclass
class Ledger:
    """Token and call totals."""

    usage: Usage = field(default_factory=Usage)
    calls: int = 0

    def add(self, call: CallRecord) -> None:
        self.usage = self.usage + call.usage
        self.calls += 1


@dataclass
class RunContext:
    """Shared by all episodes of a run."""

    backend: Backend
    task: Task
    generation: GenerationConfig
    executors: int = 3
    seed: int = 0
    on_call: Callable[[CallRecord, str], None] | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    ledgers: dict[str, Ledger] = field(default_factory=dict)
    _limits: dict[int, asyncio.Semaphore] = field(default_factory=dict)

    def limit_for(self, backend: Backend) -> asyncio.Semaphore:
        key = id(backend)
        if key not in self._limits:
            self._limits[key] = asyncio.Semaphore(backend.capabilities.max_concurrency)
        return self._limits[key]

    def ledger(self, phase: str) -> Ledger:
        return self.ledgers.setdefault(phase, Ledger())

    def episode(self, phase: str = "eval") -> EpisodeContext:
        return EpisodeContext(run=self, phase=phase)


@dataclass
class EpisodeContext:
    """One episode's gateway to the LLMs; it keeps every call made for the episode."""

    run: RunContext
    phase: str = "eval"
    calls: list[CallRecord] = field(default_factory=list)

    @property
    def task(self) -> Task:
        return self.run.task

    def sampling(self, **overrides: Any) -> SamplingParams:
        return self.run.generation.sampling(**overrides)

    async def call(
        self,
        messages: list[Message] | list[dict[str, str]],
        sampling: SamplingParams | None = None,
        *,
        role: str = "executor",
        agent: int | None = None,
        draw: int = 0,
        backend: Backend | None = None,
    ) -> LLMResult:
        backend = backend or self.run.backend
        request = LLMRequest(
            messages=[m if isinstance(m, Message) else Message(**m) for m in messages],
            sampling=backend.capabilities.clip(sampling or self.sampling()),
            role=role,
            agent=agent,
            draw=draw,
        )
        async with self.run.limit_for(backend):
            started = time.perf_counter()
            try:
                result = await asyncio.wait_for(backend.generate(request), self.run.generation.timeout_s)
            except asyncio.TimeoutError:
                raise BackendError(
                    f"{backend.name} did not answer within {self.run.generation.timeout_s:g} s; "
                    "raise generation.timeout_s or check the server."
                ) from None
            latency = time.perf_counter() - started
        record = CallRecord(
            role=role,
            agent=agent,
            model=result.model,
            sampling=request.sampling,
            text=result.text,
            usage=result.usage,
            latency_s=result.latency_s or latency,
            cached=result.cached,
        )
        self.calls.append(record)
        self.run.ledgers.setdefault(self.phase, Ledger()).add(record)
        if self.run.on_call is not None:
            self.run.on_call(record, self.phase)
        return result

    @property
    def usage(self) -> Usage:
        total = Usage()
        for call in self.calls:
            total = total + call.usage
        return total
