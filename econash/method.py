"""The interface of reasoning methods: EcoNash and every baseline solve problems through it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from econash.task_types import Problem

if TYPE_CHECKING:  # pragma: no cover
    from econash.engine.context import EpisodeContext, RunContext


class Method(ABC):
    """Turns a problem into a final answer text by calling LLMs through an episode context.

    Every call goes through ``episode.call`` so tokens, calls and events are counted the same way
    for every method.

    Methods that learn set ``learns = True``. The core's training loop (econash.loop) then runs
    ``train_episode`` on the train split, ``update_interval`` episodes at a time (concurrently),
    calls ``update`` between batches, checkpoints ``state_dict`` and stops early when
    ``should_stop`` says so. ``load_state_dict`` must restore the method exactly, RNG included,
    so a resumed run continues as if it had never stopped.
    """

    name: ClassVar[str] = "method"
    learns: ClassVar[bool] = False
    #: train episodes between learner updates
    update_interval: int = 1
    #: the option holding the method's team size (sc's ``"k"``): ``--executors`` sets it when the user
    #: leaves it unset (``econash.config.with_team_size``), and `econash compare --sweep-executors`
    #: sets it to each count
    executors_option: ClassVar[str | None] = None
    #: True for a method whose team is ``RunContext.executors`` (the econash family); for a method
    #: with neither this nor ``executors_option``, `econash run` notes that --executors changes nothing
    reads_executors: ClassVar[bool] = False

    def __init__(self, options: Any = None) -> None:
        """Keep the validated ``Options`` model the registry passes (None for a method without one),
        so a method whose options need no further preparation writes no ``__init__`` of its own."""
        self.options = options

    async def setup(self, run: RunContext) -> None:
        """Prepare for a run (build networks, read the backend's capabilities)."""

    @abstractmethod
    async def solve(self, problem: Problem, episode: EpisodeContext) -> str:
        """Answer one problem greedily (evaluation); return the final answer text."""

    async def train_episode(self, problem: Problem, episode: EpisodeContext) -> dict[str, Any]:
        """Play one training episode and store what the learner needs; return a JSON-able record."""
        text = await self.solve(problem, episode)
        _, score = episode.task.grade_text(text, problem)
        return {"score": score.score}

    def update(self) -> dict[str, float] | None:
        """One learner update between batches; return its metrics, or None when nothing was learned."""
        return None

    def should_stop(self) -> bool:
        """The method's own early stopping: True ends training before the train split is used up
        (the loop also stops on a plateau of the dev-slice score, see econash.early_stopping)."""
        return False

    def exploring(self) -> bool:
        """Whether the behaviour policy still explores; the loop never stops such a run early."""
        return False

    def warnings(self) -> list[str]:
        """Sentences about the run's settings a user should read (shown with the results and kept in
        summary.json's ``notes``), e.g. a train size too small for the action space."""
        return []

    def set_policy(self, policy: str) -> None:
        """Learning methods switch between ``"trained"`` and ``"untrained"`` (random actions, same
        prompts) so a run can report both side by side."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: parameters, optimiser, buffers, RNG states."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
