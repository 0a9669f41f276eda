"""The interface of reward evaluators: one value in [0, 1] per executor after an episode."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from econash.task_types import RewardInput

if TYPE_CHECKING:  # pragma: no cover
    from econash.engine.context import EpisodeContext


class Reward(ABC):
    """A reward component (for example action likelihood, task-specific, collaborative contribution)."""

    name: ClassVar[str] = "reward"

    @abstractmethod
    def compute(self, episode: RewardInput) -> list[float]:
        """One reward per executor, each in [0, 1]."""

    async def compute_async(self, episode: RewardInput, context: EpisodeContext) -> list[float]:
        """Rewards that call an LLM (a judge) override this and make calls through ``context``;
        the default is ``compute``."""
        return self.compute(episode)
