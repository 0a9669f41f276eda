"""First-party reward evaluators."""

from __future__ import annotations

from typing import Callable

from econash.hookspecs import hookimpl
from econash.reward import Reward
from econash.types import RewardInput


class TaskScoreReward(Reward):
    """TS: each executor's own answer scored by the task's grader against the gold answer."""

    name = "ts"

    def compute(self, episode: RewardInput) -> list[float]:
        if len(episode.executor_scores) != len(episode.executor_answers):
            raise ValueError("the ts reward needs one task score per executor answer")
        return [min(max(score, 0.0), 1.0) for score in episode.executor_scores]


@hookimpl
def register_rewards(register: Callable[..., None]) -> None:
    register("ts", TaskScoreReward)
