"""The `econash score` command: grade answers without calling a model.

    econash score --task gsm8k --data ../shared/data predictions.jsonl
    econash score --task travelplanner --data ../shared/data submission.jsonl --json
    econash score runs/20250101-120000-gsm8k-cot

Predictions made elsewhere (an official submission, another framework's outputs) get the metrics
of an econash run: each line names a problem by its econash id (TravelPlanner's official
``{idx, query, plan}`` lines by query text), looked up across every split, since a file made
elsewhere does not know econash's partition. Nothing is written unless ``--out`` is given. A run
directory is regraded from the final texts it recorded (after a grader fix, say) into
``results.rescored.jsonl`` and ``rescore.json`` beside the old files. See docs/score.md.
"""

from __future__ import annotations

import ast
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel, ConfigDict

from econash.cli_api import app_state
from econash.errors import ConfigError, DataError, EconashError
from econash.hookspecs import hookimpl

#: Fields that may hold the prediction, first present wins ("plan": TravelPlanner's submissions);
#: then the fields that name the problem by its text when a line has no id.
PREDICTION_KEYS = ("prediction", "output", "response", "text", "answer", "completion", "plan")
TEXT_KEYS = ("query", "question")
RESCORED = {"results.jsonl": "results.rescored.jsonl", "results_untrained.jsonl": "results_untrained.rescored.jsonl"}
REPORT = "rescore.json"
VOTING = ("sc", "mad")  # methods whose final text won a vote read with the extractor of its time
FIRST = 5  # ids a message lists before "..."
# Graders fail in these ways on a value they cannot take (a list for a number task, say).
_GRADER_ERRORS = (TypeError, ValueError, KeyError, AttributeError, IndexError)


class PredictionLine(BaseModel):
    """One line of a predictions file: where it is, which problem it names, what it predicts."""

    model_config = ConfigDict(frozen=True)

    line: int
    id: str | None = None
    #: the problem's text (TravelPlanner's query), matched when there is no id
    text: str | None = None
    #: the official submission's 1-based position, which only breaks ties between equal texts
    idx: int | None = None
    prediction: Any = None


def _decode(raw: str, path: Path, number: int) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} line {number} is not valid JSON ({exc.msg}); fix or remove that line.") from None
    if isinstance(value, str):  # the official TravelPlanner evaluator reads such a line again as a literal
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            pass
    if not isinstance(value, dict):
        raise DataError(f"{path} line {number} is not a JSON object; write one object per line, "
                        'e.g. {"id": "gsm8k-train-0", "prediction": "... The answer is 18."}.')
    return value


def read_predictions(path: Path) -> list[PredictionLine]:
    """Every non-blank line, checked; a malformed line is an error naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"Predictions file '{path}' does not exist; give a JSONL file of predictions or a run directory.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"Cannot read predictions file '{path}' ({type(exc).__name__}); give a readable UTF-8 file.") from None
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        value = _decode(raw, path, number)
        key = next((k for k in PREDICTION_KEYS if k in value), None)
        if key is None:
            raise DataError(f"{path} line {number} has no prediction; give it a \"prediction\" field "
                            f"(or one of {', '.join(PREDICTION_KEYS[1:])}).")
        ident = value.get("id")
        matched_text = next((value[k] for k in TEXT_KEYS if isinstance(value.get(k), str) and value[k].strip()), None)
        if ident is None and matched_text is None:
            raise DataError(f"{path} line {number} has neither an \"id\" nor a \"query\"; give the problem's "
                            "econash id (as in results.jsonl) or, for TravelPlanner, its query text.")
        idx = value.get("idx")
        lines.append(PredictionLine(line=number, id=None if ident is None else str(ident), text=matched_text,
                                    idx=idx if isinstance(idx, int) and not isinstance(idx, bool) else None,
                                    prediction=value[key]))
    if not lines:
        raise DataError(f"Predictions file '{path}' holds no lines; give one JSON object per line.")
    return lines


# ---------------------------------------------------------------- problems


def _norm(text: str) -> str:
    return " ".join(text.split())  # a query copied elsewhere may have lost its line breaks


def _number(problem_id: str) -> int | None:
    match = re.search(r"(\d+)$", problem_id)
    return int(match.group(1)) if match else None


def load_every_split(task: Any, seed: int, sizes: tuple[int, ...]) -> list[Any]:
    """The problems of both roles; one-file sources are partitioned, so both together give them all.

    A source with only a test file refuses "train" (DataError) and is read for "test" alone. A
    generated task (arith) has no "all" (ConfigError) and makes the first of ``sizes`` it can.
    """
    problems: dict[str, Any] = {}
    refusals: list[DataError] = []
    for split in ("train", "test"):
        for attempt, size in enumerate((None, *sizes)):
            try:
                problems.update({p.id: p for p in task.load(split, size, seed) if p.id not in problems})
                break
            except ConfigError:
                if attempt == len(sizes):
                    raise
            except DataError as exc:
                refusals.append(exc)
                break
    if not problems and refusals:
        raise refusals[-1]
    return list(problems.values())


class ProblemIndex:
    """Finds a line's problem by id (with or without the task prefix), else by its text."""

    def __init__(self, task_name: str, problems: list[Any]) -> None:
        self.prefix = f"{task_name}-"
        self.by_id = {p.id: p for p in problems}
        self.by_full: dict[str, list[Any]] = {}
        self.by_head: dict[str, list[Any]] = {}  # the first paragraph: TravelPlanner's query before its references
        for p in problems:
            self.by_full.setdefault(_norm(p.question), []).append(p)
            self.by_head.setdefault(_norm(p.question.split("\n\n", 1)[0]), []).append(p)
        self.used: dict[str, int] = {}

    def find(self, line: PredictionLine) -> Any | None:
        if line.id is not None:
            found = self.by_id.get(line.id) or self.by_id.get(self.prefix + line.id)
            if found is not None or line.text is None:
                return found
        text = _norm(line.text or "")
        candidates = self.by_full.get(text) or self.by_head.get(text) or []
        free = [p for p in candidates if p.id not in self.used]
        if line.idx is not None:  # equal texts: the official position decides
            free.sort(key=lambda p: _number(p.id) != line.idx - 1)
        return free[0] if free else (candidates[0] if candidates else None)


def grade(task: Any, problem: Any, prediction: Any) -> tuple[Any, Any]:
    """(answer, Score) for one prediction.

    A list (a TravelPlanner plan) is scored as given, as the official evaluator does. Text, and
    any other value as JSON text, goes through the task's extractor like a model reply; a one-line
    text it finds no answer in is scored as the answer itself, so bare answers ("\\frac{1}{2}") count.
    """
    if isinstance(prediction, list):
        return prediction, task.score(prediction, problem)
    text = "" if prediction is None else prediction if isinstance(prediction, str) else json.dumps(prediction)
    answer, score = task.grade_text(text, problem)
    bare = text.strip()
    if answer is None and bare and "\n" not in bare:
        try:
            return bare, task.score(bare, problem)
        except _GRADER_ERRORS:
            pass
    return answer, score


def headline(task: Any, scores: list[Any]) -> dict[str, Any]:
    """The task's metrics, its headline value and, for right/wrong grading, a 95% Wilson interval."""
    from econash.stats import wilson_interval

    metrics = task.aggregate(scores)
    name = "accuracy" if "accuracy" in metrics else task.headline_metric
    graded = [bool(s.correct) for s in scores if s.correct is not None]
    ci = [round(x, 4) for x in wilson_interval(sum(graded), len(graded))] if graded else None
    return {"metric": name, "value": metrics.get(name), "ci95": ci, "metrics": metrics}


# ---------------------------------------------------------------- predictions file


def score_file(registries: Any, path: Path, task_name: str | None, data: Path | None, seed: int | None,
               overrides: tuple[str, ...], out: Path | None) -> dict[str, Any]:
    """Grade every line of a predictions file; the report ``--json`` prints."""
    from econash.config import load_config

    if task_name is None:
        raise ConfigError("A predictions file needs --task TASK to grade it by, e.g. --task gsm8k.")
    if out is not None and out.resolve() == path.resolve():
        raise ConfigError(f"--out {out} is the predictions file itself; choose another file.")
    config = load_config(flags={"task": task_name, "data": data, "seed": seed}, overrides=overrides)
    task = registries.tasks.create(config.task, config.task_options, data=config.data)
    lines = read_predictions(path)
    # A generated task makes as many problems as the highest of its ids asks for, else one per line.
    numbers = [n + 1 for n in (_number(line.id) for line in lines if (line.id or "").startswith(f"{config.task}-"))
               if n is not None]
    sizes = tuple(sorted({len(lines), *numbers}, reverse=True))
    index = ProblemIndex(config.task, load_every_split(task, config.seed, sizes))
    graded: list[dict[str, Any]] = []
    scores: list[Any] = []
    unmatched: list[str] = []
    for line in lines:
        problem = index.find(line)
        if problem is None:
            unmatched.append(line.id if line.id is not None else f"line {line.line}")
            continue
        if problem.id in index.used:
            raise DataError(f"{path} line {line.line} repeats the problem of line {index.used[problem.id]} "
                            f"({problem.id}); keep one prediction per problem.")
        index.used[problem.id] = line.line
        try:
            answer, score = grade(task, problem, line.prediction)
        except _GRADER_ERRORS:
            raise DataError(f"{path} line {line.line} holds a JSON {type(line.prediction).__name__} that the "
                            f"{config.task} task cannot grade; give the reply text instead.") from None
        scores.append(score)
        graded.append({"line": line.line, "id": problem.id, "prediction": answer, "gold": problem.gold,
                       "correct": score.correct, "score": score.score, "metrics": score.metrics})
    if not graded:
        example = next(iter(index.by_id), "none")
        raise DataError(f"No line of {path} matches a problem of task '{config.task}' (first: "
                        f"{', '.join(unmatched[:FIRST])}); check --task and --data, and use econash ids "
                        f"such as '{example}'.")
    report = {"task": config.task, "predictions": str(path), "lines": len(lines), "matched": len(graded),
              "unmatched": {"count": len(unmatched), "first": unmatched[:FIRST]}, **headline(task, scores)}
    if type(task).__module__ == "econash_plugins.tasks.travelplanner":  # where its plans fail, not just how often
        from econash_plugins.tasks.travelplanner.metrics import constraint_counts

        report["constraints"] = constraint_counts(scores)
    report["out"] = None if out is None else str(out)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(row, default=str) + "\n" for row in graded), encoding="utf-8")
    return report


# ---------------------------------------------------------------- run directory


def _run_problems(task: Any, config: Any, ids: set[str], notes: list[str]) -> dict[str, Any]:
    """The run's problems as the data source gives them now (a fixed gold counts), by id."""
    found: dict[str, Any] = {}
    try:
        found.update({p.id: p for p in task.load("test", config.test_size, config.seed)})
        if ids - found.keys():
            found.update({p.id: p for p in load_every_split(task, config.seed, (len(ids),))})
    except EconashError as exc:
        notes.append(f"The data source could not be read ({str(exc).rstrip('.')}), so answers were graded "
                     "against the gold recorded in the results.")
    return found


def _regrade(task: Any, rows: list[dict[str, Any]], problems: dict[str, Any]) -> tuple[list[dict[str, Any]], int, int]:
    """New result lines: the recorded final text graded again; failed episodes stay failed."""
    from econash.types import Problem

    new_rows, kept, recorded_gold = [], 0, 0
    for row in rows:
        if row.get("error") or not isinstance(row.get("prediction_text"), str):
            new_rows.append(dict(row))  # the episode failed or left no text: nothing to regrade
            kept += 1
            continue
        problem = problems.get(row["id"])
        if problem is None:
            problem = Problem(id=row["id"], question="", gold=row.get("gold"))
            recorded_gold += 1
        answer, score = task.grade_text(row["prediction_text"], problem)
        new_rows.append({**row, "prediction": answer, "gold": problem.gold, "correct": score.correct,
                         "score": score.score, "metrics": score.metrics})
    return new_rows, kept, recorded_gold


def _as_scores(rows: list[dict[str, Any]]) -> list[Any]:
    from econash.types import Score

    return [Score(correct=r.get("correct"), score=r.get("score", 0.0), metrics=r.get("metrics") or {}) for r in rows]


def score_run(registries: Any, run_dir: Path, task_name: str | None, data: Path | None) -> dict[str, Any]:
    """Regrade a finished run from its recorded final texts; writes the rescored files and rescore.json."""
    from econash import __version__
    from econash.rundir import RunDirectory
    from econash.runner import read_run_config
    from econash.summary import unique_rows

    config = read_run_config(run_dir)
    if task_name is not None and task_name != config.task:
        raise ConfigError(f"Run directory '{run_dir}' is a run of task '{config.task}', not '{task_name}'; leave --task out.")
    task = registries.tasks.create(config.task, config.task_options, data=data if data is not None else config.data)
    rundir = RunDirectory(run_dir)
    files = {name: rows for name in RESCORED if (run_dir / name).is_file() and (rows := unique_rows(rundir, name))}
    if not files:
        raise DataError(f"Run directory '{run_dir}' has no evaluated questions in results.jsonl, so there is nothing to regrade.")
    notes: list[str] = []
    problems = _run_problems(task, config, {row["id"] for rows in files.values() for row in rows}, notes)
    report: dict[str, Any] = {"run_dir": str(run_dir), "task": config.task, "method": config.method,
                              "econash_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                              "files": {}, "notes": notes}
    for name, rows in files.items():
        new_rows, kept, recorded_gold = _regrade(task, rows, problems)
        rundir.rewrite_jsonl(RESCORED[name], new_rows)
        before, after = headline(task, _as_scores(rows)), headline(task, _as_scores(new_rows))
        changes = [{"id": old["id"], "old_correct": old.get("correct"), "new_correct": new["correct"],
                    "old_score": old.get("score"), "new_score": new["score"]}
                   for old, new in zip(rows, new_rows)
                   if old.get("correct") != new["correct"] or old.get("score") != new["score"]]
        flipped = [c for c in changes if c["old_correct"] != c["new_correct"]]
        report["files"][name] = {
            "written": RESCORED[name], "questions": len(rows), "regraded": len(rows) - kept, "kept_as_failed": kept,
            "graded_against_recorded_gold": recorded_gold, "before": before, "after": after,
            "changed_verdicts": len(flipped), "now_correct": [c["id"] for c in flipped if c["new_correct"]],
            "now_wrong": [c["id"] for c in flipped if not c["new_correct"]],
            "changed_scores": len(changes), "changes": changes}
        if recorded_gold:
            notes.append(f"{recorded_gold} questions of {name} are gone from the data; their recorded gold was used.")
    if config.method in VOTING:
        notes.append(f"{config.method} chose each final text by a vote read with the extractor of its time; that text "
                     "is regraded, the vote is not recounted (events.jsonl lacks the sample order that breaks ties).")
    rundir.write_json(REPORT, report)
    return report


# ---------------------------------------------------------------- output


def _value(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _cell(block: dict[str, Any]) -> str:
    ci = block["ci95"]
    return _value(block["value"]) + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def _ids(ids: list[str]) -> str:
    return ", ".join(ids[:FIRST]) + (" ..." if len(ids) > FIRST else "")


def _table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> Any:
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    return table


def _console() -> Any:
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 120)


def print_file_report(report: dict[str, Any]) -> None:
    console = _console()
    console.print(_table(f"econash score: {report['task']} on {report['predictions']}",
                         ("lines", "matched", f"{report['metric']} [95% CI]"),
                         [(str(report["lines"]), str(report["matched"]), _cell(report))]))
    console.print(_table("metrics", ("metric", "value"), [(k, _value(v)) for k, v in report["metrics"].items()]))
    if "constraints" in report:
        console.print(_table("plans passing each constraint", ("constraint", "passed", "checked"),
                             [(r["label"], str(r["passed"]), str(r["checked"])) for r in report["constraints"].values()]))
    missing = report["unmatched"]
    if missing["count"]:
        console.print(f"[yellow]lines that matched no problem: {missing['count']}[/] (first: {_ids(missing['first'])}).")
    console.print(f"graded results: {report['out']}" if report["out"] else "nothing written (use --out FILE for "
                  "per-line results)")


def print_run_report(report: dict[str, Any], run_dir: Path) -> None:
    console = _console()
    console.print(f"econash score: regraded {run_dir} ({report['method']} on {report['task']}); no model was called")
    for name, entry in report["files"].items():
        before, after = entry["before"], entry["after"]
        rows = [(f"{before['metric']} [95% CI]", _cell(before), _cell(after))]
        rows += [(k, _value(before["metrics"].get(k)), _value(v)) for k, v in after["metrics"].items()
                 if k != after["metric"]]
        console.print(_table(f"{name} -> {entry['written']}: {entry['questions']} questions",
                             ("metric", "before", "after"), rows))
        parts = [f"verdicts changed: {entry['changed_verdicts']}"]
        parts += [f"{label}: {_ids(entry[key])}" for key, label in (("now_correct", "now right"),
                                                                     ("now_wrong", "now wrong")) if entry[key]]
        parts += [f"failed episodes kept as failed: {entry['kept_as_failed']}"] if entry["kept_as_failed"] else []
        console.print("; ".join(parts))
    for note in report["notes"]:
        console.print(f"[yellow]note:[/] {note}")
    written = [str(run_dir / entry["written"]) for entry in report["files"].values()]
    console.print(f"wrote {', '.join(written)} and {run_dir / REPORT}")


@hookimpl
def register_commands(cli: click.Group) -> None:
    @cli.command(name="score")
    @click.argument("target", metavar="PREDICTIONS.jsonl|RUN_DIR", type=click.Path(path_type=Path))
    @click.option("--task", "task_name", help="Task to grade by (see `econash list tasks`); a run knows its own.")
    @click.option("--data", type=click.Path(path_type=Path), help="Data file or folder for the task.")
    @click.option("--seed", type=int, help="Seed of the problem ids (generated tasks such as arith only).")
    @click.option("-B", "overrides", multiple=True, metavar="KEY=VALUE", help="e.g. -B task_options.database=PATH.")
    @click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="Write per-line results (JSONL).")
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
    @click.pass_context
    def score_command(ctx: click.Context, target: Path, task_name: str | None, data: Path | None,
                      seed: int | None, overrides: tuple[str, ...], out: Path | None, as_json: bool) -> None:
        """Grade predictions made elsewhere, or regrade a finished run; no model is called.

        PREDICTIONS.jsonl holds one {"id", "prediction"} object per line (or TravelPlanner's official
        {"idx", "query", "plan"}); RUN_DIR is an econash run, regraded from its recorded final texts
        into results.rescored.jsonl and rescore.json.
        """
        registries = app_state(ctx).registries
        if target.is_dir():
            if not (target / "manifest.json").is_file():
                raise ConfigError(f"'{target}' is a folder but not an econash run directory (it has no "
                                  "manifest.json); give a run directory or a predictions JSONL file.")
            for flag, value in (("--out", out), ("--seed", seed), ("-B", overrides or None)):
                if value is not None:
                    raise ConfigError(f"{flag} is for predictions files; a run is regraded with its own settings "
                                      "into results.rescored.jsonl.")
            report = score_run(registries, target, task_name, data)
        else:
            report = score_file(registries, target, task_name, data, seed, overrides, out)
        if as_json:
            click.echo(json.dumps(report, indent=2, default=str))
        elif target.is_dir():
            print_run_report(report, target)
        else:
            print_file_report(report)
