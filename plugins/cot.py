"""The `cot` method: zero-shot chain of thought, one call per question."""

from __future__ import annotations

from typing import Callable

from econash.engine.context import EpisodeContext
from econash.hookspecs import hookimpl
from econash.method import Method
from econash.types import Problem, StrictModel

SYSTEM = "You are a careful problem solver."
USER = "{question}\n\nThink step by step. {answer_format}"


class ChainOfThought(Method):
    """Zero-shot chain of thought: one executor call per question."""

    name = "cot"

    class Options(StrictModel):
        temperature: float | None = None

    def __init__(self, temperature: float | None = None) -> None:
        self.temperature = temperature

    async def solve(self, problem: Problem, episode: EpisodeContext) -> str:
        overrides = {} if self.temperature is None else {"temperature": self.temperature}
        messages = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": USER.format(question=problem.question,
                                                     answer_format=episode.task.answer_format(problem))},
        ]
        result = await episode.call(messages, episode.sampling(**overrides), role="executor", agent=0)
        return result.text


@hookimpl
def register_methods(register: Callable[..., None]) -> None:
    register("cot", ChainOfThought)
