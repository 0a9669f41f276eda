"""The `econash runs` command: every run directory under the runs folder, one line each.

    econash runs                     # ./runs, or $ECONASH_RUNS_DIR
    econash runs --runs-dir results --json

A line says when the run started, its task, method, backend/model, how many test questions it
answered (of how many asked), its accuracy (or the task's headline metric), evaluation tokens per
question and whether it is complete, still running, incomplete (stopped or killed: `econash resume`
finishes it) or damaged. Runs inside compare folders are listed too, by their path. The numbers come
from summary.json, or from results.jsonl while a run has no summary yet; nothing is written.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from econash.hookspecs import hookimpl
from econash.paths import RUNS_DIR_ENV
from econash_plugins.commands.run_files import RunListing, list_runs, runs_folder

COLUMNS = ("time", "task", "method", "backend/model", "questions", "accuracy", "tokens/question", "status", "path")


def _cells(entry: RunListing) -> list[str]:
    created = (entry.created or "-")[:16].replace("T", " ")
    model = f"{entry.backend or '-'}/{entry.model}" if entry.model else (entry.backend or "-")
    planned = f"/{entry.planned}" if entry.planned is not None and entry.planned != entry.questions else ""
    accuracy = "-" if entry.accuracy is None else f"{entry.accuracy:.3f}"
    if entry.accuracy is not None and entry.metric != "accuracy":
        accuracy += f" ({entry.metric})"
    tokens = "-" if entry.tokens_per_question is None else f"{entry.tokens_per_question:.1f}"
    path = entry.path + (f"  ({entry.reason})" if entry.reason else "")
    return [created, entry.task or "-", entry.method or "-", model, f"{entry.questions}{planned}", accuracy, tokens,
            entry.status, path]


def format_table(entries: list[RunListing]) -> str:
    """Aligned plain-text columns: greppable, and never cut to the terminal's width."""
    rows = [list(COLUMNS)] + [_cells(entry) for entry in entries]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1]
                     for row in rows)


@hookimpl
def register_commands(cli: click.Group) -> None:
    @cli.command(name="runs")
    @click.option("--runs-dir", type=click.Path(path_type=Path, file_okay=False),
                  help=f"Folder holding the run directories (default: ${RUNS_DIR_ENV}, else ./runs).")
    @click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per run.")
    def runs_command(runs_dir: Path | None, as_json: bool) -> None:
        """List the run directories under the runs folder: time, task, method, model, accuracy, tokens, status."""
        root = runs_folder(runs_dir)
        entries = list_runs(root)
        if as_json:
            click.echo(json.dumps([entry.model_dump(mode="json") for entry in entries], indent=2))
        elif not entries:
            click.echo(f"No run directories under '{root}'.")
        else:
            click.echo(format_table(entries))
