"""Rows, tables and plots of `econash compare` (see plugins/econash_plugins/commands/compare.py).

A row is a plain JSON-able dict (the schema of compare.json's ``methods`` list), so the report
files and the console table are all drawn from exactly what compare.json holds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from econash.stats import paired_bootstrap_difference, paired_comparison
from econash.types import Summary

Row = dict[str, Any]
#: the method every other one is paired with, when compared (else the first of its family)
REFERENCE = "econash"


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
        # What answering these questions cost in all: training amortised over the test questions
        # (docs/measuring.md); the eval-untrained pass of a learning run is a report, not a cost.
        "tokens_per_question_with_training": per_q(summary.tokens.total + summary.tokens.train.total),
        "complete": summary.complete,
    })
    if summary.detail_counts:
        row["detail_counts"] = dict(summary.detail_counts)
    u = summary.untrained
    if u is not None:  # the same run's policy before training, on the same questions
        row["untrained"] = {"accuracy": u.accuracy, "accuracy_ci": list(u.accuracy_ci) if u.accuracy_ci else None,
                            "tokens_per_question": u.tokens.per_question,
                            "calls_per_question": u.llm_calls / u.n_test if u.n_test else 0.0}
    return row


# ---------------------------------------------------------------- paired with econash


def reference_method(methods: list[str]) -> str | None:
    """The method others are paired with: econash if compared, else the first of its family."""
    if REFERENCE in methods:
        return REFERENCE
    return next((m for m in methods if m.startswith(REFERENCE)), None)


def verdicts(run_dir: str | Path) -> dict[str, bool]:
    """Right or wrong per question id from a run's results.jsonl (its first line per id; questions
    the task grades with partial credit only are left out)."""
    path = Path(run_dir) / "results.jsonl"
    found: dict[str, bool] = {}
    if not path.is_file():
        return found
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            if row["id"] not in found and row.get("correct") is not None:
                found[row["id"]] = bool(row["correct"])
    return found


def paired_difference(row: Row, reference: Row) -> dict[str, Any] | None:
    """``row``'s accuracy minus the reference's on the questions both answered (matched by id), with a
    95% paired bootstrap interval (10,000 seeded resamples of questions) and McNemar's exact p."""
    mine, theirs = verdicts(row["run_dir"]), verdicts(reference["run_dir"])
    ids = [key for key in mine if key in theirs]
    if not ids:
        return None
    a, b = [mine[key] for key in ids], [theirs[key] for key in ids]
    difference, low, high = paired_bootstrap_difference(a, b)
    test = paired_comparison(a, b)
    return {"reference": reference["method"], "n": len(ids), "difference": round(difference, 4),
            "ci": [round(low, 4), round(high, 4)], "mcnemar_p": round(test.p_value, 4),
            "only_this": test.only_a, "only_reference": test.only_b}


def add_paired(rows: list[Row], base_methods: list[str]) -> str | None:
    """Set each row's ``vs_econash`` against the reference run of the same executor count and
    topology; returns the reference method (None when no econash method was compared)."""
    reference = reference_method(list(dict.fromkeys(base_methods)))
    if reference is None:
        return None
    anchors = {(row.get("executors"), row.get("topology")): row
               for row, base in zip(rows, base_methods) if base == reference}
    for row, base in zip(rows, base_methods):
        anchor = anchors.get((row.get("executors"), row.get("topology")))
        row["vs_econash"] = None if anchor is None or base == reference else paired_difference(row, anchor)
    return reference


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


def _ci(ci: list[float] | None) -> str:
    return f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""


def _paired_cells(paired: dict[str, Any] | None) -> list[str]:
    if paired is None:
        return ["-", "-"]
    return [f"{paired['difference']:+.3f}{_ci(paired['ci'])}", f"{paired['mcnemar_p']:.3f}"]


def table_cells(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    """Header and cells shared by the console table and compare.md. A learning run's policy before
    training (evaluated on the same questions by the same run) gets a row of its own under it."""
    sweep = any("executors" in row for row in rows)
    metric = rows[0]["metric_name"] if rows else "accuracy"
    reference = next((row["vs_econash"]["reference"] for row in rows if row.get("vs_econash")), None)
    paired = any("vs_econash" in row for row in rows)
    header = ["method"] + (["executors"] if sweep else []) + [
        f"{metric} [95% CI]" if any(row.get("accuracy_ci") for row in rows) else metric, "tokens/question",
        "tokens/question incl. training"] + (
        [f"{metric} minus {reference or 'econash'} [95% CI]", "McNemar p"] if paired else []) + [
        "tokens/question by role", "calls/question", "wall s"]
    cells = []
    for row in rows:
        name = row["method"] if row.get("complete", True) else f"{row['method']} (incomplete)"
        count = [str(row.get("executors", ""))] if sweep else []
        accuracy = _num(row["accuracy"], 3) + _ci(row.get("accuracy_ci"))
        cells.append([name] + count + [
            accuracy, _num(row["tokens_per_question"]), _num(row.get("tokens_per_question_with_training"))]
            + (_paired_cells(row.get("vs_econash")) if paired else []) + [
            roles_text(row), _num(row["calls_per_question"], 2), _num(row["wall_s"])])
        u = row.get("untrained")
        if u is not None:
            cells.append([f"{name}, before training (same run)"] + count + [
                _num(u["accuracy"], 3) + _ci(u.get("accuracy_ci")), _num(u["tokens_per_question"]),
                _num(u["tokens_per_question"])] + (["-", "-"] if paired else []) + [
                "same prompts", _num(u["calls_per_question"], 2), "-"])
    return header, cells


def settings_cells(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    """Every role's temperature and completion cap per method (once per method and settings), so a
    reader sees each difference between the methods' calls and can judge whether it is the point."""
    header = ["method", "role", "temperature", "completion cap", "note"]
    cells: list[list[str]] = []
    for row in rows:
        for role, values in (row.get("settings") or {}).items():
            cell = [row["method"], role, str(values.get("temperature", "-")), str(values.get("max_tokens", "-")),
                    values.get("note", "")]
            if cell not in cells:
                cells.append(cell)
    return header, cells


def _md_table(header: list[str], cells: list[list[str]]) -> list[str]:
    escape = lambda text: text.replace("|", "\\|")  # noqa: E731  (a role name could hold a pipe)
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(escape(cell) for cell in row) + " |" for row in cells])


def markdown(report: dict[str, Any]) -> str:
    """compare.md: a title line, one table row per compared run, how to read it, the generation
    settings of every role, and the counters methods reported."""
    rows = report["methods"]
    header, cells = table_cells(rows)
    title = (f"# econash compare: {report['task']} on {report['backend']} ({report['model']}), "
             f"{report['n_test']} test questions, seed {report['seed']}")
    lines = [title, "", *_md_table(header, cells), "",
             "tokens/question counts evaluation only; incl. training adds the run's training tokens spread over "
             "its test questions."]
    if any("vs_econash" in row for row in rows):
        lines.append(f"The difference is each method's accuracy minus {report.get('paired_with') or 'econash'}'s on "
                     "the same questions (matched by id, same executor count), with a 95% paired bootstrap "
                     "interval (10,000 seeded resamples of questions) and McNemar's exact p.")
    settings = settings_cells(rows)
    if settings[1]:
        lines += ["", "## Generation settings per role", "", *_md_table(*settings)]
    counted = [f"- {row['method']}" + (f" ({row['executors']} executors)" if "executors" in row else "") + ": "
               + ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in row["detail_counts"].items())
               for row in rows if row.get("detail_counts")]
    if counted:
        lines += ["", "## Counted per run (test questions)", "", *counted]
    return "\n".join(lines) + "\n"


def print_table(report: dict[str, Any], out: Path) -> None:
    import sys

    from rich.console import Console
    from rich.table import Table

    header, cells = table_cells(report["methods"])
    table = Table(title=f"econash compare: {report['task']} on {report['backend']} ({report['model']}), "
                        f"{report['n_test']} questions")
    for column in header:  # headers wrap between words, never cut inside one ("tokens/question")
        table.add_column(column, min_width=max(len(word) for word in column.split()))
    for row in cells:
        table.add_row(*row)
    console = Console(width=None if sys.stdout.isatty() else 180)  # ten columns; logs take width
    console.print(table)
    header, cells = settings_cells(report["methods"])
    if cells:
        settings = Table(title="generation settings per role")
        for column in header:
            settings.add_column(column)
        for row in cells:
            settings.add_row(*row)
        console.print(settings)
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
        before = [row for row in group if row.get("untrained") and row["untrained"]["accuracy"] is not None]
        if before:  # trained runs (compare --train) also evaluated their untrained policy: dashed
            left.plot([r["executors"] for r in before], [r["untrained"]["accuracy"] for r in before], marker="x",
                      linestyle="--", label=f"{method} before training")
            right.plot([r["executors"] for r in before], [r["untrained"]["tokens_per_question"] for r in before],
                       marker="x", linestyle="--", label=f"{method} before training")
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
