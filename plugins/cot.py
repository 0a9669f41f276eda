"""The `cot` method: zero-shot chain of thought, one call per question (prompt ``cot-v1``)."""

from __future__ import annotations

from typing import Callable, ClassVar

from econash.engine.context import EpisodeContext
from econash.hookspecs import hookimpl
from econash.method import Method
from econash.types import Problem, StrictModel
from econash_plugins._baselines import load_prompt

PROMPT = load_prompt("cot", 1)


def cot_messages(problem: Problem, episode: EpisodeContext) -> list[dict[str, str]]:
    """The chain-of-thought prompt; self-consistency samples exactly these messages."""
    return [
        {"role": "system", "content": PROMPT.render("system")},
        {"role": "user", "content": PROMPT.render("user", question=problem.question,
                                                  answer_format=episode.task.answer_format(problem))},
    ]


class ChainOfThought(Method):
    """Zero-shot chain of thought: one executor call per question (prompt cot-v1)."""

    name = "cot"
    prompt_version: ClassVar[str] = PROMPT.id
    prompt_hash: ClassVar[str] = PROMPT.sha256

    class Options(StrictModel):
        temperature: float | None = None

    def __init__(self, temperature: float | None = None) -> None:
        self.temperature = temperature

    async def solve(self, problem: Problem, episode: EpisodeContext) -> str:
        overrides = {} if self.temperature is None else {"temperature": self.temperature}
        result = await episode.call(cot_messages(problem, episode), episode.sampling(**overrides),
                                    role="executor", agent=0)
        return result.text


@hookimpl
def register_methods(register: Callable[..., None]) -> None:
    register("cot", ChainOfThought)
