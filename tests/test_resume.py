"""Resume after kill -9: every evaluation question exactly once, every append-only file repaired, and
`complete` only when every phase has every question. The kill -9 matrix over a learning run is in
test_resume_matrix.py."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import resume_script
from econash.rundir import RunDirectory, repair_jsonl
from econash.runner import resume_async, run_async

from conftest import REPO, run_cli

def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for(predicate, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert process.poll() is None, "the run finished before it could be killed"
        assert time.monotonic() < deadline, "timed out waiting for progress"
        time.sleep(0.01)


def kill9(process: subprocess.Popen) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def test_repair_cuts_a_half_written_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b"}\n{"id": "c", "pred')
    assert repair_jsonl(path) > 0
    assert path.read_text() == '{"id": "a"}\n{"id": "b"}\n'
    assert repair_jsonl(path) == 0


def test_killed_evaluation_resumes_with_every_question_exactly_once(tmp_path):
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "econash", "run", "--backend", "fake", "--method", "cot", "--test-size", "16",
            "--concurrency", "2", "--display", "none", "--no-cache", "--run-dir", str(run_dir),
            "-B", "backend_options.latency_s=0.15"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    results = run_dir / "results.jsonl"
    wait_for(lambda: results.exists() and len(results.read_text().splitlines()) >= 4, process)
    kill9(process)
    before = lines(results)
    assert 4 <= len(before) < 16 and not (run_dir / "summary.json").exists()
    with open(results, "a") as handle:  # what a kill during a write leaves behind
        handle.write('{"id": "arith-0-test-15", "predic')

    resumed = run_cli("resume", str(run_dir), "--display", "plain")
    assert resumed.returncode == 0, resumed.stderr
    after = lines(results)
    ids = [row["id"] for row in after]
    assert sorted(ids) == sorted(f"arith-0-test-{i}" for i in range(16)) and len(ids) == 16
    assert after[: len(before)] == before  # finished work is kept as it was
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["n_test"] == 16 and summary["llm_calls"] == 16 and summary["complete"] is True
    assert any(e["type"] == "resume" for e in lines(run_dir / "events.jsonl")) is False  # cot has no training
    again = run_cli("resume", str(run_dir))
    assert again.returncode == 0 and len(lines(results)) == 16  # a finished run is left alone


def test_cost_limit_stops_cleanly_and_resume_finishes(tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text("fake-model: {prompt: 1000, completion: 1000}\n")
    run_dir = tmp_path / "run"
    # Each call costs about $0.03-0.05 at these prices; $0.2 covers only a few of the 10 questions.
    first = run_cli("run", "--backend", "fake", "--method", "cot", "--test-size", "10", "--concurrency", "1",
                    "--display", "none", "--no-cache", "--prices", str(prices), "--cost-limit", "0.2",
                    "-B", "generation.max_tokens=10", "--run-dir", str(run_dir))
    assert first.returncode == 0, first.stderr
    assert "incomplete because the cost limit was reached" in " ".join(first.stdout.split())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["complete"] is False and summary["stopped_reason"] == "cost_limit"
    assert 0 < summary["n_test"] < 10 and summary["cost"] <= 0.2
    resumed = run_cli("resume", str(run_dir), "--cost-limit", "100", "--display", "none")
    assert resumed.returncode == 0, resumed.stderr
    done = json.loads((run_dir / "summary.json").read_text())
    assert done["complete"] is True and done["n_test"] == 10
    assert len({row["id"] for row in lines(run_dir / "results.jsonl")}) == len(lines(run_dir / "results.jsonl")) == 10


def test_cost_limit_without_prices_is_one_sentence(tmp_path):
    result = run_cli("run", "--backend", "fake", "--cost-limit", "1", "--run-dir", str(tmp_path / "r"))
    assert result.returncode == 2 and "needs a price table" in result.stderr and "Traceback" not in result.stderr


def test_resume_of_something_that_is_not_a_run(tmp_path):
    result = run_cli("resume", str(tmp_path))
    assert result.returncode == 2 and "not an econash run directory" in result.stderr
    missing = run_cli("resume", str(tmp_path / "nope"))
    assert missing.returncode != 0 and "Traceback" not in missing.stderr


def test_a_dev_evaluation_cut_by_the_cost_limit_is_redone_on_resume_and_counted_once(tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text("fake-model: {prompt: 1000, completion: 1000}\n")
    run_dir = tmp_path / "run"
    # One call per train episode and per dev question; the limit falls inside a dev evaluation
    # (4 episodes, then 6 dev questions, per update).
    common = ["--backend", "fake", "--method", "fake-learner", "--train-size", "16", "--dev-size", "6",
              "--test-size", "2", "--concurrency", "1", "--display", "none", "--no-cache",
              "-B", "dev.every=1", "-B", "dev.early_stopping=false", "-B", "generation.max_tokens=10"]
    first = run_cli("run", *common, "--prices", str(prices), "--cost-limit", "0.6", "--run-dir", str(run_dir))
    assert first.returncode == 0, first.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped_reason"] == "cost_limit" and summary["complete"] is False
    steps = [row["step"] for row in lines(run_dir / "metrics.jsonl")]
    # the summary counts only the episodes whose update and dev score were kept
    assert summary["n_train"] == 4 * len(steps)
    resumed = run_cli("resume", str(run_dir), "--cost-limit", "1000", "--display", "none")
    assert resumed.returncode == 0, resumed.stderr
    done = json.loads((run_dir / "summary.json").read_text())
    steps = [row["step"] for row in lines(run_dir / "metrics.jsonl")]
    assert done["complete"] is True and done["n_train"] == 16
    assert steps == list(range(1, 5)), steps


# ---------------------------------------------------------------- every append-only file, every phase


def learning_run(run_dir: Path) -> None:
    """A whole fake-learner run in this process (untrained evaluation, training, evaluation)."""
    registries, components = resume_script.build(0)
    asyncio.run(run_async(resume_script.config(str(run_dir)), registries=registries, components=components))


def resume_learning_run(run_dir: Path) -> dict:
    registries, components = resume_script.build(0)
    asyncio.run(resume_async(run_dir, registries=registries, components=components))
    return json.loads((run_dir / "summary.json").read_text())


def test_a_cut_untrained_line_is_repaired_and_the_untrained_policy_answers_every_question(tmp_path):
    run_dir = tmp_path / "run"
    learning_run(run_dir)
    untrained = lines(run_dir / "results_untrained.jsonl")
    # What a kill -9 during the untrained evaluation leaves: 5 answers, half of the sixth, nothing after.
    (run_dir / "summary.json").unlink()
    for name in ("metrics.jsonl", "results.jsonl"):
        (run_dir / name).write_text("")
    for checkpoint in (run_dir / "checkpoints").glob("*.pt"):
        checkpoint.unlink()
    sixth = json.dumps(untrained[5])
    (run_dir / "results_untrained.jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in untrained[:5]) + sixth[: len(sixth) // 2])

    summary = resume_learning_run(run_dir)

    assert summary["untrained"]["n_test"] == summary["n_test"] == resume_script.TEST
    again = lines(run_dir / "results_untrained.jsonl")  # every line parses: the cut one was removed
    assert sorted(row["id"] for row in again) == sorted(row["id"] for row in untrained)
    assert summary["complete"] is True


def test_a_run_missing_an_untrained_answer_is_not_complete(tmp_path):
    run_dir = tmp_path / "run"
    learning_run(run_dir)
    assert json.loads((run_dir / "summary.json").read_text())["complete"] is True
    path = run_dir / "results_untrained.jsonl"
    path.write_text("".join(line + "\n" for line in path.read_text().splitlines()[:-1]))
    (run_dir / "summary.json").unlink()

    summary = resume_learning_run(run_dir)

    assert summary["n_test"] == resume_script.TEST and summary["untrained"]["n_test"] == resume_script.TEST - 1
    assert summary["complete"] is False
    assert any("results_untrained.jsonl" in note for note in summary["notes"])


def test_resume_repairs_every_append_only_file(tmp_path):
    run_dir = tmp_path / "run"
    learning_run(run_dir)
    (run_dir / "summary.json").unlink()
    for name in RunDirectory.APPEND_ONLY:
        with open(run_dir / name, "a") as handle:
            handle.write('{"id": "half a li')

    resume_learning_run(run_dir)

    for name in RunDirectory.APPEND_ONLY:
        text = (run_dir / name).read_text()
        assert text.endswith("\n") and len(lines(run_dir / name)) == len(text.splitlines()), name


def test_every_jsonl_file_a_run_writes_is_declared_append_only(tmp_path):
    run_dir = tmp_path / "run"
    learning_run(run_dir)
    written = {path.name for path in run_dir.glob("*.jsonl")}
    assert written == set(RunDirectory.APPEND_ONLY)
    with pytest.raises(ValueError, match="APPEND_ONLY"):
        RunDirectory(run_dir).append("notes.jsonl", {"a": 1})
