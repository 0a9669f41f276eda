"""First-party reward evaluators: AL, TS, CC (docs/econash-method.md step 8), an LLM judge and random rewards."""

from __future__ import annotations

import hashlib
import math
import re
from typing import Callable

from pydantic import Field

from econash.engine.context import EpisodeContext
from econash.hookspecs import hookimpl
from econash.reward import Reward
from econash.types import RewardInput, StrictModel


def _clip(value: float) -> float:
    return min(max(value, 0.0), 1.0)


class ActionLikelihoodReward(Reward):
    """AL: cosine similarity between each executor's answer and the commitment (text embeddings)."""

    name = "al"

    def compute(self, episode: RewardInput) -> list[float]:
        target = episode.commitment_embedding
        if not target or len(episode.executor_embeddings) != len(episode.executor_answers):
            raise ValueError("the al reward needs embeddings of every executor answer and of the commitment")
        return [_clip(_cosine(vector, target)) for vector in episode.executor_embeddings]


class TaskScoreReward(Reward):
    """TS: each executor's own answer scored by the task's grader against the gold answer."""

    name = "ts"

    def compute(self, episode: RewardInput) -> list[float]:
        if len(episode.executor_scores) != len(episode.executor_answers):
            raise ValueError("the ts reward needs one task score per executor answer")
        return [_clip(score) for score in episode.executor_scores]


class CollaborativeContributionReward(Reward):
    """CC: the commitment's score for executors whose answer agrees with the commitment, else 0."""

    name = "cc"

    def compute(self, episode: RewardInput) -> list[float]:
        if len(episode.executor_agrees) != len(episode.executor_answers):
            raise ValueError("the cc reward needs to know which executors agree with the commitment")
        return [_clip(episode.commitment_score) if agrees else 0.0 for agrees in episode.executor_agrees]


class RandomReward(Reward):
    """Random rewards in [0, 1], reproducible per question and executor (the ablation of the paper)."""

    name = "random"

    def compute(self, episode: RewardInput) -> list[float]:
        return [_unit_hash(f"{episode.seed}:{episode.problem.id}:{i}") for i in range(len(episode.executor_answers))]


JUDGE_PROMPT = (
    "Rate how likely this answer to the question is correct, from 0 (certainly wrong) to 10 (certainly right). "
    "Reply with the number only.\n\nQuestion: {question}\n\nAnswer: {answer}"
)


class LLMJudgeReward(Reward):
    """LLM judge: the run's backend rates each executor answer from 0 to 10 (partial credit, no gold needed)."""

    name = "llm-judge"

    class Options(StrictModel):
        temperature: float = Field(0.0, ge=0.0, description="Temperature of the judge's calls (greedy: one fixed rating).")
        max_tokens: int = Field(8, ge=1, description="Completion cap of a rating: the judge replies with a number only.")

    def __init__(self, options: Options) -> None:
        self.temperature, self.max_tokens = options.temperature, options.max_tokens

    def compute(self, episode: RewardInput) -> list[float]:
        raise RuntimeError("the llm-judge reward calls an LLM; use compute_async")

    async def compute_async(self, episode: RewardInput, context: EpisodeContext) -> list[float]:
        scores = []
        for i, answer in enumerate(episode.executor_answers):
            prompt = JUDGE_PROMPT.format(question=episode.problem.question, answer=answer)
            result = await context.call([{"role": "user", "content": prompt}],
                                        context.sampling(temperature=self.temperature, max_tokens=self.max_tokens),
                                        role="judge", agent=i)
            found = re.search(r"\d+(?:\.\d+)?", result.text)
            scores.append(_clip(float(found.group()) / 10.0) if found else 0.0)
        return scores


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _unit_hash(text: str) -> float:
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


@hookimpl
def register_rewards(register: Callable[..., None]) -> None:
    register("al", ActionLikelihoodReward)
    register("ts", TaskScoreReward)
    register("cc", CollaborativeContributionReward)
    register("random", RandomReward)
    register("llm-judge", LLMJudgeReward)
