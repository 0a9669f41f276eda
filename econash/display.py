"""Progress display for long work: rich bars on a terminal, plain lines in logs and CI, or nothing."""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Literal

Mode = Literal["auto", "rich", "plain", "none"]


def resolve_mode(mode: Mode) -> Literal["rich", "plain", "none"]:
    if mode != "auto":
        return mode
    if os.environ.get("CI") or not sys.stderr.isatty():
        return "plain"
    return "rich"


class Progress:
    """Counts episodes of one phase and shows accuracy, tokens and calls in flight as they go."""

    def __init__(self, mode: Mode = "auto") -> None:
        self.mode = resolve_mode(mode)
        self._rich: Any = None
        self._task_id: Any = None
        self.phase = ""
        self.total = 0
        self.done = 0
        self.correct = 0
        self.graded = 0
        self.tokens = 0
        self.in_flight = 0
        self._last_print = 0.0

    def __enter__(self) -> Progress:
        if self.mode == "rich":
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn

            self._rich = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._rich.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._rich is not None:
            self._rich.__exit__(*exc)
            self._rich = None

    def start_phase(self, phase: str, total: int) -> None:
        self.phase, self.total = phase, total
        self.done = self.correct = self.graded = self.tokens = 0
        if self._rich is not None:
            self._task_id = self._rich.add_task(phase, total=total, stats="")
        elif self.mode == "plain":
            print(f"econash: {phase}: {total} episodes", file=sys.stderr, flush=True)

    def started(self) -> None:
        self.in_flight += 1
        self._refresh(force=False)

    def finished(self, correct: bool | None, tokens: int) -> None:
        self.in_flight -= 1
        self.done += 1
        self.tokens += tokens
        if correct is not None:
            self.graded += 1
            self.correct += int(correct)
        self._refresh(force=self.done == self.total)

    def stats(self) -> str:
        acc = f"acc {self.correct / self.graded:.2f}  " if self.graded else ""
        return f"{acc}tokens {self.tokens}  in flight {self.in_flight}"

    def _refresh(self, force: bool) -> None:
        if self._rich is not None and self._task_id is not None:
            self._rich.update(self._task_id, completed=self.done, stats=self.stats())
        elif self.mode == "plain" and self.done:
            now = time.monotonic()
            if force or now - self._last_print >= 5.0:
                self._last_print = now
                print(f"econash: {self.phase} {self.done}/{self.total}  {self.stats()}", file=sys.stderr, flush=True)
