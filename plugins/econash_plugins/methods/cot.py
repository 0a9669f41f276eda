"""The `cot` method: zero-shot chain of thought, one call per question (prompt ``cot-v1``)."""

from __future__ import annotations

from typing import Any, Callable, ClassVar

from pydantic import Field

from econash.engine.context import EpisodeContext
from econash.hookspecs import hookimpl
from econash.method import Method
from econash.types import GenerationConfig, Problem, StrictModel
from econash_plugins.methods.baselines import MAX_TOKENS_HELP, load_prompt, role_settings, sampling_overrides

PROMPT = load_prompt("cot", 1)


def cot_messages(problem: Problem, episode: EpisodeContext) -> list[dict[str, str]]:
    """The chain-of-thought prompt; self-consistency samples exactly these messages."""
    return [
        {"role": "system", "content": PROMPT.render("system")},
        {"role": "user", "content": PROMPT.render("user", question=problem.question,
                                                  answer_format=episode.task.answer_format(problem))},
    ]


class ChainOfThought(Method):
    """Zero-shot chain of thought: one executor call per question (prompt cot-v1).

    Greedy (temperature 0) by default: chain of thought is one answer, and the literature reports it
    decoded greedily; a sampled single answer only adds noise to a comparison. The run's
    generation.temperature does not change it (like sc's own 0.7); set the method's ``temperature``
    option to sample. The completion cap is the run's generation.max_tokens unless ``max_tokens`` is set.
    """

    name = "cot"
    prompt_version: ClassVar[str] = PROMPT.id
    prompt_hash: ClassVar[str] = PROMPT.sha256

    class Options(StrictModel):
        temperature: float | None = Field(0.0, ge=0.0, description=(
            "Temperature of the one call: greedy by default, as the literature decodes chain of thought (a sampled "
            "single answer only adds noise to a comparison); null: the run's generation.temperature."))
        max_tokens: int | None = Field(None, gt=0, description=MAX_TOKENS_HELP)

    def sampling_settings(self, generation: GenerationConfig) -> dict[str, dict[str, Any]]:
        """Each role's temperature and completion cap (the settings table of `econash compare`)."""
        return {"executor": role_settings(generation, self.options.temperature, self.options.max_tokens)}

    async def solve(self, problem: Problem, episode: EpisodeContext) -> str:
        sampling = episode.sampling(**sampling_overrides(self.options.temperature, self.options.max_tokens))
        result = await episode.call(cot_messages(problem, episode), sampling, role="executor", agent=0)
        return result.text


@hookimpl
def register_methods(register: Callable[..., None]) -> None:
    register("cot", ChainOfThought)
