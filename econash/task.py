"""The interface every task adapter implements: load problems, instruct, extract, score."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal

from econash.task_types import Problem, Score

Split = Literal["train", "test"]


class Task(ABC):
    """A benchmark or problem source with its answer format and grader."""

    name: ClassVar[str] = "task"
    #: the name of the headline metric in summaries ("accuracy" for right/wrong tasks)
    headline_metric: ClassVar[str] = "accuracy"
    #: the completion cap a run uses when the user sets no generation.max_tokens (None: the default,
    #: 256); a task whose answers are long (a travel plan) declares what they need
    default_max_tokens: ClassVar[int | None] = None

    @abstractmethod
    def load(self, split: Split, size: int | None, seed: int) -> list[Problem]:
        """Return ``size`` problems of ``split`` (all when None), chosen deterministically from ``seed``."""

    @abstractmethod
    def answer_format(self, problem: Problem) -> str:
        """The instruction that tells a model how to write its final answer."""

    @abstractmethod
    def extract_answer(self, text: str, problem: Problem) -> Any | None:
        """Parse the final answer out of model text; None when there is none (it then scores 0)."""

    @abstractmethod
    def score(self, answer: Any | None, problem: Problem) -> Score:
        """Grade a parsed answer against the problem's gold answer."""

    def grade_text(self, text: str, problem: Problem) -> tuple[Any | None, Score]:
        """Extract and score in one step; an unparseable answer is wrong, never right."""
        answer = self.extract_answer(text, problem)
        if answer is None:
            return None, Score(correct=False, score=0.0)
        return answer, self.score(answer, problem)

    def aggregate(self, scores: list[Score]) -> dict[str, float]:
        """Task-level metrics from per-question scores. The default is accuracy and mean score."""
        if not scores:
            return {self.headline_metric: 0.0}
        graded = [s.correct for s in scores if s.correct is not None]
        metrics = {"mean_score": sum(s.score for s in scores) / len(scores)}
        metrics[self.headline_metric] = (
            sum(graded) / len(graded) if graded else metrics["mean_score"]
        )
        return metrics
