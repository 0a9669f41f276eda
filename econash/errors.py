"""Errors a user can cause. The CLI prints their message as one sentence and exits non-zero."""

from __future__ import annotations


class EconashError(Exception):
    """A user-facing error: the message is one sentence that names the fix."""

    exit_code = 2


class ConfigError(EconashError):
    """A configuration key or value is wrong."""


class PluginError(EconashError):
    """A plugin failed to load, clashes with another, or is not installed."""


class UnknownPluginError(PluginError):
    """A name was asked for that no installed plugin registered."""


class MissingDependencyError(EconashError):
    """An optional dependency is not installed; the message names the extra to install."""


class DataError(EconashError):
    """A data file is missing or malformed."""


class BackendError(EconashError):
    """A backend call failed in a way retrying will not fix."""


class RetriesExhaustedError(BackendError):
    """A backend call kept failing with transient errors until the retry budget ran out. A topology
    that tolerates failed executors absorbs these; a fatal error (auth, bad request) still stops the run."""


def missing_dependency(feature: str, package: str, extra: str) -> MissingDependencyError:
    """Build the standard message for a missing optional dependency."""
    return MissingDependencyError(
        f"{feature} needs the '{package}' package; install it with: pip install 'econash[{extra}]'."
    )


class RunInterrupted(EconashError):
    """Ctrl-C (exit 130) or SIGTERM (exit 143) stopped a run; the message says how to continue it."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
