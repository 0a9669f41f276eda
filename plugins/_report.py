"""Rows, tables and plots of `econash compare` (see plugins/compare.py).

A row is a plain JSON-able dict (the schema of compare.json's ``methods`` list), so the report
files and the console table are all drawn from exactly what compare.json holds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from econash.types import Summary

Row = dict[str, Any]


def summary_row(summary: Summary, metric_name: str, executors: int | None = None) -> Row:
    """One compare.json row from one run's summary: evaluation numbers per test question."""
    n = summary.n_test
    per_q = (lambda value: value / n) if n else (lambda value: 0.0)
    by_role = {role: per_q(usage.prompt + usage.completion) for role, usage in summary.by_role.items()}
    row: Row = {"method": summary.method}
    if executors is not None:
        row["executors"] = executors
    row.update({
        "accuracy": summary.accuracy,
        "accuracy_ci": list(summary.accuracy_ci) if summary.accuracy_ci else None,
        "metric_name": metric_name,
        # The summary's own number, not a recomputation, so compare and `econash run` always agree.
        "tokens_per_question": summary.tokens.per_question,
        "tokens_by_role_per_question": dict(sorted(by_role.items(), key=lambda item: -item[1])),
        "calls_per_question": per_q(summary.llm_calls),
        "wall_s": summary.wall_s,
        "run_dir": str(summary.run_dir) if summary.run_dir is not None else None,
        # Beyond the headline numbers: what training cost, and whether the run finished.
        "n_test": n,
        "n_train": summary.n_train,
        "train_tokens": summary.tokens.train.total,
        "complete": summary.complete,
    })
    return row


def write_json(path: Path, data: Any) -> None:
    """Write atomically, so a compare killed mid-way never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _num(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def roles_text(row: Row) -> str:
    """A compact role breakdown, biggest first: 'executor 93.0, coordinator 31.0'."""
    return ", ".join(f"{role} {tokens:.1f}" for role, tokens in row["tokens_by_role_per_question"].items()) or "-"


def table_cells(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    """Header and cells shared by the console table and compare.md."""
    sweep = any("executors" in row for row in rows)
    metric = rows[0]["metric_name"] if rows else "accuracy"
    header = ["method"] + (["executors"] if sweep else []) + [
        f"{metric} [95% CI]" if any(row.get("accuracy_ci") for row in rows) else metric, "tokens/question", "tokens/question by role", "calls/question", "wall s"]
    cells = []
    for row in rows:
        name = row["method"] if row.get("complete", True) else f"{row['method']} (incomplete)"
        ci = row.get("accuracy_ci")
        accuracy = _num(row["accuracy"], 3) + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
        cells.append([name] + ([str(row.get("executors", ""))] if sweep else []) + [
            accuracy, _num(row["tokens_per_question"]), roles_text(row),
            _num(row["calls_per_question"], 2), _num(row["wall_s"])])
    return header, cells


def markdown(report: dict[str, Any]) -> str:
    """compare.md: a title line, then one markdown table row per compared run."""
    header, cells = table_cells(report["methods"])
    title = (f"# econash compare: {report['task']} on {report['backend']} ({report['model']}), "
             f"{report['n_test']} test questions, seed {report['seed']}")
    escape = lambda text: text.replace("|", "\\|")  # noqa: E731  (a role name could hold a pipe)
    lines = [title, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(escape(cell) for cell in row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def print_table(report: dict[str, Any], out: Path) -> None:
    import sys

    from rich.console import Console
    from rich.table import Table

    header, cells = table_cells(report["methods"])
    table = Table(title=f"econash compare: {report['task']} on {report['backend']} ({report['model']}), "
                        f"{report['n_test']} questions")
    for column in header:
        table.add_column(column)
    for row in cells:
        table.add_row(*row)
    console = Console(width=None if sys.stdout.isatty() else 140)
    console.print(table)
    console.print(f"report: {out / 'compare.md'}, {out / 'compare.json'}")


# ---------------------------------------------------------------- plots


def _pyplot() -> Any:
    # Lazy and headless: the CLI starts fast and plotting works without a display.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _by_method(rows: list[Row]) -> dict[str, list[Row]]:
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row["method"], []).append(row)
    return groups


def plot_accuracy_vs_tokens(rows: list[Row], path: Path, title: str) -> None:
    """Accuracy (or the headline metric) against evaluation tokens per question, a labelled point per run."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    shown = [row for row in rows if row["accuracy"] is not None and row["tokens_per_question"] > 0]
    for method, group in _by_method(shown).items():
        group = sorted(group, key=lambda row: row.get("executors", 0))
        xs = [row["tokens_per_question"] for row in group]
        ys = [row["accuracy"] for row in group]
        line = ax.plot(xs, ys, marker="o", linestyle="-" if len(group) > 1 else "none", label=method)[0]
        # In a sweep the legend names the method and each point its executor counts; counts that
        # landed on the same spot (a method that ignores executors) share one label.
        labels: dict[tuple[float, float], list[str]] = {}
        for row, x, y in zip(group, xs, ys):
            labels.setdefault((x, y), []).append(str(row["executors"]) if "executors" in row else method)
        for (x, y), names in labels.items():
            text = names[0] if "executors" not in group[0] else "n=" + ",".join(names)
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8, color=line.get_color())
    xs = [row["tokens_per_question"] for row in shown]
    if xs and max(xs) > 10 * min(xs):
        ax.set_xscale("log")  # one-call baselines and many-agent methods differ by orders of magnitude
    ax.margins(x=0.15, y=0.1)  # room for the labels of the outermost points
    ax.set_xlabel("tokens per question (evaluation)")
    ax.set_ylabel(rows[0]["metric_name"] if rows else "accuracy")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    if shown:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def plot_scaling(rows: list[Row], path: Path, title: str) -> None:
    """Accuracy and tokens per question against the number of executors, one line per method."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5), dpi=120)
    counts = sorted({row["executors"] for row in rows})
    for method, group in _by_method(rows).items():
        group = sorted(group, key=lambda row: row["executors"])
        scored = [row for row in group if row["accuracy"] is not None]
        left.plot([r["executors"] for r in scored], [r["accuracy"] for r in scored], marker="o", label=method)
        right.plot([r["executors"] for r in group], [r["tokens_per_question"] for r in group], marker="o",
                   label=method)
    for ax, ylabel in ((left, rows[0]["metric_name"] if rows else "accuracy"), (right, "tokens per question")):
        ax.set_xlabel("executors / agents")
        ax.set_ylabel(ylabel)
        ax.set_xticks(counts)
        ax.grid(True, alpha=0.3)
    if rows:
        left.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
