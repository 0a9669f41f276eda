"""Damaged state on disk gets one sentence naming the fix, or is recovered where that is safe.

``SENTENCE_CASES`` is a table (name, how to damage a directory, the command, the words the sentence
must hold) run by one helper that asserts what every bad input must give: a non-zero exit, at most
three lines of output, no "internal error", and the key words. The damaged directories are built
from finished runs on the fake backend (``base_run``). The recoveries (a damaged cache cleared, a
damaged latest checkpoint skipped, a garbage summary.json recomputed) are tests of their own.
A full disk is simulated by making econash.rundir's file writes fail with ENOSPC half-way.
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from click.testing import CliRunner, Result

import econash
import econash.rundir
from econash.cli import build_cli
from econash.engine.cache import ResponseCache
from econash.errors import EconashError
from econash.integrity import read_results
from econash.plugins import make_plugin_manager
from econash.types import LLMResult, Usage

FAST = ("--display", "none", "--no-cache", "--backend", "fake")
BASE_RUNS: dict[str, tuple[str, ...]] = {
    "cot": ("run", *FAST, "--method", "cot", "--test-size", "4"),
    # 12 episodes, an update every 4 and a checkpoint after each: ckpt-1, ckpt-2 and ckpt-3
    "learner": ("run", *FAST, "--method", "fake-learner", "--train-size", "12", "--test-size", "3",
                "-B", "method_options.update_interval=4"),
    "econash": ("run", *FAST, "--method", "econash", "--train-size", "4", "--test-size", "1",
                "-B", "method_options.update_interval=4"),
}


def invoke(*args: str) -> Result:
    """The CLI in process (so monkeypatched faults reach it); stdout and stderr together in .output."""
    return CliRunner().invoke(build_cli(make_plugin_manager(warn=False)), list(args))


@pytest.fixture(scope="module")
def base_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Finished runs, built once per module on first use and copied by each case that damages one."""
    root = tmp_path_factory.mktemp("base-runs")

    class BuiltOnFirstUse(dict):
        def __missing__(self, kind: str) -> Path:
            path = root / kind
            result = invoke(*BASE_RUNS[kind], "--run-dir", str(path))
            assert result.exit_code == 0, result.output
            self[kind] = path
            return path

    return BuiltOnFirstUse()


def copy_run(base_runs: dict[str, Path], kind: str, tmp: Path) -> Path:
    run = tmp / "run"
    shutil.copytree(base_runs[kind], run)
    return run


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def checkpoints(run: Path) -> list[Path]:
    return sorted((run / "checkpoints").glob("ckpt-*.pt"))


def filled_cache(path: Path, entries: int = 300) -> Path:
    """A real cache file with enough entries to span many pages."""
    store = ResponseCache(path)
    for i in range(entries):
        store.put(f"key-{i}", "fake", LLMResult(text="x" * 200, model="fake-model",
                                                usage=Usage(prompt_tokens=1, completion_tokens=1)))
    store.close()
    return path


class FullDisk:
    """A file whose writes fail as on a full disk: the first half of the data lands, then ENOSPC."""

    def __init__(self, handle: Any, budget: list[int]) -> None:
        self._handle, self._budget = handle, budget

    def write(self, data: Any) -> int:
        if self._budget[0] > 0:
            self._budget[0] -= 1
            return self._handle.write(data)
        self._handle.write(data[: len(data) // 2])
        self._handle.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> FullDisk:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._handle.close()


def fill_disk(monkeypatch: pytest.MonkeyPatch, name_part: str, writes_left: int = 0) -> None:
    """Writes by econash.rundir to files whose name holds ``name_part`` fail with ENOSPC after
    ``writes_left`` successful ones (and keep failing, as a full disk does)."""
    budget = [writes_left]

    def fake_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = builtins.open(file, mode, *args, **kwargs)
        if name_part in Path(file).name and ("w" in mode or "a" in mode):
            return FullDisk(handle, budget)
        return handle

    monkeypatch.setattr(econash.rundir, "open", fake_open, raising=False)


@dataclass(frozen=True)
class Case:
    """A damaged directory and the sentence the command must answer with.

    ``build(tmp, base_runs, monkeypatch)`` makes the damage under ``tmp``; ``command`` may use
    ``{run}`` (tmp/run) and ``{tmp}``; ``words`` must all appear (case-insensitive, whitespace
    collapsed); ``check(tmp)`` asserts what must hold on disk afterwards.
    """

    name: str
    build: Callable[[Path, dict[str, Path], pytest.MonkeyPatch], None]
    command: tuple[str, ...]
    words: tuple[str, ...]
    check: Callable[[Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)


# --- builders -----------------------------------------------------------------------------------

def garbage_cache(tmp: Path, base_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp / "cache").mkdir()
    (tmp / "cache" / "responses.sqlite").write_bytes(bytes(range(256)) * 40)
    monkeypatch.setenv("ECONASH_CACHE_DIR", str(tmp / "cache"))


def truncated_cache(tmp: Path, base_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    path = filled_cache(tmp / "cache" / "responses.sqlite")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    monkeypatch.setenv("ECONASH_CACHE_DIR", str(tmp / "cache"))


def cache_pages_overwritten(tmp: Path, base_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache whose header is intact but whose pages after the second are garbage (a disk fault)."""
    path = filled_cache(tmp / "cache" / "responses.sqlite")
    data = bytearray(path.read_bytes())
    data[8192:] = b"\xff" * (len(data) - 8192)
    path.write_bytes(bytes(data))
    monkeypatch.setenv("ECONASH_CACHE_DIR", str(tmp / "cache"))


def cache_path_is_a_folder(tmp: Path, base_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp / "cache" / "responses.sqlite").mkdir(parents=True)
    monkeypatch.setenv("ECONASH_CACHE_DIR", str(tmp / "cache"))


def cache_dir_is_a_file(tmp: Path, base_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp / "cache").write_text("not a folder\n")
    monkeypatch.setenv("ECONASH_CACHE_DIR", str(tmp / "cache"))


def read_only_cache(tmp: Path, base_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache file SQLite may read but not write (what a read-only folder or file gives; opened
    read-only through SQLite itself, since tests may run as root, whom file modes do not stop)."""
    filled_cache(tmp / "cache" / "responses.sqlite", entries=2)
    connect = sqlite3.connect

    def read_only(path: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        return connect(f"file:{path}?mode=ro", *args, uri=True, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", read_only)
    monkeypatch.setenv("ECONASH_CACHE_DIR", str(tmp / "cache"))


def damaged_checkpoints(how: str) -> Callable[[Path, dict[str, Path], pytest.MonkeyPatch], None]:
    """A learner run killed before its summary, every checkpoint damaged (``truncated`` or ``garbage``)."""

    def build(tmp: Path, base_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
        run = copy_run(base_runs, "learner", tmp)
        (run / "summary.json").unlink()
        for path in checkpoints(run):
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 3] if how == "truncated" else b"\x00garbage" * 50)

    return build


def truncated_latest_checkpoint(tmp: Path, base_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    run = copy_run(base_runs, "learner", tmp)
    latest = checkpoints(run)[-1]
    latest.write_bytes(latest.read_bytes()[:500])


def econash_run(tmp: Path, base_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    copy_run(base_runs, "econash", tmp)


def results_line(line: str, at: int, name: str = "results.jsonl", kind: str = "cot"):
    """A killed run whose results file has ``line`` inserted before line ``at`` (1-based)."""

    def build(tmp: Path, base_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
        run = copy_run(base_runs, kind, tmp)
        (run / "summary.json").unlink()
        rows = (run / name).read_text().splitlines(keepends=True)
        rows.insert(at - 1, line + "\n")
        (run / name).write_text("".join(rows))

    return build


def unchanged_results(name: str = "results.jsonl", count: int = 5) -> Callable[[Path], None]:
    def check(tmp: Path) -> None:
        assert len((tmp / "run" / name).read_text().splitlines()) == count, "finished work was cut"

    return check


def full_disk(name_part: str, writes_left: int = 0):
    def build(tmp: Path, base_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
        fill_disk(monkeypatch, name_part, writes_left)

    return build


def no_run_dir(tmp: Path) -> None:
    assert not (tmp / "new").exists(), "a run that cannot start must leave no run directory"


def results_complete_lines(tmp: Path) -> None:
    text = (tmp / "run" / "results.jsonl").read_text()
    assert text.endswith("\n") and len(lines(tmp / "run" / "results.jsonl")) == 2


def only_the_first_checkpoint(tmp: Path) -> None:
    names = sorted(p.name for p in (tmp / "run" / "checkpoints").iterdir())
    assert names == ["ckpt-000001-000004.pt"], names


def no_summary(tmp: Path) -> None:
    assert sorted(p.name for p in (tmp / "run").glob("summary*")) == []


NEW_COT_RUN = ("run", "--backend", "fake", "--method", "cot", "--test-size", "2", "--display", "none",
               "--run-dir", "{tmp}/new")
LEARNER_RUN = ("run", *FAST, "--method", "fake-learner", "--train-size", "12", "--test-size", "3",
               "-B", "method_options.update_interval=4", "--run-dir", "{run}")
NO_ID = '{"prediction": 1, "prediction_text": "1", "correct": true, "score": 1.0, "tokens": 3, "calls": 1}'

SENTENCE_CASES = [
    Case("garbage cache file: run", garbage_cache, NEW_COT_RUN,
         ("damaged", "responses.sqlite", "econash cache clear"), no_run_dir),
    Case("truncated cache file: run", truncated_cache, NEW_COT_RUN,
         ("damaged", "responses.sqlite", "econash cache clear"), no_run_dir),
    Case("cache pages overwritten: run", cache_pages_overwritten, NEW_COT_RUN,
         ("damaged", "responses.sqlite", "econash cache clear"), no_run_dir),
    Case("garbage cache file: cache stats", garbage_cache, ("cache", "stats"),
         ("damaged", "responses.sqlite", "econash cache clear")),
    Case("cache path is a folder", cache_path_is_a_folder, NEW_COT_RUN,
         ("responses.sqlite", "cannot be written", "is a folder", "ECONASH_CACHE_DIR", "--no-cache"), no_run_dir),
    Case("cache folder is a file", cache_dir_is_a_file, NEW_COT_RUN,
         ("cannot be written", "is a file, not a folder", "ECONASH_CACHE_DIR", "--no-cache"), no_run_dir),
    Case("read-only cache", read_only_cache, NEW_COT_RUN,
         ("cache", "cannot be written", "read-only", "ECONASH_CACHE_DIR", "--no-cache"), no_run_dir),
    Case("every checkpoint truncated: resume", damaged_checkpoints("truncated"), ("resume", "{run}"),
         ("no checkpoint", "can be read", "checkpoints", "train again")),
    Case("every checkpoint garbage: resume", damaged_checkpoints("garbage"), ("resume", "{run}"),
         ("no checkpoint", "can be read", "checkpoints", "train again")),
    Case("truncated checkpoint: eval", truncated_latest_checkpoint,
         ("eval", "--checkpoint", "{run}/checkpoints/ckpt-000003-000012.pt", "--display", "none",
          "--run-dir", "{tmp}/new"),
         ("ckpt-000003-000012.pt", "damaged", "another checkpoint"), no_run_dir),
    Case("eval with another executor count", econash_run,
         ("eval", "--checkpoint", "{run}/checkpoints/ckpt-000001-000004.pt", "--executors", "4",
          "--display", "none", "--run-dir", "{tmp}/new"),
         ("3 executors", "single topology", "--executors", "--topology"), no_run_dir),
    Case("eval with another topology", econash_run,
         ("eval", "--checkpoint", "{run}/checkpoints/ckpt-000001-000004.pt", "--topology", "multi",
          "--display", "none", "--run-dir", "{tmp}/new"),
         ("3 executors", "single topology", "--executors", "--topology"), no_run_dir),
    Case("results line without an id: resume", results_line(NO_ID, 2), ("resume", "{run}"),
         ("line 2", "results.jsonl", "not a result record", "id", "delete"), unchanged_results()),
    Case("results line without an id: score", results_line(NO_ID, 2), ("score", "{run}"),
         ("line 2", "results.jsonl", "not a result record", "id")),
    Case("results line that is not JSON, mid-file: resume", results_line("{not json", 3), ("resume", "{run}"),
         ("line 3", "results.jsonl", "not a result record", "delete"), unchanged_results()),
    Case("results line that is not an object: resume", results_line("[1, 2]", 1), ("resume", "{run}"),
         ("line 1", "results.jsonl", "not a result record"), unchanged_results()),
    Case("untrained results line without an id: resume",
         results_line(NO_ID, 2, name="results_untrained.jsonl", kind="learner"), ("resume", "{run}"),
         ("line 2", "results_untrained.jsonl", "not a result record"),
         unchanged_results("results_untrained.jsonl", 4)),
    Case("full disk appending results", full_disk("results.jsonl", writes_left=2),
         ("run", *FAST, "--method", "cot", "--test-size", "4", "--concurrency", "1", "--run-dir", "{run}"),
         ("disk", "full", "econash resume", "{run}"), results_complete_lines),
    Case("full disk saving a checkpoint", full_disk("ckpt-", writes_left=1), LEARNER_RUN,
         ("disk", "full", "econash resume", "{run}"), only_the_first_checkpoint),
    Case("full disk writing summary.json", full_disk("summary.json"),
         ("run", *FAST, "--method", "cot", "--test-size", "2", "--run-dir", "{run}"),
         ("disk", "full", "econash resume", "{run}"), no_summary),
    Case("full disk writing manifest.json", full_disk("manifest.json"),
         ("run", *FAST, "--method", "cot", "--test-size", "2", "--run-dir", "{run}"),
         ("disk", "full", "run the command again")),
]


def assert_one_sentence(result: Result, words: tuple[str, ...], fill: dict[str, str]) -> None:
    output = result.output
    assert result.exit_code != 0, output
    assert "internal error" not in output and "Traceback" not in output, output
    assert len(output.strip().splitlines()) <= 3, output
    flat = " ".join(output.split()).lower()
    for word in words:
        assert word.format(**fill).lower() in flat, f"{word!r} missing from: {output}"


@pytest.mark.parametrize("case", SENTENCE_CASES, ids=[case.name for case in SENTENCE_CASES])
def test_damaged_state_is_one_sentence(case: Case, tmp_path: Path, base_runs: dict[str, Path],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    case.build(tmp_path, base_runs, monkeypatch)
    fill = {"run": str(tmp_path / "run"), "tmp": str(tmp_path)}
    result = invoke(*(part.format(**fill) for part in case.command))
    monkeypatch.undo()
    assert_one_sentence(result, case.words, fill)
    if case.check is not None:
        case.check(tmp_path)


# --- recoveries ---------------------------------------------------------------------------------

@pytest.mark.parametrize("damage", [garbage_cache, truncated_cache], ids=["garbage", "truncated"])
def test_cache_clear_replaces_a_damaged_cache_file(damage, tmp_path: Path, base_runs: dict[str, Path],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    damage(tmp_path, base_runs, monkeypatch)
    cleared = invoke("cache", "clear")
    assert cleared.exit_code == 0, cleared.output
    assert "damaged" in cleared.output and "responses.sqlite" in cleared.output
    stats = invoke("cache", "stats", "--json")
    assert stats.exit_code == 0 and json.loads(stats.output)["entries"] == 0
    run = invoke("run", "--backend", "fake", "--method", "cot", "--test-size", "2", "--display", "none",
                 "--run-dir", str(tmp_path / "new"))
    assert run.exit_code == 0, run.output
    assert json.loads(invoke("cache", "stats", "--json").output)["entries"] == 2


def test_cache_stats_reads_a_read_only_cache(tmp_path: Path, base_runs: dict[str, Path],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    read_only_cache(tmp_path, base_runs, monkeypatch)
    stats = invoke("cache", "stats", "--json")
    assert stats.exit_code == 0, stats.output
    assert json.loads(stats.output)["entries"] == 2


def test_read_results_leaves_a_crash_tail_to_repair_and_names_damage_elsewhere(tmp_path: Path) -> None:
    row = {"id": "q1", "prediction_text": "4", "score": 1.0, "tokens": 3, "calls": 1, "added_later": [1]}
    path = tmp_path / "results.jsonl"
    good = json.dumps(row) + "\n"
    for tail in ['{"id": "q2", "predic', '{"id": "q2", "prediction_text": "x"', "\x00\x00\x00\n"]:
        path.write_text(good + tail)
        assert read_results(path) == [row]  # fields it does not know are kept; the tail is repair's
    path.write_text(good + "{cut\n" + good)
    with pytest.raises(EconashError, match="Line 2 of .*results.jsonl.* not a result record"):
        read_results(path)
    path.write_text(good + json.dumps({**row, "score": "high"}) + "\n")
    with pytest.raises(EconashError, match="Line 2 .*score"):
        read_results(path)


def test_resume_skips_a_damaged_latest_checkpoint_for_the_one_before(tmp_path: Path,
                                                                       base_runs: dict[str, Path]) -> None:
    reference = base_runs["learner"]
    run = copy_run(base_runs, "learner", tmp_path)
    (run / "summary.json").unlink()
    latest = checkpoints(run)[-1]
    latest.write_bytes(latest.read_bytes()[:700])

    result = invoke("resume", str(run), "--display", "none")
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "ckpt-000003-000012.pt is damaged" in flat and "ckpt-000002-000008.pt" in flat, result.output
    assert (run / "checkpoints" / "ckpt-000003-000012.pt.damaged").exists()
    # training redid the last batch from the checkpoint before and ended where the reference did
    ours = torch.load(checkpoints(run)[-1], weights_only=False)
    theirs = torch.load(checkpoints(reference)[-1], weights_only=False)
    assert ours["method"] == theirs["method"] and ours["train_state"] == theirs["train_state"]
    assert lines(run / "metrics.jsonl") == lines(reference / "metrics.jsonl")
    resumes = [e for e in lines(run / "events.jsonl") if e["type"] == "resume"]
    assert resumes[-1]["checkpoint"] == "ckpt-000002-000008.pt"
    assert resumes[-1]["damaged_checkpoints"] == ["ckpt-000003-000012.pt"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["complete"] is True and summary["n_train"] == 12 and summary["n_test"] == 3


@pytest.mark.parametrize("garbage", ["{\x00\x01 not json", '{"accuracy": "high"}', "[]"],
                         ids=["not-json", "wrong-fields", "not-an-object"])
@pytest.mark.parametrize("kind", ["cot", "learner"])
def test_a_garbage_summary_is_recomputed_from_the_results(garbage: str, kind: str, tmp_path: Path,
                                                         base_runs: dict[str, Path]) -> None:
    run = copy_run(base_runs, kind, tmp_path)
    before = json.loads((run / "summary.json").read_text())
    calls_before = sum(1 for e in lines(run / "events.jsonl") if e["type"] == "llm_call")
    (run / "summary.json").write_text(garbage)

    with pytest.raises(EconashError, match="summary.json.*damaged.*econash resume"):
        econash.read_summary(run)
    result = invoke("resume", str(run), "--display", "none")
    assert result.exit_code == 0, result.output
    after = json.loads((run / "summary.json").read_text())
    for key in ("accuracy", "n_train", "n_test", "llm_calls", "llm_calls_train", "tokens", "complete", "untrained"):
        assert after[key] == before[key], key
    assert sum(1 for e in lines(run / "events.jsonl") if e["type"] == "llm_call") == calls_before
    assert econash.read_summary(run).n_test == before["n_test"]


@pytest.mark.parametrize("name_part, writes_left, kind", [
    ("results.jsonl", 2, "cot"), ("events.jsonl", 3, "cot"), ("ckpt-", 1, "learner"), ("summary.json", 0, "learner"),
])
def test_after_a_full_disk_resume_finishes_with_every_question_once(name_part: str, writes_left: int, kind: str,
                                                                    tmp_path: Path, base_runs: dict[str, Path],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    command = {"cot": ("run", *FAST, "--method", "cot", "--test-size", "4", "--concurrency", "1",
                       "--run-dir", str(run)),
               "learner": tuple(part.format(run=run) for part in LEARNER_RUN)}[kind]
    fill_disk(monkeypatch, name_part, writes_left)
    failed = invoke(*command)
    monkeypatch.undo()
    assert failed.exit_code != 0 and "disk is full" in " ".join(failed.output.split()), failed.output
    for name in ("results.jsonl", "events.jsonl", "metrics.jsonl"):
        text = (run / name).read_text()
        assert not text or text.endswith("\n"), f"{name} holds half a line"
    assert not list(run.rglob("*.tmp"))

    resumed = invoke("resume", str(run), "--display", "none")
    assert resumed.exit_code == 0, resumed.output
    ids = [row["id"] for row in lines(run / "results.jsonl")]
    summary = json.loads((run / "summary.json").read_text())
    assert len(ids) == len(set(ids)) == summary["n_test"] and summary["complete"] is True
    if kind == "learner":
        reference = base_runs["learner"]
        assert [row["step"] for row in lines(run / "metrics.jsonl")] == [1, 2, 3]
        assert summary["n_train"] == 12 and summary["llm_calls_train"] == 12
        ours = torch.load(checkpoints(run)[-1], weights_only=False)
        theirs = torch.load(checkpoints(reference)[-1], weights_only=False)
        assert ours["method"] == theirs["method"] and ours["train_state"] == theirs["train_state"]
