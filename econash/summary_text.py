"""The run summary as a person reads it at the end of `econash run`, `eval` and `resume`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any


def _accuracy_cell(accuracy: float | None, ci: Any) -> str:
    if accuracy is None:
        return "n/a"
    return f"{accuracy:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else f"{accuracy:.3f}"


def _actions_text(shares: list[dict[str, float]], limit: int = 2) -> str:
    """'1: T=0 p=1 steps 100%; 2: ...': each executor's most frequent actions on the test questions."""
    parts = []
    for i, share in enumerate(shares):
        top = list(share.items())[:limit]
        rest = " ..." if len(share) > limit else ""
        parts.append(f"{i + 1}: " + ", ".join(f"{label} {value:.0%}" for label, value in top) + rest)
    return "; ".join(parts)


PHASE_NAMES = {"eval-untrained": "untrained evaluation", "train": "training", "dev": "dev slice",
               "eval": "evaluation"}


def _dollars(value: float | None) -> str:
    return "unknown" if value is None else f"${value:.4f}"


def cost_text(summary: Any) -> str | None:
    """'cost: $0.13 untrained evaluation, $0.25 training, $0.13 evaluation; $0.51 in all': what every
    phase spent (a model without a price makes its phases and the total unknown, never $0)."""
    if summary.costs is None:
        if summary.cost is None:
            return None
        return f"cost: {_dollars(summary.cost)} evaluation, {_dollars(summary.cost_train)} training"
    phases = [f"{_dollars(dollars)} {PHASE_NAMES.get(phase, phase)}" for phase, dollars in summary.costs.items()
              if phase != "total"]
    total = f"{_dollars(summary.costs.get('total'))} in all"
    return f"cost: {', '.join(phases)}; {total}" if phases else f"cost: {total}"


def endpoints_text(summary: Any) -> str | None:
    """'calls per replica: http://127.0.0.1:8001/v1 41, http://127.0.0.1:8002/v1 38 (2 failed)': how a
    run with several base URLs spread its calls, every phase included."""
    by_endpoint = getattr(summary, "by_endpoint", None)
    if not by_endpoint:
        return None
    parts = [f"{label} {counts.calls}" + (f" ({counts.failures} failed)" if counts.failures else "")
             for label, counts in by_endpoint.items()]
    return "calls per replica: " + ", ".join(parts)


def shown_path(path: Path | str) -> str:
    """A path as output shows it: relative to the working directory when it lies inside it."""
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def print_summary(summary: Any) -> None:
    """The table `econash run`, `eval` and `resume` print: both policies with intervals, the actions
    executors settled on, the verdict, training, truncated calls, notes, cost and the run directory."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"econash run: {summary.method} on {summary.task}")
    for column in ("policy", "questions", "accuracy [95% CI]", "tokens/question", "calls", "wall s"):
        table.add_column(column)
    u = summary.untrained
    if u is not None:
        table.add_row("untrained", str(u.n_test), _accuracy_cell(u.accuracy, u.accuracy_ci),
                      f"{u.tokens.per_question:.1f}", str(u.llm_calls), "" if u.wall_s is None else f"{u.wall_s:.1f}")
    table.add_row("trained" if u is not None or summary.n_train else summary.method, str(summary.n_test),
                  _accuracy_cell(summary.accuracy, summary.accuracy_ci), f"{summary.tokens.per_question:.1f}",
                  str(summary.llm_calls), f"{summary.wall_s:.1f}" + (" (run)" if u is not None else ""))
    console = Console(width=None if sys.stdout.isatty() else 120)
    console.print(f"{summary.backend} backend, model {summary.model}")
    console.print(table)
    if u is not None and u.executor_actions:
        console.print(f"untrained actions per executor: {_actions_text(u.executor_actions)}")
    if summary.executor_actions:
        label = "trained actions" if u is not None or summary.n_train else "actions"
        console.print(f"{label} per executor: {_actions_text(summary.executor_actions)}")
    if summary.comparison is not None:
        console.print(summary.comparison.verdict)
    if summary.n_train:
        train = summary.tokens.train
        console.print(f"training: {summary.n_train} episodes, {summary.llm_calls_train} calls, {train.total} tokens "
                      f"({train.per_question:.1f} per episode)")
    truncated = {role: usage.truncated for role, usage in summary.by_role.items() if usage.truncated}
    if truncated:
        console.print("calls cut at their token cap (evaluation): "
                      + ", ".join(f"{role} {count}" for role, count in truncated.items()))
    endpoints = endpoints_text(summary)
    if endpoints is not None:
        console.print(endpoints, markup=False)
    for note in summary.notes:
        console.print(f"[yellow]note:[/] {note}")
    cost = cost_text(summary)
    if cost is not None:
        console.print(cost)
    run_dir = shown_path(summary.run_dir) if summary.run_dir is not None else None
    console.print(f"run directory: {run_dir}")
    if not summary.complete:
        reason = {"cost_limit": "the cost limit was reached"}.get(summary.stopped_reason or "", "it stopped early")
        console.print(f"[bold yellow]The run is incomplete because {reason}; `econash resume {run_dir}` "
                      "continues it (with a higher --cost-limit if needed).[/]")
