"""The `econash show` command: one run's summary, then its questions one by one with every call.

    econash show runs/20250101-120000-gsm8k-econash                 # the summary and the first page
    econash show RUN_DIR --page 2 --page-size 10
    econash show RUN_DIR --question gsm8k-test-17                   # one question
    econash show RUN_DIR --untrained                                # the policy before training

Each question shows its text, the gold answer, the prediction and its grade, tokens, then the calls
in the order they finished: for EcoNash the coordinator's strategy, each executor's action, confidence
weight and answer (graded on its own), and the commitment; for the baselines each call by its role
and agent (cot's one call, sc's samples, mad's debaters, moa's proposers and aggregator). Nothing is
written; a run still going or stopped is shown as far as it got (question_views.py, beside this
file, says how calls are tied to questions; docs/reports.md describes the output).
"""

from __future__ import annotations

import difflib
import json
import re
import textwrap
from pathlib import Path
from typing import Any

import click

from econash.errors import ConfigError, EconashError
from econash.hookspecs import hookimpl
from econash_plugins.commands.question_views import CallView, QuestionView, read_questions
from econash_plugins.commands.run_files import live_writer, require_run

#: control characters a model may emit (terminal escape sequences included), shown as U+FFFD
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Model text made safe for a terminal: no escape sequences can move the cursor or recolour it."""
    return _CONTROL.sub("\ufffd", text)


def _grade(correct: bool | None, score: float | None) -> str:
    verdict = {True: "right", False: "wrong", None: "not graded"}[correct]
    return verdict if score is None or correct is not None and score in (0.0, 1.0) else f"{verdict}, score {score:.3f}"


def call_heading(call: CallView) -> str:
    """'executor 1: action T=0 p=1 steps, weight 0.62, answer 11 (right), 87 tokens'."""
    parts = [f"action {call.action}"] if call.action else []
    parts += [f"weight {call.weight:.2f}"] if call.weight is not None else []
    if call.answer is not None:
        parts.append(f"answer {call.answer}" + ("" if call.correct is None else f" ({_grade(call.correct, None)})"))
    parts.append(f"{call.prompt_tokens}+{call.completion_tokens} tokens" + (", cached" if call.cached else "")
                 + (", cut at its cap" if call.finish_reason == "length" else ""))
    role = "" if call.step.startswith(call.role) else f" ({call.role})"
    return f"{call.step}{role}: " + ", ".join(parts)


def question_text(view: QuestionView, number: int, total: int) -> str:
    """One question as `econash show` prints it."""
    lines = [f"=== {view.id} ({number} of {total}): {_grade(view.correct, view.score)} ==="]
    if view.question is not None:
        lines.append("question: " + printable(view.question))
    lines.append(f"gold: {printable(json.dumps(view.gold, default=str))}    "
                 f"prediction: {printable(json.dumps(view.prediction, default=str))}")
    lines.append(f"tokens: {view.tokens} (prompt {view.prompt_tokens}, completion {view.completion_tokens}) in "
                 f"{view.calls_made} calls" + ("" if view.cost is None else f", ${view.cost:.4f}"))
    if view.error:
        lines.append("error: " + printable(view.error))
    for call in view.calls:
        lines.append("  " + call_heading(call))
        lines.append(textwrap.indent(printable(call.text) or "(empty)", "      ", lambda _line: True))
    if view.commitment_skipped:
        lines.append("  commitment: skipped, every executor gave the same answer; the first one was committed")
    if not view.calls and view.prediction_text is not None:
        lines.append("  final text (events.jsonl records no call for this question):")
        lines.append(textwrap.indent(printable(view.prediction_text) or "(empty)", "      ", lambda _line: True))
    return "\n".join(lines)


def select(views: list[QuestionView], question: str | None, page: int, page_size: int,
           run_dir: Path) -> tuple[list[QuestionView], int, str]:
    """The questions to print, the number of the first, and a line saying which part of the run it is."""
    if question is not None:
        ids = [view.id for view in views]
        if question not in ids:
            close = difflib.get_close_matches(question, ids, n=1, cutoff=0.5)
            hint = f"did you mean '{close[0]}'?" if close else f"`econash show {run_dir}` lists its questions."
            raise ConfigError(f"Run '{run_dir}' has no evaluated question '{question}'; {hint}")
        index = ids.index(question)
        return [views[index]], index + 1, f"question {question}"
    pages = max(1, -(-len(views) // page_size))
    if page > pages:
        raise ConfigError(f"--page {page} is past the end: the run has {len(views)} evaluated questions, "
                          f"{pages} page(s) of {page_size}; give --page " + ("1." if pages == 1 else f"1 to {pages}."))
    start = (page - 1) * page_size
    chosen = views[start:start + page_size]
    more = f"; --page {page + 1} for the next" if page < pages else ""
    shown = f"{start + 1}-{start + len(chosen)}" if chosen else "none"
    return chosen, start + 1, f"questions {shown} of {len(views)} (page {page} of {pages}{more})"


def _print_summary(run_dir: Path) -> None:
    from econash import read_summary
    from econash.summary_text import print_summary

    if not (run_dir / "summary.json").exists():
        writer = live_writer(run_dir)
        state = f"it is being written by {writer}" if writer else f"`econash resume {run_dir}` finishes it"
        click.echo(f"No summary.json yet: the run has not finished ({state}). Its answered questions follow.")
        return
    try:
        print_summary(read_summary(run_dir))
    except EconashError as exc:
        click.echo(f"note: {exc}")


def show(registries: Any, run_dir: Path, question: str | None, page: int, page_size: int, untrained: bool,
         as_json: bool) -> None:
    manifest = require_run(run_dir)
    read = read_questions(run_dir, registries, manifest["config"], grade=False)
    phase = "eval-untrained" if untrained else "eval"
    if untrained and phase not in read.phases:
        raise ConfigError(f"Run '{run_dir}' has no answers of an untrained policy (results_untrained.jsonl); "
                          "leave --untrained out.")
    views = read.phases.get(phase, [])
    chosen, first, position = select(views, question, page, page_size, run_dir)
    read.grade(chosen)
    if as_json:
        click.echo(json.dumps({"run_dir": str(run_dir), "phase": phase, "notes": read.notes,
                               "questions": [view.model_dump(mode="json") for view in chosen]}, indent=2))
        return
    _print_summary(run_dir)
    for note in read.notes:
        click.echo(f"note: {note}")
    which = "the untrained policy's answers" if untrained else "answers"
    click.echo(f"\n{which}, {position}" if views else f"\nNo evaluated questions in '{run_dir}' yet.")
    for offset, view in enumerate(chosen):
        click.echo("\n" + question_text(view, first + offset, len(views)))


@hookimpl
def register_commands(cli: click.Group) -> None:
    from econash.cli_api import app_state

    @cli.command(name="show")
    @click.argument("run_dir", metavar="RUN_DIR", type=click.Path(path_type=Path))
    @click.option("--question", metavar="ID", help="Show only this question (its id in results.jsonl).")
    @click.option("--page", type=click.IntRange(min=1), default=1, show_default=True, help="Which page of questions.")
    @click.option("--page-size", type=click.IntRange(min=1), default=5, show_default=True, help="Questions per page.")
    @click.option("--untrained", is_flag=True, help="Show the untrained policy's answers (learning methods).")
    @click.option("--json", "as_json", is_flag=True, help="Print the chosen questions as JSON instead.")
    @click.pass_context
    def show_command(ctx: click.Context, run_dir: Path, question: str | None, page: int, page_size: int,
                     untrained: bool, as_json: bool) -> None:
        """A run's summary, then each question: text, gold, grade, tokens and every call (strategy, executors'
        actions, weights and answers, commitment; a baseline's calls)."""
        show(app_state(ctx).registries, run_dir, question, page, page_size, untrained, as_json)
