"""Errors a user can cause. The CLI prints their message as one sentence and exits non-zero."""

from __future__ import annotations

from pathlib import Path


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


class CacheError(EconashError):
    """The response cache file is damaged or cannot be written; the message names the file and the fix."""


class DamagedRunError(EconashError):
    """A file of a run directory is damaged (a checkpoint that cannot be read, a line that is not a
    result record); the message names the file and what to do about it."""


class DamagedCacheError(CacheError):
    """The response cache file is not a readable SQLite database; `econash cache clear` replaces it."""


class RunWriteError(EconashError):
    """A write into the run directory failed; what it half wrote was undone, so `econash resume`
    continues the run once the cause is fixed."""


class DiskFullError(RunWriteError):
    """A write into the run directory failed because the disk is full."""


class DamagedCheckpointError(DamagedRunError):
    """A checkpoint file cannot be read; resume falls back to an older one, eval names the file."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"Checkpoint '{path}' is damaged ({reason}); evaluate another checkpoint from its folder.")


class RunInterrupted(EconashError):
    """Ctrl-C (exit 130) or SIGTERM (exit 143) stopped a run; the message says how to continue it."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
