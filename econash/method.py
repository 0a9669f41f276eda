"""The interface of reasoning methods: EcoNash and every baseline solve problems through it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from econash.types import Problem

if TYPE_CHECKING:  # pragma: no cover
    from econash.engine.context import EpisodeContext, RunContext


class Method(ABC):
    """Turns a problem into a final answer text by calling LLMs through an episode context.

    Every call goes through ``episode.call`` so tokens, calls and events are counted the same way
    for every method.
    """

    name: ClassVar[str] = "method"
    #: methods that learn get ``train`` called on the train split before evaluation
    learns: ClassVar[bool] = False

    async def setup(self, run: RunContext) -> None:
        """Prepare for a run (build networks, read the backend's capabilities)."""

    async def train(self, problems: list[Problem], run: RunContext) -> None:
        """Learn from the train split. Only called when ``learns`` is true."""

    @abstractmethod
    async def solve(self, problem: Problem, episode: EpisodeContext) -> str:
        """Answer one problem; return the final answer text."""
