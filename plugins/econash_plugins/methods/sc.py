"""The `sc` method: self-consistency, k chain-of-thought samples and a majority vote (prompt ``cot-v1``)."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, ClassVar

from pydantic import Field

from econash.engine.context import EpisodeContext
from econash.hookspecs import hookimpl
from econash.method import Method
from econash.types import GenerationConfig, Problem, StrictModel
from econash_plugins.methods.baselines import MAX_TOKENS_HELP, majority_vote, role_settings, sampling_overrides
from econash_plugins.methods.cot import PROMPT, cot_messages


class SelfConsistency(Method):
    """Self-consistency: k chain-of-thought samples, majority vote over the parsed answers.

    It samples the cot prompt (``prompt_version``) unchanged, so sc and cot differ only in the
    number of samples and the vote. It returns the full text of the first sample whose answer won,
    so the task's own extractor reads the winning answer for any answer format.

    It samples at its own temperature (0.7 by default, not the run's generation.temperature): the vote
    needs diverse samples, so sampling is the method's point. `econash compare` prints it.
    """

    name = "sc"
    #: `econash compare --sweep-executors` sets this option to the executor count
    executors_option = "k"
    prompt_version: ClassVar[str] = PROMPT.id
    prompt_hash: ClassVar[str] = PROMPT.sha256

    class Options(StrictModel):
        k: int = Field(5, ge=1, description=(
            "Chain-of-thought samples per question, the team size: follows --executors when unset."))
        temperature: float | None = Field(0.7, ge=0.0, description=(
            "Sampling temperature: the vote needs diverse samples; null: the run's generation.temperature."))
        max_tokens: int | None = Field(None, gt=0, description=MAX_TOKENS_HELP)

    def sampling_settings(self, generation: GenerationConfig) -> dict[str, dict[str, Any]]:
        """Each role's temperature and completion cap (the settings table of `econash compare`)."""
        return {"executor": role_settings(generation, self.options.temperature, self.options.max_tokens)}

    async def solve(self, problem: Problem, episode: EpisodeContext) -> str:
        opts = self.options
        messages = cot_messages(problem, episode)
        sampling = episode.sampling(**sampling_overrides(opts.temperature, opts.max_tokens))
        # draw=i keeps the k samples of one prompt apart in the response cache and in seeded backends.
        results = await asyncio.gather(*(
            episode.call(messages, sampling, role="executor", agent=0, draw=i) for i in range(opts.k)
        ))
        texts = [result.text for result in results]
        return texts[majority_vote(texts, episode.task, problem).winner]


@hookimpl
def register_methods(register: Callable[..., None]) -> None:
    register("sc", SelfConsistency)
