"""What a task hands the core and what grading produces: a problem with its gold answer, the task's
score of one answer, and what a reward plugin sees after an episode."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from econash.strict_model import StrictModel


class Problem(StrictModel):
    """One question of a task with its gold answer (any JSON value the task's grader understands)."""

    id: str
    question: str
    gold: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class Score(StrictModel):
    """A task's verdict on one answer. score is in [0, 1]; correct is None for partial-credit tasks."""

    correct: bool | None = None
    score: float = Field(0.0, ge=0.0, le=1.0)
    metrics: dict[str, float] = Field(default_factory=dict)


class RewardInput(StrictModel):
    """What a reward plugin sees after one episode. Rewards return one value per executor in [0, 1].

    ``executor_agrees[i]`` says whether executor i's parsed answer matches the commitment's;
    embeddings are unit vectors from the run's text embedder.
    """

    problem: Problem
    executor_answers: list[str]
    commitment: str
    executor_scores: list[float] = Field(default_factory=list)
    commitment_score: float = 0.0
    executor_agrees: list[bool] = Field(default_factory=list)
    executor_embeddings: list[list[float]] = Field(default_factory=list)
    commitment_embedding: list[float] = Field(default_factory=list)
    seed: int = 0
