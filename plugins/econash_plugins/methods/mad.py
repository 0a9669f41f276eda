"""The `mad` method: multi-agent debate, N agents over R rounds, majority at the end (prompt ``mad-v1``)."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, ClassVar

from pydantic import Field

from econash.engine.context import EpisodeContext
from econash.hookspecs import hookimpl
from econash.method import Method
from econash.types import GenerationConfig, Problem, StrictModel
from econash_plugins.methods.baselines import MAX_TOKENS_HELP, load_prompt, majority_vote, role_settings, sampling_overrides, truncate

PROMPT = load_prompt("mad", 1)


def debate_messages(question: str, answer_format: str, agent: int, previous: list[str] | None,
                    limit: int) -> list[dict[str, str]]:
    """Agent ``agent``'s prompt for one round. ``previous`` holds every agent's last answer (None in
    round 1): the agent's own comes back as its assistant turn, the others' as evidence.

    Only the last round is shown, each answer cut to ``limit`` characters, so prompts stay bounded
    however many rounds run (full transcripts outgrow small models' context windows).
    """
    messages = [
        {"role": "system", "content": PROMPT.render("system")},
        {"role": "user", "content": PROMPT.render("first", question=question, answer_format=answer_format)},
    ]
    if previous is None:
        return messages
    others = "\n\n".join(
        PROMPT.render("other", number=str(j + 1), answer=truncate(answer, limit))
        for j, answer in enumerate(previous) if j != agent
    )
    messages.append({"role": "assistant", "content": truncate(previous[agent], limit)})
    messages.append({"role": "user", "content": PROMPT.render("update", others=others, answer_format=answer_format)})
    return messages


class MultiAgentDebate(Method):
    """Multi-agent debate: agents answer alone, then revise after reading each other; majority at the end.

    Calls per question: agents * rounds, all with role "debater" and agent=i. With one agent every
    later round is a self-revision (no others to read). Prompt: ``prompt_version``. Debaters sample at
    the run's generation.temperature unless ``temperature`` is set: agents that all decoded greedily
    would start from one answer, and debate needs them to differ.
    """

    name = "mad"
    #: `econash compare --sweep-executors` sets this option to the executor count
    executors_option = "agents"
    prompt_version: ClassVar[str] = PROMPT.id
    prompt_hash: ClassVar[str] = PROMPT.sha256

    class Options(StrictModel):
        agents: int = Field(3, ge=1, description="Debaters, the team size: follows --executors when unset.")
        rounds: int = Field(2, ge=1, description=(
            "Rounds of debate: the first answers alone, each later one revises after reading the others."))
        temperature: float | None = Field(None, ge=0.0, description=(
            "Debaters' temperature; null: the run's generation.temperature (agents that all decoded greedily "
            "would start from one answer, and debate needs them to differ)."))
        max_tokens: int | None = Field(None, gt=0, description=MAX_TOKENS_HELP)
        max_reference_chars: int = Field(2000, ge=50, description=(
            "Each other agent's answer is cut to this many characters in a prompt, so prompts stay bounded "
            "however many rounds run."))

    def sampling_settings(self, generation: GenerationConfig) -> dict[str, dict[str, Any]]:
        """Each role's temperature and completion cap (the settings table of `econash compare`)."""
        return {"debater": role_settings(generation, self.options.temperature, self.options.max_tokens)}

    async def solve(self, problem: Problem, episode: EpisodeContext) -> str:
        opts = self.options
        answer_format = episode.task.answer_format(problem)
        sampling = episode.sampling(**sampling_overrides(opts.temperature, opts.max_tokens))
        answers: list[str] | None = None
        for r in range(opts.rounds):
            # Every call of the episode gets its own draw: round-1 prompts are identical across agents,
            # and without distinct draws the cache (or a seeded backend) would give every agent one answer.
            calls = [
                episode.call(debate_messages(problem.question, answer_format, i, answers, opts.max_reference_chars),
                             sampling, role="debater", agent=i, draw=r * opts.agents + i)
                for i in range(opts.agents)
            ]
            answers = [result.text for result in await asyncio.gather(*calls)]
        assert answers is not None  # rounds >= 1
        return answers[majority_vote(answers, episode.task, problem).winner]


@hookimpl
def register_methods(register: Callable[..., None]) -> None:
    register("mad", MultiAgentDebate)
