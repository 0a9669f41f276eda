"""Ctrl-C and SIGTERM stop a run cleanly: calls in flight are cancelled, every finished result is
already on disk, and the user is told which directory `econash resume` continues.

SIGINT exits 130 and SIGTERM 143 (128 + the signal's number, what a shell reports for a process the
signal killed), so scripts and schedulers can tell an interruption from an error (2).
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any, Callable, Coroutine, TypeVar

from econash.errors import RunInterrupted

T = TypeVar("T")

EXIT_SIGINT = 128 + signal.SIGINT
EXIT_SIGTERM = 128 + signal.SIGTERM


def interrupted(run_dir: Path | None, how: str = "Interrupted") -> str:
    """The sentence for a stopped run: where its work is and the command that continues it."""
    if run_dir is None:
        return f"{how} before the run started; nothing was written."
    return f"{how}; finished work is kept in {run_dir}: `econash resume {run_dir}` continues it."


def run_until_signal(coroutine: Coroutine[Any, Any, T], run_dir: Callable[[], Path | None]) -> T:
    """Run ``coroutine`` to the end, or until SIGINT or SIGTERM; then raise RunInterrupted naming
    ``run_dir()``, the run's directory once it exists (None before)."""
    terminated = False

    async def guarded() -> T:
        nonlocal terminated
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()

        def on_sigterm() -> None:
            nonlocal terminated
            terminated = True
            if task is not None:
                task.cancel()  # like asyncio's own Ctrl-C handling: finally blocks run, files are closed

        try:
            loop.add_signal_handler(signal.SIGTERM, on_sigterm)
            installed = True
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no such signals
            installed = False
        try:
            return await coroutine
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGTERM)

    try:
        return asyncio.run(guarded())
    except KeyboardInterrupt:
        raise RunInterrupted(interrupted(run_dir()), EXIT_SIGINT) from None
    except asyncio.CancelledError:
        if terminated:
            raise RunInterrupted(interrupted(run_dir(), "Stopped by SIGTERM"), EXIT_SIGTERM) from None
        raise
