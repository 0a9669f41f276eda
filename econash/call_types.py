"""What one LLM call is made of: the request a method sends, the sampling settings it chooses, what
a backend's model accepts, the result and its token usage, and the record of the call in events.jsonl.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from econash.strict_model import StrictModel


class Message(StrictModel):
    role: Literal["system", "user", "assistant"]
    content: str


class SamplingParams(StrictModel):
    """Generation settings for one call. The method chooses them; the backend may clip them."""

    temperature: float = Field(0.7, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(256, gt=0)
    seed: int | None = None
    stop: list[str] | None = None


class Capabilities(StrictModel):
    """What a backend's model accepts, so methods can clip their actions to it."""

    temperature_range: tuple[float, float] = (0.0, 2.0)
    supports_top_p: bool = True
    supports_seed: bool = False
    context_length: int | None = None
    reports_usage: bool = True
    max_concurrency: int = Field(4, ge=1)

    def clip(self, params: SamplingParams) -> SamplingParams:
        """Return params that this backend accepts: temperature clipped, unsupported fields dropped."""
        low, high = self.temperature_range
        update: dict[str, Any] = {"temperature": min(max(params.temperature, low), high)}
        if not self.supports_top_p:
            update["top_p"] = 1.0
        if not self.supports_seed:
            update["seed"] = None
        return params.model_copy(update=update)


class Usage(StrictModel):
    """Token counts of one call or a sum of calls."""

    prompt_tokens: int = Field(0, ge=0)
    completion_tokens: int = Field(0, ge=0)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class LLMRequest(StrictModel):
    """One call to a backend. role and agent are for accounting; draw keeps repeated samples apart."""

    messages: list[Message]
    sampling: SamplingParams = Field(default_factory=SamplingParams)
    role: str = "executor"
    agent: int | None = None
    draw: int = 0


class LLMResult(StrictModel):
    text: str
    usage: Usage
    model: str
    finish_reason: str | None = None
    latency_s: float = 0.0
    cached: bool = False


#: finish reasons that mean a reply stopped at its completion cap (OpenAI's and Anthropic's names)
CAP_FINISH_REASONS = frozenset({"length", "max_tokens"})


class CallRecord(StrictModel):
    """What a method did in one call, as it is written to events.jsonl.

    ``episode`` and ``problem_id`` tie the call to its question even when episodes run
    concurrently; ``finish_reason`` is the backend's (``length`` when the reply hit its cap).
    """

    role: str
    agent: int | None = None
    episode: int | None = None
    problem_id: str | None = None
    model: str
    sampling: SamplingParams
    text: str
    usage: Usage
    finish_reason: str | None = None
    latency_s: float = 0.0
    cached: bool = False
    retries: int = 0
    #: the replica that answered (its URL without secrets), when the backend has several; None otherwise
    endpoint: str | None = None
    #: dollars at the run's prices (0 for a cached reply); None: no price table, or none for the model
    cost: float | None = None

    @property
    def truncated(self) -> bool:
        """Whether the reply stopped at its completion cap rather than where the model ended it."""
        return self.finish_reason in CAP_FINISH_REASONS
