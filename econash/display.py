"""Progress display for long work: rich bars on a terminal, plain lines in logs and CI, or nothing."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    from econash.engine.engine import Engine

Mode = Literal["auto", "rich", "plain", "none"]

#: the longest the plain display stays silent while calls are in flight: a slow server can take
#: minutes per call, and a log with nothing new for that long looks hung (tests set it small)
HEARTBEAT_EVERY_S = 30.0


def resolve_mode(mode: Mode) -> Literal["rich", "plain", "none"]:
    if mode != "auto":
        return mode
    if os.environ.get("CI") or not sys.stderr.isatty():
        return "plain"
    return "rich"


class Progress:
    """Episodes done and to go, with accuracy, tokens, cost, calls in flight and retries waiting."""

    def __init__(self, mode: Mode = "auto", engine: Engine | None = None, plain_every_s: float = 5.0) -> None:
        self.mode = resolve_mode(mode)
        self.engine = engine
        self.plain_every_s = plain_every_s
        self._rich: Any = None
        self._task_id: Any = None
        self.phase = ""
        self.total = 0
        self.done = 0
        self.correct = 0
        self.graded = 0
        self.tokens = 0
        self.episodes_in_flight = 0
        self._last_print = 0.0
        self._last_line = time.monotonic()
        self._heartbeat: asyncio.Task[None] | None = None

    def __enter__(self) -> Progress:
        if self.mode == "rich":
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                refresh_per_second=4,
            )
            self._rich.__enter__()
        elif self.mode == "plain" and self.engine is not None:
            self._start_heartbeat()
        return self

    def _start_heartbeat(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # entered outside an event loop: no call can be in flight while it is open
        self._heartbeat = loop.create_task(self._beat(HEARTBEAT_EVERY_S))

    async def _beat(self, every_s: float) -> None:
        """Print a heartbeat when calls are in flight and nothing was printed for ``every_s``."""
        while True:
            quiet_for = time.monotonic() - self._last_line
            if quiet_for < every_s:
                await asyncio.sleep(every_s - quiet_for)
            elif self.engine is not None and self.engine.stats.calls_waiting:
                self._say(self.heartbeat())
            else:
                await asyncio.sleep(every_s / 4)  # idle: look again soon, so a new call is heard of in time

    def heartbeat(self) -> str:
        """Episodes, calls in flight, the oldest call's age (from its first try) and retries so far."""
        assert self.engine is not None
        stats = self.engine.stats
        age = stats.oldest_call_age_s() or 0.0
        queued = stats.calls_waiting - stats.in_flight - stats.retry_waiting
        waiting = f" ({queued} waiting for a connection)" if queued > 0 else ""
        return (f"{self.phase} {self.done}/{self.total} episodes ({self.episodes_in_flight} running)  "
                f"calls in flight {stats.in_flight}{waiting}, oldest call {age:.1f} s, "
                f"retries {stats.retries} ({stats.retry_waiting} waiting)")

    def _say(self, text: str) -> None:
        print(f"econash: {text}", file=sys.stderr, flush=True)
        self._last_line = time.monotonic()

    def __exit__(self, *exc: Any) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        if self._rich is not None:
            self._rich.__exit__(*exc)
            self._rich = None

    def start_phase(self, phase: str, total: int, done: int = 0) -> None:
        self.phase, self.total, self.done = phase, total, done
        self.correct = self.graded = self.tokens = 0
        if self._rich is not None:
            self._task_id = self._rich.add_task(phase, total=total, completed=done, stats="")
        elif self.mode == "plain":
            resumed = f" ({done} already done)" if done else ""
            self._say(f"{phase}: {total} episodes{resumed}")

    def note(self, text: str) -> None:
        """One line between progress updates (a dev-slice score during training, say)."""
        if self._rich is not None:
            self._rich.console.print(text)
        elif self.mode == "plain":
            self._say(text)

    def started(self) -> None:
        self.episodes_in_flight += 1
        self._refresh(force=False)

    def abandoned(self) -> None:
        self.episodes_in_flight -= 1

    def finished(self, correct: bool | None, tokens: int) -> None:
        self.episodes_in_flight -= 1
        self.done += 1
        self.tokens += tokens
        if correct is not None:
            self.graded += 1
            self.correct += int(correct)
        self._refresh(force=self.done == self.total)

    def stats(self) -> str:
        parts = []
        if self.graded:
            parts.append(f"acc {self.correct / self.graded:.2f}")
        parts.append(f"tokens {self.tokens}")
        if self.engine is not None:
            if self.engine.cost_limit is not None or self.engine.spent:
                parts.append(f"cost ${self.engine.spent:.4f}")
            parts.append(f"calls in flight {self.engine.stats.in_flight}")
            if self.engine.stats.retry_waiting or self.engine.stats.retries:
                parts.append(f"retries {self.engine.stats.retries} ({self.engine.stats.retry_waiting} waiting)")
        return "  ".join(parts)

    def _refresh(self, force: bool) -> None:
        if self._rich is not None and self._task_id is not None:
            self._rich.update(self._task_id, completed=self.done, stats=self.stats())
        elif self.mode == "plain" and self.done:
            now = time.monotonic()
            if force or now - self._last_print >= self.plain_every_s:
                self._last_print = now
                self._say(f"{self.phase} {self.done}/{self.total}  {self.stats()}")
