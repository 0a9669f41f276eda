"""Data that crosses a boundary between the core and a plugin, as pydantic models.

Every model forbids unknown fields, so a misspelled key fails where it is written instead of
being silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from econash.urls import BaseUrl

SCHEMA_VERSION = 1
#: the largest seed: every consumer takes it (torch, numpy, llama.cpp's 32-bit sampler seed)
MAX_SEED = 2**32 - 1


class StrictModel(BaseModel):
    """Base for every boundary model: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- LLM calls


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
    #: dollars at the run's prices (0 for a cached reply); None: no price table, or none for the model
    cost: float | None = None

    @property
    def truncated(self) -> bool:
        """Whether the reply stopped at its completion cap rather than where the model ended it."""
        return self.finish_reason in CAP_FINISH_REASONS


# ---------------------------------------------------------------- tasks and methods


class Problem(StrictModel):
    """One question of a task with its gold answer (any JSON value the task's grader understands)."""

    id: str
    question: str
    gold: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class Score(StrictModel):
    """A task's verdict on one answer. score is in [0, 1]; correct is None for partial-credit tasks."""

    correct: bool | None = None
    score: float = Field(0.0, ge=0.0, le=1.0)
    metrics: dict[str, float] = Field(default_factory=dict)


class RewardInput(StrictModel):
    """What a reward plugin sees after one episode. Rewards return one value per executor in [0, 1].

    ``executor_agrees[i]`` says whether executor i's parsed answer matches the commitment's;
    embeddings are unit vectors from the run's text embedder.
    """

    problem: Problem
    executor_answers: list[str]
    commitment: str
    executor_scores: list[float] = Field(default_factory=list)
    commitment_score: float = 0.0
    executor_agrees: list[bool] = Field(default_factory=list)
    executor_embeddings: list[list[float]] = Field(default_factory=list)
    commitment_embedding: list[float] = Field(default_factory=list)
    seed: int = 0


class ExecutorBackend(StrictModel):
    """The backend and model one executor runs on (heterogeneous teams); unset fields follow the run's."""

    backend: str
    model: str | None = None
    base_url: BaseUrl = None
    options: dict[str, Any] = Field(default_factory=dict)


class ClusterLayout(StrictModel):
    """How a topology groups executors: one list of executor indices per local coordinator. With
    ``hierarchical`` a global coordinator commits from the clusters' commitments. ``executors``
    gives each executor its own backend (empty: every role uses the run's backend)."""

    clusters: list[list[int]]
    hierarchical: bool = False
    executors: list[ExecutorBackend] = Field(default_factory=list)
    #: executors of one round whose calls may fail (retries exhausted) before the episode fails;
    #: the runner copies it from the topology's ``max_failed_executors``
    max_failed_executors: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _partition(self) -> ClusterLayout:
        members = sorted(i for cluster in self.clusters for i in cluster)
        if not self.clusters or any(not c for c in self.clusters) or members != list(range(len(members))):
            raise ValueError(f"clusters {self.clusters} must split executors 0..N-1 into non-empty groups")
        if self.executors and len(self.executors) != len(members):
            raise ValueError(f"{len(self.executors)} executor backends for {len(members)} executors")
        return self


# ---------------------------------------------------------------- configuration


class GenerationConfig(StrictModel):
    """Default generation settings for calls a method does not choose itself."""

    temperature: float = Field(0.7, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(256, gt=0)
    timeout_s: float = Field(120.0, gt=0)

    def sampling(self, **overrides: Any) -> SamplingParams:
        values = {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens}
        values.update(overrides)
        return SamplingParams(**values)


class RetryConfig(StrictModel):
    """Bounded exponential backoff with jitter for transient errors and rate limits."""

    max_attempts: int = Field(6, ge=1, le=50)
    initial_wait_s: float = Field(1.0, ge=0.0)
    max_wait_s: float = Field(60.0, ge=0.0)
    jitter_s: float = Field(1.0, ge=0.0)


class CacheConfig(StrictModel):
    """The SQLite response cache: off while training (exploration needs fresh samples), on for evaluation."""

    train: bool = False
    eval: bool = True
    path: Path | None = None


class DevConfig(StrictModel):
    """The held-in dev slice of the train split: the greedy policy's learning curve, and early stopping
    on it (econash.early_stopping)."""

    #: questions taken from the train split after the --train-size training questions (0: no dev slice)
    size: int = Field(0, ge=0)
    #: learner updates between two dev evaluations
    every: int = Field(4, ge=1)
    early_stopping: bool = True
    #: dev evaluations per window (a dev score of n questions has noise of about 0.5 / sqrt(n))
    patience: int = Field(4, ge=1)
    min_delta: float = Field(0.0, ge=0.0)


class RunConfig(StrictModel):
    """Everything that defines a run. Loaded from defaults < --config YAML < ECONASH_* env < flags < -B."""

    backend: str = "local"
    model: str | None = None
    base_url: BaseUrl = None
    task: str = "arith"
    data: Path | None = None
    method: str = "econash"
    topology: str = "single"
    executors: int = Field(3, ge=1, le=64)
    # Small defaults: `econash run` with no options must finish in minutes on 2 CPU cores (3 min 13 s
    # measured on a 2-core AMD EPYC, 7 to 9 minutes on older 2-core machines; README.md).
    train_size: int = Field(16, ge=0)
    test_size: int = Field(10, ge=1)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    run_dir: Path | None = None
    concurrency: int = Field(4, ge=1, le=256)
    max_connections: int | None = Field(None, ge=1, le=1024)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    cost_limit: float | None = Field(None, gt=0.0)
    prices: Path | None = None
    dev: DevConfig = Field(default_factory=DevConfig)
    checkpoint_every: int = Field(1, ge=1)
    eval_untrained: bool = True
    evaluate: bool = True
    checkpoint: Path | None = None
    display: Literal["auto", "rich", "plain", "none"] = "auto"
    backend_options: dict[str, Any] = Field(default_factory=dict)
    task_options: dict[str, Any] = Field(default_factory=dict)
    method_options: dict[str, Any] = Field(default_factory=dict)
    topology_options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("backend", "task", "method", "topology")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()


# ---------------------------------------------------------------- run records


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
