"""What a run directory records: the manifest, one result line per evaluated question, and
summary.json with its token, role and policy-comparison parts.

econash.summary builds a Summary from these records. They live apart from it because the engine's
ledger and econash.integrity use them too, and econash.summary imports both (one module would be an
import cycle, and would load the engine at ``import econash``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from econash.call_types import Usage
from econash.strict_model import StrictModel

SCHEMA_VERSION = 1


class PluginInfo(StrictModel):
    name: str
    distribution: str | None = None
    version: str | None = None
    hooks: list[str] = Field(default_factory=list)
    provides: dict[str, list[str]] = Field(default_factory=dict)


class RunManifest(StrictModel):
    schema_version: int = SCHEMA_VERSION
    econash_version: str
    created: str
    config: dict[str, Any]
    plugins: list[PluginInfo]
    seed: int
    git_sha: str | None = None
    #: the method's versioned prompt file (``name-vN``) and the SHA-256 of its bytes
    prompt_version: str | None = None
    prompt_hash: str | None = None


class TokenTotals(StrictModel):
    prompt: int = 0
    completion: int = 0
    total: int = 0
    per_question: float = 0.0

    @classmethod
    def from_usage(cls, usage: Usage, questions: int) -> TokenTotals:
        return cls(
            prompt=usage.prompt_tokens,
            completion=usage.completion_tokens,
            total=usage.total_tokens,
            per_question=usage.total_tokens / questions if questions else 0.0,
        )


class EvalTokens(TokenTotals):
    """Evaluation tokens at the top level, training tokens nested under `train`."""

    train: TokenTotals = Field(default_factory=TokenTotals)


class RoleUsage(StrictModel):
    """Tokens and calls of one role (coordinator, executor, ...); ``truncated`` counts the calls
    whose reply stopped at its completion cap."""

    prompt: int = 0
    completion: int = 0
    calls: int = 0
    truncated: int = 0

    def add(self, usage: Usage, calls: int = 1, truncated: int = 0) -> None:
        self.prompt += usage.prompt_tokens
        self.completion += usage.completion_tokens
        self.calls += calls
        self.truncated += truncated


class ResultRecord(StrictModel):
    """One line of results.jsonl: one evaluated question."""

    id: str
    prediction: Any = None
    prediction_text: str
    gold: Any = None
    correct: bool | None = None
    score: float
    metrics: dict[str, float] = Field(default_factory=dict)
    tokens: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int
    cached_calls: int = 0
    retries: int = 0
    cost: float | None = None
    by_role: dict[str, RoleUsage] = Field(default_factory=dict)
    by_agent: dict[str, RoleUsage] = Field(default_factory=dict)
    by_model: dict[str, RoleUsage] = Field(default_factory=dict)
    error: str | None = None
    #: what the method reports about how it answered (econash: each executor's action label)
    details: dict[str, Any] = Field(default_factory=dict)


class PolicyComparison(StrictModel):
    """Trained against untrained on the same questions: McNemar's exact test on the discordant pairs."""

    n: int
    difference: float
    #: questions only the trained policy got right, and only the untrained one
    only_trained: int
    only_untrained: int
    p_value: float
    verdict: str


class UntrainedSummary(StrictModel):
    """The same questions answered by a learning method before it learned (random actions, same prompts)."""

    accuracy: float | None = None
    #: 95% Wilson interval of ``accuracy`` (tasks with right/wrong answers)
    accuracy_ci: tuple[float, float] | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    n_test: int = 0
    tokens: TokenTotals = Field(default_factory=TokenTotals)
    llm_calls: int = 0
    cost: float | None = None
    #: per executor, the share of test questions on which it took each action
    executor_actions: list[dict[str, float]] = Field(default_factory=list)
    wall_s: float | None = None


class EndpointCounts(StrictModel):
    """One replica's share of a run's calls (summary.json's ``by_endpoint``), every session included."""

    #: calls it answered (a cached reply is answered by none)
    calls: int = 0
    #: attempts that failed there with an error the engine retries (each one retried elsewhere, or the
    #: call's last)
    failures: int = 0


class Summary(StrictModel):
    """summary.json: the headline numbers of a run."""

    task: str
    method: str
    backend: str
    model: str
    n_train: int
    n_test: int
    accuracy: float | None = None
    #: 95% Wilson interval of ``accuracy`` (tasks with right/wrong answers)
    accuracy_ci: tuple[float, float] | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    tokens: EvalTokens
    llm_calls: int
    llm_calls_train: int = 0
    by_role: dict[str, RoleUsage] = Field(default_factory=dict)
    by_agent: dict[str, RoleUsage] = Field(default_factory=dict)
    by_model: dict[str, RoleUsage] = Field(default_factory=dict)
    #: tokens, calls and calls cut at their cap by role during training (evaluation: ``by_role``)
    by_role_train: dict[str, RoleUsage] = Field(default_factory=dict)
    #: with several base URLs: per replica (its URL without secrets), the calls it answered and the
    #: attempts that failed there, every phase and session included
    by_endpoint: dict[str, EndpointCounts] = Field(default_factory=dict)
    cost: float | None = None
    cost_train: float | None = None
    #: dollars spent per phase and in all (key ``total``), every session and redone call included;
    #: None values are unknown (a model without a price); None without a price table
    costs: dict[str, float | None] | None = None
    cached_calls: int = 0
    retries: int = 0
    complete: bool = True
    stopped_reason: str | None = None
    untrained: UntrainedSummary | None = None
    #: trained against untrained, when both answered the same questions
    comparison: PolicyComparison | None = None
    #: per executor, the share of test questions on which it took each action (methods that say)
    executor_actions: list[dict[str, float]] = Field(default_factory=list)
    #: whole-number counters from each result's ``details``, summed over the test questions
    detail_counts: dict[str, int] = Field(default_factory=dict)
    #: sentences about the run's settings a user should read (a train size too small, say)
    notes: list[str] = Field(default_factory=list)
    wall_s: float
    run_dir: Path | None = None
