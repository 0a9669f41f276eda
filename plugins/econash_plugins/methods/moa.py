"""The `moa` method: Mixture-of-Agents, layers of proposers then one aggregator (prompt ``moa-v1``)."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, ClassVar

from pydantic import Field

from econash.engine.context import EpisodeContext
from econash.hookspecs import hookimpl
from econash.method import Method
from econash.types import GenerationConfig, Problem, StrictModel
from econash_plugins.methods.baselines import MAX_TOKENS_HELP, load_prompt, role_settings, sampling_overrides, truncate

PROMPT = load_prompt("moa", 1)


def moa_messages(question: str, answer_format: str, references: list[str] | None,
                 limit: int) -> list[dict[str, str]]:
    """A proposer's or the aggregator's prompt. With ``references`` (the previous layer's answers, each
    cut to ``limit`` characters so prompts cannot grow without bound) the system message asks to
    synthesise them; the user turn is always the plain question."""
    if references is None:
        system = PROMPT.render("system")
    else:
        listed = "\n\n".join(PROMPT.render("reference", number=str(i + 1), answer=truncate(text, limit))
                             for i, text in enumerate(references))
        system = PROMPT.render("synthesise", references=listed)
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": PROMPT.render("user", question=question, answer_format=answer_format)},
    ]


class MixtureOfAgents(Method):
    """Mixture-of-Agents: proposer layers, each later layer reading the previous one, then an aggregator.

    Calls per question: proposers * layers + 1. Proposers use role "proposer" and agent=i; the
    aggregator (role "aggregator") writes the final answer from the last layer's answers. Every call
    has the same completion cap (max_tokens, else the run's). Proposers sample at ``temperature``
    (else the run's), for diverse references; the aggregator at ``aggregator_temperature``, 0.1 by
    default like econash's commitment_temperature: both calls commit the team's final answer, so a
    comparison gives them the same near-greedy setting (None: the proposers' temperature).
    Prompt: ``prompt_version``.
    """

    name = "moa"
    #: `econash compare --sweep-executors` sets this option to the executor count
    executors_option = "proposers"
    prompt_version: ClassVar[str] = PROMPT.id
    prompt_hash: ClassVar[str] = PROMPT.sha256

    class Options(StrictModel):
        layers: int = Field(2, ge=1, description="Proposer layers; each later layer reads the previous one's answers.")
        proposers: int = Field(3, ge=1, description="Proposers per layer, the team size: follows --executors when unset.")
        temperature: float | None = Field(None, ge=0.0, description=(
            "Proposers' temperature, for diverse references; null: the run's generation.temperature."))
        max_tokens: int | None = Field(None, gt=0, description=MAX_TOKENS_HELP)
        max_reference_chars: int = Field(2000, ge=50, description=(
            "Each reference answer is cut to this many characters, so prompts cannot grow without bound."))
        aggregator_temperature: float | None = Field(0.1, ge=0.0, description=(
            "The aggregator's temperature: near-greedy like econash's commitment, since both commit the team's "
            "final answer; null: the proposers' temperature."))

    def _aggregator_temperature(self) -> float | None:
        o = self.options
        return o.temperature if o.aggregator_temperature is None else o.aggregator_temperature

    def sampling_settings(self, generation: GenerationConfig) -> dict[str, dict[str, Any]]:
        """Each role's temperature and completion cap (the settings table of `econash compare`)."""
        o = self.options
        return {"proposer": role_settings(generation, o.temperature, o.max_tokens),
                "aggregator": role_settings(generation, self._aggregator_temperature(), o.max_tokens)}

    async def solve(self, problem: Problem, episode: EpisodeContext) -> str:
        opts = self.options
        answer_format = episode.task.answer_format(problem)
        sampling = episode.sampling(**sampling_overrides(opts.temperature, opts.max_tokens))
        references: list[str] | None = None
        for layer in range(opts.layers):
            # One prompt per layer, shared by its proposers. Every call of the episode gets its own draw,
            # so neither the cache nor a seeded backend collapses proposers (or the aggregator, whose
            # prompt equals a next layer's) into one sample.
            messages = moa_messages(problem.question, answer_format, references, opts.max_reference_chars)
            results = await asyncio.gather(*(
                episode.call(messages, sampling, role="proposer", agent=i, draw=layer * opts.proposers + i)
                for i in range(opts.proposers)
            ))
            references = [result.text for result in results]
        aggregate = episode.sampling(**sampling_overrides(self._aggregator_temperature(), opts.max_tokens))
        final = await episode.call(moa_messages(problem.question, answer_format, references, opts.max_reference_chars),
                                   aggregate, role="aggregator", agent=0, draw=opts.layers * opts.proposers)
        return final.text


@hookimpl
def register_methods(register: Callable[..., None]) -> None:
    register("moa", MixtureOfAgents)
