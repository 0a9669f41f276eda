"""Execution of LLM calls for methods: limits, timeouts, accounting and events."""

from econash.engine.context import EpisodeContext, RunContext

__all__ = ["EpisodeContext", "RunContext"]
