"""summary.json from a run directory: headline numbers with their intervals, tokens by role, the
actions a learned policy settled on, and trained against untrained on the same questions.

Everything is computed from results.jsonl (and results-untrained.jsonl), never from counters kept
in memory, so a resumed run counts every question exactly once; what the run spent, from the
``llm_call`` lines of events.jsonl (econash.engine.ledger.Spending), every session included.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from econash.call_types import Usage
from econash.config_types import RunConfig
from econash.engine.engine import Engine
from econash.engine.ledger import Spending
from econash.integrity import read_results
from econash.run_records import (EndpointCounts, EvalTokens, PolicyComparison, RoleUsage, Summary, TokenTotals,
                                 UntrainedSummary)
from econash.rundir import RunDirectory
from econash.stats import paired_comparison, wilson_interval
from econash.task import Task
from econash.task_types import Problem, Score

Row = dict[str, Any]


def unique_rows(rundir: RunDirectory, name: str = RunDirectory.RESULTS) -> list[Row]:
    """The lines of a results file, the first one per question id (a line that is not a result record
    is one sentence naming it: econash.integrity)."""
    seen: set[str] = set()
    rows = []
    for row in read_results(rundir.path / name):
        if row.get("id") not in seen:
            seen.add(row["id"])
            rows.append(row)
    return rows


def accuracy_interval(rows: list[Row]) -> tuple[float, float] | None:
    """The 95% Wilson interval of the share of right answers; None when the task grades no answer
    right or wrong (partial-credit tasks)."""
    graded = [row["correct"] for row in rows if row.get("correct") is not None]
    if not graded:
        return None
    low, high = wilson_interval(sum(graded), len(graded))
    return round(low, 4), round(high, 4)


def executor_actions(rows: list[Row]) -> list[dict[str, float]]:
    """Per executor, the share of questions on which it took each action, most frequent first and ties
    by label, so that the order of result lines (calls finish in any order) does not change it (from
    the ``actions`` a method reports in each result's ``details``; the first round's, for rounds)."""
    per_agent: list[Counter[str]] = []
    answered = 0
    for row in rows:
        actions = row.get("details", {}).get("actions")
        if not actions:
            continue
        if isinstance(actions[0], list):  # one list per round
            actions = actions[0]
        answered += 1
        for i, label in enumerate(actions):
            while len(per_agent) <= i:
                per_agent.append(Counter())
            per_agent[i][label] += 1
    return [{label: round(count / answered, 4) for label, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}
            for counts in per_agent]


def detail_counts(rows: list[Row]) -> dict[str, int]:
    """Whole-number counters a method reports in each result's ``details`` (econash: strategy
    regenerations, skipped commitments), summed over the questions, so a run says how often they
    happened without reading results.jsonl."""
    totals: Counter[str] = Counter()
    for row in rows:
        for key, value in row.get("details", {}).items():
            if isinstance(value, int) and not isinstance(value, bool):
                totals[key] += value
    return dict(sorted(totals.items()))


def compare_policies(trained: list[Row], untrained: list[Row]) -> PolicyComparison | None:
    """McNemar's exact test of the trained against the untrained policy on the questions both answered."""
    before = {row["id"]: row["correct"] for row in untrained if row.get("correct") is not None}
    pairs = [(bool(row["correct"]), bool(before[row["id"]])) for row in trained
             if row.get("correct") is not None and row["id"] in before]
    if not pairs:
        return None
    result = paired_comparison([a for a, _ in pairs], [b for _, b in pairs])
    if result.significant():
        better = "better" if result.difference > 0 else "worse"
        verdict = (f"The trained policy is {better} than the untrained one on these {result.n} questions "
                   f"({result.difference:+.3f}, McNemar p = {result.p_value:.3f}).")
    else:
        verdict = (f"The difference between the trained and the untrained policy ({result.difference:+.3f} on "
                   f"{result.n} questions, McNemar p = {result.p_value:.2f}) is within noise: it does not show "
                   "that training helped or hurt; more test questions (--test-size) would tell.")
    return PolicyComparison(n=result.n, difference=round(result.difference, 4), only_trained=result.only_a,
                            only_untrained=result.only_b, p_value=round(result.p_value, 4), verdict=verdict)


def phase_wall_s(rundir: RunDirectory, phase: str) -> float | None:
    """Seconds the run spent in one phase, from its ``phase`` events (None when none was recorded)."""
    times = [event["wall_s"] for event in rundir.read_jsonl(RunDirectory.EVENTS)
             if event.get("type") == "phase" and event.get("phase") == phase]
    return round(sum(times), 3) if times else None


def endpoint_counts(events: list[Row]) -> dict[str, EndpointCounts]:
    """Per replica, the calls it answered (``llm_call`` lines) and the attempts that failed there
    (``retry`` lines, and ``call_failed`` lines but for fatal errors, which are the request's fault):
    from events.jsonl, so every session and every redone call counts."""
    counts: dict[str, EndpointCounts] = {}
    for event in events:
        endpoint, kind = event.get("endpoint"), event.get("type")
        if not isinstance(endpoint, str):
            continue
        if kind == "llm_call" and not event.get("cached"):
            counts.setdefault(endpoint, EndpointCounts()).calls += 1
        elif kind == "retry" or (kind == "call_failed" and event.get("kind") != "fatal"):
            counts.setdefault(endpoint, EndpointCounts()).failures += 1
    return dict(sorted(counts.items()))


def _metrics(task: Task, rows: list[Row]) -> dict[str, float]:
    return task.aggregate([Score(correct=r["correct"], score=r["score"], metrics=r.get("metrics", {})) for r in rows])


def _usage(rows: list[Row]) -> Usage:
    return Usage(prompt_tokens=sum(r.get("prompt_tokens", 0) for r in rows),
                 completion_tokens=sum(r.get("completion_tokens", 0) for r in rows))


def rows_cost(rows: list[Row]) -> float | None:
    """The dollars of these questions; None (unknown) when one of them has no known cost."""
    costs = [row.get("cost") for row in rows]
    known = [cost for cost in costs if cost is not None]
    return None if len(known) < len(costs) else sum(known)


def build_summary(config: RunConfig, task: Task, model: str, rundir: RunDirectory, engine: Engine, n_train: int,
                  test_problems: list[Problem], wall_s: float, notes: list[str] | None = None, *,
                  untrained_expected: bool = False, training_done: bool = True) -> Summary:
    """The summary from results.jsonl (so resumed runs count every question once) and the train ledger.

    ``complete`` holds only when every phase has every question: training finished (or stopped
    early by design, ``training_done``), the untrained policy answered every test question when
    the run evaluates it (``untrained_expected``), and so did the trained one.
    """
    wanted = {p.id for p in test_problems}
    rows = [row for row in unique_rows(rundir) if row["id"] in wanted]
    metrics = _metrics(task, rows)
    failed = sum(1 for row in rows if row.get("error"))
    if failed:
        metrics["failed_episodes"] = float(failed)
    breakdown: dict[str, dict[str, RoleUsage]] = {"by_role": {}, "by_agent": {}, "by_model": {}}
    for row in rows:
        for table, totals in breakdown.items():
            for key, counts in row.get(table, {}).items():
                totals.setdefault(key, RoleUsage()).add(
                    Usage(prompt_tokens=counts["prompt"], completion_tokens=counts["completion"]), counts["calls"],
                    counts.get("truncated", 0))
    train = engine.ledger("train")
    priced = engine.prices is not None
    untrained, comparison = None, None
    untrained_rows = [row for row in unique_rows(rundir, RunDirectory.RESULTS_UNTRAINED) if row["id"] in wanted]
    if untrained_rows:
        u_metrics = _metrics(task, untrained_rows)
        untrained = UntrainedSummary(accuracy=u_metrics.get("accuracy", u_metrics.get(task.headline_metric)),
                                     accuracy_ci=accuracy_interval(untrained_rows),
                                     metrics=u_metrics, n_test=len(untrained_rows),
                                     tokens=TokenTotals.from_usage(_usage(untrained_rows), len(untrained_rows)),
                                     llm_calls=sum(r.get("calls", 0) for r in untrained_rows),
                                     cost=rows_cost(untrained_rows) if priced else None,
                                     executor_actions=executor_actions(untrained_rows),
                                     wall_s=phase_wall_s(rundir, "eval-untrained"))
        comparison = compare_policies(rows, untrained_rows)
    notes = list(notes or [])
    untrained_missing = len(test_problems) - len(untrained_rows) if untrained_expected else 0
    if untrained_missing and engine.stopped is None and n_train:
        notes.append(f"results_untrained.jsonl lacks {untrained_missing} of the {len(test_problems)} test questions "
                     "and training has begun, so the untrained policy cannot answer them any more; the comparison "
                     "covers the questions both policies answered.")
    complete = (len(rows) == len(test_problems) and not untrained_missing and training_done
                and engine.stopped is None)
    events = rundir.read_jsonl(RunDirectory.EVENTS)
    spending = Spending.from_events(events, engine.prices) if priced else None
    return Summary(
        task=config.task,
        method=config.method,
        backend=config.backend,
        model=model,
        n_train=n_train,
        n_test=len(rows),
        accuracy=metrics.get("accuracy", metrics.get(task.headline_metric)),
        accuracy_ci=accuracy_interval(rows),
        metrics=metrics,
        tokens=EvalTokens(**TokenTotals.from_usage(_usage(rows), len(rows)).model_dump(),
                          train=TokenTotals.from_usage(train.usage, n_train)),
        llm_calls=sum(r.get("calls", 0) for r in rows),
        llm_calls_train=train.calls,
        **breakdown,
        by_role_train=train.by_role,
        by_endpoint=endpoint_counts(events),
        cost=rows_cost(rows) if priced else None,
        cost_train=train.known_cost if priced else None,
        costs=spending.to_dict() if spending is not None else None,
        cached_calls=sum(r.get("cached_calls", 0) for r in rows),
        retries=sum(r.get("retries", 0) for r in rows) + train.retries,
        complete=complete,
        stopped_reason=engine.stopped,
        untrained=untrained,
        comparison=comparison,
        executor_actions=executor_actions(rows),
        detail_counts=detail_counts(rows),
        notes=notes,
        wall_s=round(wall_s, 3),
        run_dir=Path(rundir.path),
    )
