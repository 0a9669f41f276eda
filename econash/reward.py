"""The interface of reward evaluators: one value in [0, 1] per executor after an episode."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from econash.types import RewardInput


class Reward(ABC):
    """A reward component (for example action likelihood, task-specific, collaborative contribution)."""

    name: ClassVar[str] = "reward"

    @abstractmethod
    def compute(self, episode: RewardInput) -> list[float]:
        """One reward per executor, each in [0, 1]."""
