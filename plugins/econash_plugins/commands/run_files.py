"""Run directories read for looking at them: `econash runs`, `econash show` and `econash report`.

These commands read what a run wrote while it may still be writing, or after it was killed or
damaged, so every reader here is lenient: a file that is missing, cut short or garbage becomes a
status or a note, never a traceback. The writing side (and its strict readers, used by resume)
is econash.rundir and econash.integrity; docs/run-directory.md describes every file.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any, Literal

from econash.paths import RUNS_DIR_ENV, runs_dir
from econash.errors import ConfigError
from econash.types import StrictModel

#: where `econash run` puts run directories unless told otherwise (docs/reports.md)
MANIFEST, SUMMARY, RESULTS, RESULTS_UNTRAINED = "manifest.json", "summary.json", "results.jsonl", "results_untrained.jsonl"
EVENTS, METRICS, LOCK, COMPARE = "events.jsonl", "metrics.jsonl", "run.lock", "compare.json"

Status = Literal["complete", "incomplete", "running", "damaged"]


def runs_folder(option: Path | None) -> Path:
    """--runs-dir, else ECONASH_RUNS_DIR, else ./runs: the same places `econash run` writes to."""
    return runs_dir(option)


def read_json_object(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """A JSON file holding one object, or None and why not ('missing', 'not JSON', ...)."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None, "missing"
    except OSError as exc:
        return None, f"unreadable ({exc.strerror})"
    except ValueError:
        return None, "not JSON"
    if not isinstance(data, dict):
        return None, "not a JSON object"
    return data, None


def read_json_lines(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Every line of a JSON-lines file that is a JSON object, and how many lines were not (a crash
    leaves a cut last line; anything else is damage the caller reports)."""
    if not path.is_file():
        return [], 0
    rows: list[dict[str, Any]] = []
    bad = 0
    with open(path, "rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                bad += 1
                continue
            if isinstance(row, dict):
                rows.append(row)
            else:
                bad += 1
    return rows, bad


def result_rows(path: Path) -> tuple[list[dict[str, Any]], int]:
    """A results file's records, the first line per question id (as econash.summary counts them),
    and how many lines were not records."""
    rows, bad = read_json_lines(path)
    seen: set[str] = set()
    unique = []
    for row in rows:
        key = row.get("id")
        if not isinstance(key, str):
            bad += 1
        elif key not in seen:
            seen.add(key)
            unique.append(row)
    return unique, bad


def live_writer(run_dir: Path) -> str | None:
    """'process PID on HOST' when run.lock names a writer that still runs, else None.

    The lock file is only read, never locked: taking even a shared flock for a moment would make a
    `econash resume` started at that moment refuse to run (econash/runlock.py). A file left by a
    writer killed with kill -9 names a dead process of this host and counts as no writer; a holder
    on another host cannot be checked from here and counts as running.
    """
    holder, _ = read_json_object(run_dir / LOCK)
    if holder is None or not isinstance(holder.get("pid"), int):
        return None
    pid, host = holder["pid"], str(holder.get("host", ""))
    if host == socket.gethostname():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # another user's live process
    return f"process {pid} on {host or 'an unknown host'}"


class RunListing(StrictModel):
    """One line of `econash runs` (and one object of `econash runs --json`)."""

    path: str
    created: str | None = None
    task: str | None = None
    method: str | None = None
    backend: str | None = None
    model: str | None = None
    #: test questions with a result, and how many the run was asked for
    questions: int = 0
    planned: int | None = None
    accuracy: float | None = None
    metric: str = "accuracy"
    tokens_per_question: float | None = None
    status: Status
    #: why a run is damaged, incomplete or running, in a few words
    reason: str | None = None


def find_runs(root: Path) -> list[Path]:
    """Every run directory (a folder with manifest.json) under ``root``, compare folders' runs included."""
    found: list[Path] = []
    for folder, subfolders, files in os.walk(root):
        if MANIFEST in files:
            found.append(Path(folder))
            subfolders.clear()  # a run holds no runs, only checkpoints
        else:
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
    return found


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _from_results(rows: list[dict[str, Any]]) -> tuple[float | None, float | None]:
    """Accuracy and tokens per question of the questions answered so far (no summary yet)."""
    if not rows:
        return None, None
    graded = [row["correct"] for row in rows if isinstance(row.get("correct"), bool)]
    tokens = sum(_number(row.get("tokens")) or 0.0 for row in rows)
    return (sum(graded) / len(graded) if graded else None), tokens / len(rows)


def list_entry(run_dir: Path, root: Path) -> RunListing:
    """The listing of one run directory from its manifest and summary (results when it has none)."""
    try:
        shown = str(run_dir.relative_to(root))
    except ValueError:
        shown = str(run_dir)
    manifest, problem = read_json_object(run_dir / MANIFEST)
    if manifest is None or not isinstance(manifest.get("config"), dict):
        return RunListing(path=shown, status="damaged", reason=f"manifest.json {problem or 'has no config'}")
    config = manifest["config"]
    entry = RunListing(path=shown, status="complete", created=manifest.get("created"), task=config.get("task"),
                       method=config.get("method"), backend=config.get("backend"), model=config.get("model"),
                       planned=config.get("test_size") if isinstance(config.get("test_size"), int) else None)
    writer = live_writer(run_dir)
    summary, problem = read_json_object(run_dir / SUMMARY)
    if summary is not None and not isinstance(summary.get("tokens"), dict):
        summary, problem = None, "not an econash summary"
    if summary is None and problem != "missing":
        entry.status, entry.reason = "damaged", f"summary.json {problem}; `econash resume` recomputes it"
    elif summary is None:
        rows, _ = result_rows(run_dir / RESULTS)
        entry.questions = len(rows)
        entry.accuracy, entry.tokens_per_question = _from_results(rows)
        entry.status = "running" if writer else "incomplete"
        entry.reason = f"written by {writer}" if writer else "no summary.json; `econash resume` finishes it"
        return entry
    else:
        entry.model = summary.get("model") or entry.model
        entry.questions = int(_number(summary.get("n_test")) or 0)
        entry.accuracy = _number(summary.get("accuracy"))
        entry.tokens_per_question = _number(summary["tokens"].get("per_question"))
        metrics = summary.get("metrics")
        if entry.accuracy is not None and isinstance(metrics, dict) and "accuracy" not in metrics:
            entry.metric = next((name for name, value in metrics.items() if value == entry.accuracy), "score")
        if summary.get("complete") is False:
            entry.status = "incomplete"
            entry.reason = f"stopped: {summary.get('stopped_reason') or 'early'}"
    if writer:
        entry.status, entry.reason = "running", f"written by {writer}"
    return entry


def list_runs(root: Path) -> list[RunListing]:
    """Every run under ``root``, oldest first (by the manifest's creation time, then path)."""
    if not root.is_dir():
        hint = f" (set by {RUNS_DIR_ENV})" if os.environ.get(RUNS_DIR_ENV) else ""
        raise ConfigError(f"Runs folder '{root}'{hint} does not exist; give the folder your runs are in with "
                          "--runs-dir DIR.")
    entries = [list_entry(run_dir, root) for run_dir in find_runs(root)]
    return sorted(entries, key=lambda entry: (entry.created or "", entry.path))


def require_run(run_dir: Path) -> dict[str, Any]:
    """The manifest of a run directory, or a sentence saying what ``run_dir`` is instead."""
    if not run_dir.is_dir():
        raise ConfigError(f"'{run_dir}' is not a folder; give a run directory (see `econash runs`).")
    manifest, problem = read_json_object(run_dir / MANIFEST)
    if problem == "missing":
        raise ConfigError(f"'{run_dir}' has no manifest.json, so it is not an econash run directory; give one "
                          "listed by `econash runs`.")
    if manifest is None or not isinstance(manifest.get("config"), dict):
        raise ConfigError(f"The manifest.json of '{run_dir}' is damaged ({problem or 'it has no config'}); "
                          "nothing can say what this run was, so it cannot be shown.")
    return manifest
