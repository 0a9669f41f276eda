"""Damaged state on disk gets one sentence naming the fix, or is recovered where that is safe.

``SENTENCE_CASES`` is a table (name, how to damage a directory, the command, the words the sentence
must hold) run by one helper that asserts what every bad input must give: a non-zero exit, at most
three lines of output, no "internal error", and the key words. The damaged directories are built by
tests/damaged_dirs.py from finished runs on the fake backend. The recoveries (a damaged cache
cleared, a damaged latest checkpoint skipped, a garbage summary.json recomputed, a run stopped by a
full disk resumed) are tests of their own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import torch
from click.testing import Result

import econash
from damaged_dirs import (
    FAST,
    Builder,
    base_runs,  # noqa: F401  (a fixture)
    cache_dir_is_a_file,
    cache_pages_overwritten,
    cache_path_is_a_folder,
    checkpoints,
    copy_run,
    damaged_checkpoints,
    econash_run,
    fill_disk,
    full_disk,
    garbage_cache,
    invoke,
    lines,
    read_only_cache,
    results_line,
    truncated_cache,
    truncated_latest_checkpoint,
    unchanged_results,
)
from econash.errors import EconashError
from econash.integrity import read_results


@dataclass(frozen=True)
class Case:
    """A damaged directory and the sentence the command must answer with.

    ``build(tmp, base_runs, monkeypatch)`` makes the damage under ``tmp``; ``command`` may use
    ``{run}`` (tmp/run) and ``{tmp}``; ``words`` must all appear (case-insensitive, whitespace
    collapsed); ``check(tmp)`` asserts what must hold on disk afterwards.
    """

    name: str
    build: Builder
    command: tuple[str, ...]
    words: tuple[str, ...]
    check: Callable[[Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)



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
