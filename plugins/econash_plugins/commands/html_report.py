"""The `econash report` command: one self-contained HTML page for a run or a compare folder.

    econash report runs/20250101-120000-gsm8k-econash          # writes RUN_DIR/report.html
    econash report runs/compare-20250101-120000-gsm8k -o cmp.html

For a run: the summary table (the same cells as compare's), the run's facts, tokens per role (evaluation
per question, training per episode), tokens per question, learning curves from metrics.jsonl, and a
drill-down of every evaluated question with every call's text (the untrained policy's answers too, for
a learning method). For a compare folder: compare's table and settings, its plots, tokens per role
per method, and each question with every method's answer and calls.

The page needs nothing but itself to open: its style is inline, its images are data URIs, it has no
script and no external link, and a Content-Security-Policy forbids the browser from loading anything
else (html_parts.py says why every text is escaped). tests/test_report_browser.py opens it in headless
Chromium and checks that no request leaves the page.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from econash.errors import ConfigError
from econash.hookspecs import hookimpl
from econash_plugins.commands import html_parts as parts
from econash_plugins.commands import report as compare_report
from econash_plugins.commands import report_plots as plots
from econash_plugins.commands.question_views import QuestionView, RunQuestions, read_questions
from econash_plugins.commands.run_files import (COMPARE, MANIFEST, METRICS, find_runs, list_entry, read_json_lines,
                                                read_json_object, require_run)

REPORT_NAME = "report.html"
#: the browser may load images only from inside the page and use only the inline stylesheet
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
PHASE_TITLES = {"eval": "Questions", "eval-untrained": "Questions answered before training (untrained policy)"}


def _csp_page(title: str, body: str) -> str:
    return parts.page(title, body).replace(
        "<head>", f'<head><meta http-equiv="Content-Security-Policy" content="{CSP}">', 1)


def _summary(run_dir: Path) -> tuple[Any, str | None]:
    """The run's Summary, or None and the sentence saying why there is none."""
    from econash import read_summary
    from econash.errors import EconashError

    if not (run_dir / "summary.json").exists():
        return None, "The run has no summary.json yet (it is running, or stopped: `econash resume` finishes it); " \
                     "what follows is what it has answered so far."
    try:
        return read_summary(run_dir), None
    except EconashError as exc:
        return None, str(exc)


def _facts(summary: Any) -> str:
    rows = [("test questions", summary.n_test), ("train episodes", summary.n_train),
            ("calls (evaluation / training)", f"{summary.llm_calls} / {summary.llm_calls_train}"),
            ("tokens (evaluation)", f"{summary.tokens.total} ({summary.tokens.per_question:.1f} per question)"),
            ("tokens (training)", f"{summary.tokens.train.total} ({summary.tokens.train.per_question:.1f} per episode)"),
            ("cached calls / retries", f"{summary.cached_calls} / {summary.retries}"),
            ("cost", "unknown" if summary.cost is None else f"${summary.cost:.4f}"),
            ("wall s", f"{summary.wall_s:.1f}"),
            ("complete", "yes" if summary.complete else f"no ({summary.stopped_reason or 'stopped early'})")]
    if summary.comparison is not None:
        rows.append(("trained against untrained", summary.comparison.verdict))
    rows += [(f"counted: {key.replace('_', ' ')}", value) for key, value in summary.detail_counts.items()]
    return parts.key_values(rows)


def _actions(summary: Any) -> str:
    shares = summary.executor_actions
    if not shares:
        return ""
    rows = [(f"executor {i}", ", ".join(f"{label} {value:.0%}" for label, value in share.items()))
            for i, share in enumerate(shares)]
    return "<h3>Actions each executor took (share of test questions)</h3>" + parts.table(("executor", "actions"), rows)


def _role_tokens_from_results(views: list[QuestionView], run_dir: Path) -> dict[str, float]:
    """Tokens per question by role, from results.jsonl (a run without a summary)."""
    rows, _ = read_json_lines(run_dir / "results.jsonl")
    totals: dict[str, float] = {}
    for row in rows:
        for role, usage in (row.get("by_role") or {}).items():
            if isinstance(usage, dict):
                totals[role] = totals.get(role, 0.0) + (usage.get("prompt") or 0) + (usage.get("completion") or 0)
    return {role: value / len(views) for role, value in totals.items()} if views else {}


def _run_figures(run_dir: Path, summary: Any, questions: RunQuestions, title: str) -> str:
    if not plots.can_plot():
        return parts.notes(["matplotlib is not installed, so this report has no plots; install it with: "
                            "pip install matplotlib."])
    evaluated = questions.phases.get("eval", [])
    groups: dict[str, dict[str, float]] = {}
    if summary is not None:
        per = lambda usage, n: (usage.prompt + usage.completion) / n if n else 0.0  # noqa: E731
        groups["evaluation, per question"] = {r: per(u, summary.n_test) for r, u in summary.by_role.items()}
        if summary.n_train and summary.by_role_train:
            groups["training, per episode"] = {r: per(u, summary.n_train) for r, u in summary.by_role_train.items()}
    elif evaluated:
        groups["evaluation, per question"] = _role_tokens_from_results(evaluated, run_dir)
    html = ""
    if any(groups.values()):
        html += parts.figure(plots.role_bars(groups, title, "tokens"), "Tokens per role")
    if evaluated:
        html += parts.figure(plots.question_tokens([v.id for v in evaluated], [v.tokens for v in evaluated],
                                                   [v.correct for v in evaluated], title), "Tokens per question")
    metrics, _ = read_json_lines(run_dir / METRICS)
    curve = plots.learning_curves(metrics, title) if metrics else None
    if curve is not None:
        html += parts.figure(curve, "Learning curves (metrics.jsonl, one point per learner update)")
    return html


def _drill_down(questions: RunQuestions) -> str:
    html = ""
    for phase, views in questions.phases.items():
        html += f"<h2>{parts.esc(PHASE_TITLES.get(phase, phase))} ({len(views)})</h2>"
        html += "".join(parts.question_details(view) for view in views)
    return html or "<h2>Questions</h2><p>No evaluated question yet.</p>"


def run_page(registries: Any, run_dir: Path) -> str:
    """The whole page of one run directory."""
    from econash_plugins.commands.compare import metric_name

    manifest = require_run(run_dir)
    config = manifest["config"]
    entry = list_entry(run_dir, run_dir.parent)
    summary, missing = _summary(run_dir)
    questions = read_questions(run_dir, registries, config)
    title = f"econash run: {config.get('method')} on {config.get('task')}"
    model = summary.model if summary is not None else config.get("model")
    meta = (f"{parts.esc(config.get('backend'))} backend, model {parts.esc(model or 'default')} &middot; started "
            f"{parts.esc(manifest.get('created'))} &middot; seed {parts.esc(manifest.get('seed'))} &middot; "
            f"prompts {parts.esc(manifest.get('prompt_version') or '-')} &middot; status {parts.esc(entry.status)}"
            + (f" ({parts.esc(entry.reason)})" if entry.reason else ""))
    body = f'<h1>{parts.esc(title)}</h1><p class="meta">{meta}<br>{parts.esc(str(run_dir.resolve()))}</p>'
    body += parts.notes([missing] if missing else []) + parts.notes(questions.notes)
    body += "<h2>Summary</h2>"
    if summary is not None:
        row = compare_report.summary_row(summary, metric_name(summary, registries))
        body += parts.table(*compare_report.table_cells([row])) + _facts(summary) + _actions(summary)
    else:
        body += parts.table(("questions answered", "accuracy so far", "tokens/question so far"),
                            [(entry.questions, "-" if entry.accuracy is None else f"{entry.accuracy:.3f}",
                              "-" if entry.tokens_per_question is None else f"{entry.tokens_per_question:.1f}")])
    body += "<h2>Plots</h2>" + _run_figures(run_dir, summary, questions, title)
    body += _drill_down(questions)
    body += f'<p class="meta">Written by econash report on {time.strftime("%Y-%m-%d %H:%M:%S")}.</p>'
    return _csp_page(title, body)


def _compare_runs(compare_dir: Path, rows: list[dict[str, Any]]) -> list[Path | None]:
    """Each row's run directory. compare.json records the path as compare saw it (often relative to
    where compare ran), so a path that does not resolve from here is matched by its tail against the
    runs inside the compare folder."""
    inside = find_runs(compare_dir)
    found: list[Path | None] = []
    for row in rows:
        recorded = Path(str(row.get("run_dir") or ""))
        if row.get("run_dir") and (recorded / MANIFEST).is_file():
            found.append(recorded)
            continue
        tails = [run for run in inside if recorded.parts[-len(run.relative_to(compare_dir).parts):]
                 == run.relative_to(compare_dir).parts]
        found.append(max(tails, key=lambda run: len(run.parts)) if tails else None)
    return found


def _row_name(row: dict[str, Any]) -> str:
    return row["method"] + (f" ({row['executors']} executors)" if "executors" in row else "")


def compare_page(registries: Any, compare_dir: Path) -> str:
    """The whole page of a compare folder."""
    report, problem = read_json_object(compare_dir / COMPARE)
    if report is None or not isinstance(report.get("methods"), list):
        raise ConfigError(f"The compare.json of '{compare_dir}' is damaged ({problem or 'it lists no methods'}); "
                          "run the comparison again, or report on each run directory inside it.")
    rows = [row for row in report["methods"] if isinstance(row, dict) and "method" in row]
    title = (f"econash compare: {report.get('task')} on {report.get('backend')} ({report.get('model')}), "
             f"{report.get('n_test')} questions")
    body = (f'<h1>{parts.esc(title)}</h1><p class="meta">seed {parts.esc(report.get("seed"))} &middot; '
            f"{parts.esc(str(compare_dir.resolve()))}</p><h2>Summary</h2>")
    body += parts.table(*compare_report.table_cells(rows))
    settings = compare_report.settings_cells(rows)
    if settings[1]:
        body += "<h3>Generation settings per role</h3>" + parts.table(*settings)
    body += "<h2>Plots</h2>"
    if not plots.can_plot():
        body += parts.notes(["matplotlib is not installed, so this report has no plots; install it with: "
                             "pip install matplotlib."])
    elif rows:
        body += parts.figure(plots.accuracy_vs_tokens(rows, title), "Accuracy against tokens per question")
        if report.get("sweep_executors"):
            body += parts.figure(plots.scaling(rows, title), "Scaling with the number of executors")
        groups = {_row_name(row): row.get("tokens_by_role_per_question") or {} for row in rows}
        body += parts.figure(plots.role_bars(groups, title, "tokens per question (evaluation)"), "Tokens per role")
    body += _compared_questions(registries, compare_dir, rows)
    return _csp_page(title, body)


def _compared_questions(registries: Any, compare_dir: Path, rows: list[dict[str, Any]]) -> str:
    answers: dict[str, list[tuple[str, QuestionView]]] = {}
    texts: dict[str, str | None] = {}
    notes: list[str] = []
    for row, run_dir in zip(rows, _compare_runs(compare_dir, rows)):
        if run_dir is None:
            notes.append(f"The run of {_row_name(row)} ({row.get('run_dir')}) was not found; its answers are left out.")
            continue
        read = read_questions(run_dir, registries)
        notes += [f"{_row_name(row)}: {note}" for note in read.notes]
        for view in read.phases.get("eval", []):
            answers.setdefault(view.id, []).append((_row_name(row), view))
            texts[view.id] = texts.get(view.id) or view.question
    html = f"<h2>Questions ({len(answers)})</h2>" + parts.notes(notes)
    return html + "".join(parts.compared_question(key, texts[key], views) for key, views in answers.items())


def write_report(registries: Any, target: Path, out: Path | None) -> Path:
    """Write the page of a run or compare folder; returns where it went."""
    if not target.is_dir():
        raise ConfigError(f"'{target}' is not a folder; give a run directory or a compare folder.")
    if (target / COMPARE).is_file():
        html = compare_page(registries, target)
    elif (target / MANIFEST).is_file():
        html = run_page(registries, target)
    else:
        raise ConfigError(f"'{target}' holds neither manifest.json (a run) nor compare.json (a comparison); give "
                          "a folder listed by `econash runs` or one made by `econash compare`.")
    path = out if out is not None else target / REPORT_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"The report cannot be written to '{path}' ({exc.strerror}); give another file "
                          "with -o FILE.") from None
    return path


@hookimpl
def register_commands(cli: click.Group) -> None:
    from econash.cli_api import app_state

    @cli.command(name="report")
    @click.argument("target", metavar="RUN_DIR|COMPARE_DIR", type=click.Path(path_type=Path))
    @click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False),
                  help=f"Where to write the page (default: {REPORT_NAME} inside the folder).")
    @click.pass_context
    def report_command(ctx: click.Context, target: Path, out: Path | None) -> None:
        """Write one self-contained HTML page: summary table, plots, tokens per role, and every question's calls."""
        path = write_report(app_state(ctx).registries, target, out)
        click.echo(f"report: {path}")
