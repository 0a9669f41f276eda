"""Every boundary model in one import, for plugins and older code: ``from econash.types import Problem``.

The models live by family: econash.call_types (LLM requests, results, usage, sampling, capabilities,
call records), econash.task_types (problems, scores, reward inputs), econash.topology (cluster
layouts, executor backends), econash.config_types (RunConfig and its parts) and econash.run_records
(manifest, result records, summary). Every model forbids unknown fields (econash.strict_model).
The core imports from those modules; this one re-exports their public names unchanged.
"""

from __future__ import annotations

from econash.call_types import (
    CAP_FINISH_REASONS,
    CallRecord,
    Capabilities,
    LLMRequest,
    LLMResult,
    Message,
    SamplingParams,
    Usage,
)
from econash.config_types import MAX_SEED, CacheConfig, DevConfig, GenerationConfig, RetryConfig, RunConfig
from econash.run_records import (
    SCHEMA_VERSION,
    EndpointCounts,
    EvalTokens,
    PluginInfo,
    PolicyComparison,
    ResultRecord,
    RoleUsage,
    RunManifest,
    Summary,
    TokenTotals,
    UntrainedSummary,
)
from econash.strict_model import StrictModel
from econash.task_types import Problem, RewardInput, Score
from econash.topology import ClusterLayout, ExecutorBackend

__all__ = [
    "CAP_FINISH_REASONS", "MAX_SEED", "SCHEMA_VERSION", "CacheConfig", "CallRecord", "Capabilities",
    "ClusterLayout", "DevConfig", "EndpointCounts", "EvalTokens", "ExecutorBackend", "GenerationConfig", "LLMRequest",
    "LLMResult", "Message", "PluginInfo", "PolicyComparison", "Problem", "ResultRecord", "RetryConfig", "RewardInput",
    "RoleUsage", "RunConfig", "RunManifest", "SamplingParams", "Score", "StrictModel", "Summary", "TokenTotals",
    "UntrainedSummary", "Usage",
]
