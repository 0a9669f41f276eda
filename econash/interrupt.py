"""Ctrl-C and SIGTERM stop a run cleanly: calls in flight are cancelled, every finished result is
already on disk, and the user is told which directory `econash resume` continues.

SIGINT exits 130 and SIGTERM 143 (128 + the signal's number, what a shell reports for a process the
signal killed), so scripts and schedulers can tell an interruption from an error (2).

Called where an event loop is already running (a Jupyter cell, whose kernel runs one), the run goes
on a worker thread with its own loop, since ``asyncio.run`` refuses to start a second loop in a
thread that has one; the caller waits for it, and an interrupt of the kernel cancels it.
"""

from __future__ import annotations

import asyncio
import signal
import threading
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
        return asyncio.run(guarded()) if not _loop_running() else _on_worker_thread(guarded())
    except KeyboardInterrupt:
        raise RunInterrupted(interrupted(run_dir()), EXIT_SIGINT) from None
    except asyncio.CancelledError:
        if terminated:
            raise RunInterrupted(interrupted(run_dir(), "Stopped by SIGTERM"), EXIT_SIGTERM) from None
        raise


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _on_worker_thread(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to the end on a new thread with its own event loop and return what it
    returns (or raise what it raised). A KeyboardInterrupt while waiting (Jupyter's interrupt button)
    cancels the run, waits until its finally blocks have closed its files, and is raised again."""
    started = threading.Event()
    running: dict[str, Any] = {}
    outcome: dict[str, Any] = {}

    async def main() -> T:
        running["loop"], running["task"] = asyncio.get_running_loop(), asyncio.current_task()
        started.set()
        return await coroutine

    def work() -> None:
        try:
            outcome["result"] = asyncio.run(main())
        except BaseException as exc:  # handed to the waiting thread, which raises it
            outcome["error"] = exc
        finally:
            started.set()

    worker = threading.Thread(target=work, name="econash-run", daemon=True)
    worker.start()
    try:
        worker.join()
    except KeyboardInterrupt:
        started.wait()
        if "task" in running:
            try:
                running["loop"].call_soon_threadsafe(running["task"].cancel)
            except RuntimeError:  # the run ended (and its loop closed) as the interrupt came
                pass
        worker.join()
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
