"""A fake learning method for tests of the training loop, checkpoints and resume.

It is a real (tiny) learner: an epsilon-greedy bandit over executor temperatures whose value
estimates, RNG and pending transitions are its whole state, so a resumed run can be compared
with an uninterrupted one exactly. It is registered as the ``fake-learner`` method.
"""

from __future__ import annotations

import random
from typing import Any

from pydantic import Field

from econash.engine.context import EpisodeContext, RunContext
from econash.method import Method
from econash.strict_model import StrictModel
from econash.task_types import Problem


class FakeLearner(Method):
    """Fake learner for tests: an epsilon-greedy bandit over temperatures with exact checkpoints."""

    name = "fake-learner"
    learns = True

    class Options(StrictModel):
        arms: list[float] = Field(default_factory=lambda: [0.0, 0.5, 1.0],
                                  description="The temperatures the bandit chooses among.")
        epsilon: float = Field(0.3, ge=0.0, le=1.0, description="Probability of a random arm while training.")
        lr: float = Field(0.5, gt=0.0, le=1.0, description="Step size of each arm's value towards its rewards.")
        update_interval: int = Field(4, ge=1, description="Episodes between updates.")
        patience: int | None = Field(None, ge=1, description=(
            "Stop training after this many updates in a row whose batch's mean reward is no new best (the method's "
            "own early stopping); null: never."))

    def __init__(self, options: Options) -> None:
        self.arms = list(options.arms)
        self.epsilon, self.lr, self.patience = options.epsilon, options.lr, options.patience
        self.update_interval = options.update_interval
        self.q = [0.0] * len(self.arms)
        self.rng = random.Random(0)
        self.pending: list[tuple[int, int, float]] = []  # (episode index, arm, reward)
        self.updates = 0
        self.best = float("-inf")
        self.stale = 0

    async def setup(self, run: RunContext) -> None:
        self.rng = random.Random(run.seed)

    def _greedy(self) -> int:
        return max(range(len(self.arms)), key=lambda a: (self.q[a], -a))

    async def _answer(self, problem: Problem, episode: EpisodeContext, arm: int) -> str:
        messages = [{"role": "user", "content": f"{problem.question}\n{episode.task.answer_format(problem)}"}]
        result = await episode.call(messages, episode.sampling(temperature=self.arms[arm]), role="executor", agent=0)
        return result.text

    async def train_episode(self, problem: Problem, episode: EpisodeContext) -> dict[str, Any]:
        # Draw before the first await, so draws follow episode start order, which is fixed.
        explore = self.rng.random() < self.epsilon
        arm = self.rng.randrange(len(self.arms)) if explore else self._greedy()
        text = await self._answer(problem, episode, arm)
        _, score = episode.task.grade_text(text, problem)
        self.pending.append((episode.index, arm, score.score))
        return {"arm": arm, "reward": score.score}

    def update(self) -> dict[str, float] | None:
        if not self.pending:
            return None
        batch = sorted(self.pending)  # completion order varies; episode order does not
        self.pending = []
        for _, arm, reward in batch:
            self.q[arm] += self.lr * (reward - self.q[arm])
        self.updates += 1
        mean = sum(r for _, _, r in batch) / len(batch)
        if mean > self.best:
            self.best, self.stale = mean, 0
        else:
            self.stale += 1
        return {"mean_reward": mean, "q_greedy": self.q[self._greedy()]}

    def should_stop(self) -> bool:
        return self.patience is not None and self.stale >= self.patience

    async def solve(self, problem: Problem, episode: EpisodeContext) -> str:
        return await self._answer(problem, episode, self._greedy())

    def state_dict(self) -> dict[str, Any]:
        return {"q": list(self.q), "rng": self.rng.getstate(), "pending": list(self.pending),
                "updates": self.updates, "best": self.best, "stale": self.stale}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.q = list(state["q"])
        self.rng.setstate(state["rng"])
        self.pending = [tuple(p) for p in state["pending"]]
        self.updates, self.best, self.stale = state["updates"], state["best"], state["stale"]
