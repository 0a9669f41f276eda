"""The schema of a run's configuration: RunConfig and its nested parts.

econash.config builds a RunConfig from its layers (defaults, YAML, environment, flags, -B); this
module only says what a valid configuration is, so it stays light enough for ``import econash``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from econash.call_types import SamplingParams
from econash.strict_model import StrictModel
from econash.urls import BaseUrls

#: the largest seed: every consumer takes it (torch, numpy, llama.cpp's 32-bit sampler seed)
MAX_SEED = 2**32 - 1


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
    """Bounded exponential backoff with jitter for transient errors and rate limits; and, with several
    base URLs, how long a replica whose call failed is taken out (doubling with each failure in a row)."""

    max_attempts: int = Field(6, ge=1, le=50)
    initial_wait_s: float = Field(1.0, ge=0.0)
    max_wait_s: float = Field(60.0, ge=0.0)
    jitter_s: float = Field(1.0, ge=0.0)
    cooldown_s: float = Field(2.0, ge=0.0)
    max_cooldown_s: float = Field(60.0, ge=0.0)


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
    base_url: BaseUrls = None
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
    #: where a run's directory is made when run_dir is not given (None: econash.paths.runs_dir())
    runs_dir: Path | None = None
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
