"""What a method sees of a run (RunContext) and of one episode (EpisodeContext).

Every LLM call of a method goes through EpisodeContext.call, so the engine applies the backend's
capabilities, the cache, the connection limit, retries and the call timeout, and accounts for
tokens, calls and cost the same way for every method.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from econash.backend import Backend
from econash.call_types import CallRecord, LLMRequest, LLMResult, Message, SamplingParams, Usage
from econash.config_types import GenerationConfig
from econash.engine.engine import Engine
from econash.engine.ledger import Ledger
from econash.config_types import RunConfig
from econash.topology import ClusterLayout

if TYPE_CHECKING:  # pragma: no cover
    from econash.plugins import EconashPluginManager
    from econash.registry import Registries
    from econash.task import Task


@dataclass
class RunContext:
    """Shared by all episodes of a run.

    The runner fills every field; a test or a script that builds a context by hand gives what its
    method needs (``run_dir``, ``config``, ``plugin_manager`` and ``registries`` are None without a run).
    """

    backend: Backend
    task: Task
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    engine: Engine = field(default_factory=Engine)
    executors: int = 3
    seed: int = 0
    #: training episodes this run will play (0 when it does not train); learners size schedules by it
    train_size: int = 0
    #: how the topology groups the executors (None: one cluster of all of them)
    layout: ClusterLayout | None = None
    #: executor i's backend in heterogeneous teams (empty: every role uses ``backend``)
    executor_backends: list[Backend] = field(default_factory=list)
    #: the run directory, where a method may keep files of its own
    run_dir: Path | None = None
    #: the run's resolved configuration, as recorded in its manifest
    config: RunConfig | None = None
    #: the run's plugin manager and its registries: a method builds the plugins it uses itself
    #: (the econash method its embedder) from these, so it sees the plugins the run sees
    plugin_manager: EconashPluginManager | None = None
    registries: Registries | None = None
    #: data plugins share among themselves (a method with its rewards, say); the core puts nothing here
    extras: dict[str, Any] = field(default_factory=dict)

    def clusters(self) -> list[list[int]]:
        return self.layout.clusters if self.layout is not None else [list(range(self.executors))]

    def executor_backend(self, agent: int) -> Backend:
        return self.executor_backends[agent] if self.executor_backends else self.backend

    def ledger(self, phase: str) -> Ledger:
        return self.engine.ledger(phase)

    def episode(self, phase: str = "eval", index: int = 0, problem_id: str | None = None) -> EpisodeContext:
        return EpisodeContext(run=self, phase=phase, index=index, problem_id=problem_id)


@dataclass
class EpisodeContext:
    """One episode's gateway to the LLMs; it keeps every call made for the episode."""

    run: RunContext
    phase: str = "eval"
    #: the episode's position in its phase; learners order what they store by it, so concurrent
    #: episodes finishing in any order still give the same updates
    index: int = 0
    #: the question this episode answers; recorded on every call it makes
    problem_id: str | None = None
    calls: list[CallRecord] = field(default_factory=list)
    #: what a method reports about how it answered (JSON-able); evaluation stores it with the result,
    #: e.g. ``{"actions": [label per executor]}``, which summaries turn into the settled actions
    details: dict[str, Any] = field(default_factory=dict)

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
        """Make one LLM call. ``draw`` numbers repeated samples of the same prompt (kept apart in the cache)."""
        backend = backend or self.run.backend
        request = LLMRequest(
            messages=[m if isinstance(m, Message) else Message(**m) for m in messages],
            sampling=backend.capabilities.clip(sampling or self.sampling()),
            role=role,
            agent=agent,
            draw=draw,
        )
        result, record = await self.run.engine.call(backend, request, phase=self.phase, episode=self.index,
                                                    problem_id=self.problem_id)
        self.calls.append(record)
        return result

    @property
    def usage(self) -> Usage:
        total = Usage()
        for call in self.calls:
            total = total + call.usage
        return total
