"""One writer per run directory: concurrent `econash run` / `econash resume` of one run, with real
processes whose fake backend is slow enough (backend_options.latency_s) that they overlap."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from econash.errors import EconashError
from econash.rundir import RunDirectory
from econash.runlock import RunLock, RunLockedError
from econash.runner import resume_async, run_async
from econash.types import RunConfig

from conftest import REPO
from test_resume import kill9, lines, wait_for

QUESTIONS = 12
HOST = socket.gethostname()


def econash(*args: str) -> subprocess.Popen[str]:
    """`python -m econash ARGS` started in the background, as a user would from a second shell."""
    env = {k: v for k, v in os.environ.items() if k not in ("ECONASH_LOAD_PLUGINS", "ECONASH_STRICT_PLUGINS")}
    return subprocess.Popen([sys.executable, "-m", "econash", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)


def run_args(run_dir: Path, latency_s: float) -> list[str]:
    return ["run", "--backend", "fake", "--method", "cot", "--test-size", str(QUESTIONS), "--concurrency", "1",
            "--display", "none", "--no-cache", "--run-dir", str(run_dir), "-B", f"backend_options.latency_s={latency_s}"]


def finish(processes: list[subprocess.Popen[str]]) -> list[tuple[int, str]]:
    """Wait for each process; its exit status and stderr."""
    errors = [p.communicate(timeout=120)[1] for p in processes]
    return [(p.returncode, err) for p, err in zip(processes, errors)]


def assert_refused(stderr: str, holder_pid: int | None = None) -> None:
    """One sentence naming the holder (pid, host) and what to do; no traceback."""
    text = " ".join(stderr.split())
    assert stderr.count("\n") == 1 and stderr.startswith("Error: "), stderr
    assert "is in use by econash process" in text and f"on host {HOST}" in text, stderr
    assert holder_pid is None or f"process {holder_pid} " in text, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr


def assert_each_question_once(run_dir: Path) -> None:
    ids = [row["id"] for row in lines(run_dir / "results.jsonl")]
    assert sorted(ids) == sorted(f"arith-0-test-{i}" for i in range(QUESTIONS)), ids
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["n_test"] == QUESTIONS and summary["llm_calls"] == QUESTIONS and summary["complete"] is True


def test_two_resumes_of_one_killed_run_one_writes_the_other_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    first = econash(*run_args(run_dir, 0.3))
    results = run_dir / "results.jsonl"
    wait_for(lambda: results.exists() and len(results.read_text().splitlines()) >= 2, first)
    kill9(first)
    # kill -9 left its lock file behind, naming a process that is gone: a stale lock, taken over below.
    stale = json.loads((run_dir / RunDirectory.LOCK).read_text())
    assert stale["pid"] == first.pid and stale["host"] == HOST

    resumes = [econash("resume", str(run_dir), "--display", "none") for _ in range(2)]
    outcomes = finish(resumes)

    codes = sorted(code for code, _ in outcomes)
    assert codes == [0, 2], outcomes
    winner = next(p for p, (code, _) in zip(resumes, outcomes) if code == 0)
    assert_refused(next(err for code, err in outcomes if code == 2), winner.pid)
    assert_each_question_once(run_dir)
    assert not (run_dir / RunDirectory.LOCK).exists()  # released on exit


def test_runs_started_at_once_with_one_run_dir_only_one_writes(tmp_path):
    run_dir = tmp_path / "shared"
    runs = [econash(*run_args(run_dir, 0.4)) for _ in range(4)]
    outcomes = finish(runs)

    assert sorted(code for code, _ in outcomes) == [0, 2, 2, 2], outcomes
    winner = next(p for p, (code, _) in zip(runs, outcomes) if code == 0)
    for code, stderr in outcomes:
        if code:
            assert_refused(stderr, winner.pid)
            assert "--run-dir" in stderr
    assert_each_question_once(run_dir)
    events = [event["type"] for event in lines(run_dir / "events.jsonl")]
    assert events.count("llm_call") == events.count("episode") == QUESTIONS


def test_resume_while_the_run_is_going_is_refused_and_the_run_finishes(tmp_path):
    run_dir = tmp_path / "run"
    first = econash(*run_args(run_dir, 0.4))
    results = run_dir / "results.jsonl"
    wait_for(lambda: results.exists() and len(results.read_text().splitlines()) >= 1, first)
    second = econash("resume", str(run_dir), "--display", "none")
    [(code, stderr)] = finish([second])
    assert code == 2, stderr
    assert first.poll() is None, "the run ended before the resume was refused: the test proved nothing"
    assert_refused(stderr, first.pid)
    assert "econash resume" in stderr
    [(code, stderr)] = finish([first])
    assert code == 0, stderr
    assert_each_question_once(run_dir)


def test_ctrl_c_releases_the_lock_and_resume_finishes(tmp_path):
    run_dir = tmp_path / "run"
    first = econash(*run_args(run_dir, 0.2))
    results = run_dir / "results.jsonl"
    wait_for(lambda: results.exists() and len(results.read_text().splitlines()) >= 2, first)
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=60)
    assert first.returncode != 0
    assert not (run_dir / RunDirectory.LOCK).exists()
    resumed = econash("resume", str(run_dir), "--display", "none")
    [(code, stderr)] = finish([resumed])
    assert code == 0, stderr
    assert_each_question_once(run_dir)


# ---------------------------------------------------------------- in one process


def test_a_second_lock_names_the_holder_and_release_frees_it(tmp_path):
    with RunLock.acquire(tmp_path, instead="wait for it") as held:
        holder = json.loads((tmp_path / RunDirectory.LOCK).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == HOST
        with pytest.raises(RunLockedError, match=rf"process {os.getpid()} on host {HOST}; wait for it\."):
            RunLock.acquire(tmp_path, instead="wait for it")
        assert held.held
    assert not (tmp_path / RunDirectory.LOCK).exists()
    RunLock.acquire(tmp_path, instead="wait for it").release()


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    (tmp_path / RunDirectory.LOCK).write_text(json.dumps({"pid": pid, "host": HOST, "since": "earlier"}))
    lock = RunLock.acquire(tmp_path, instead="wait for it")
    try:
        assert lock.previous is not None and lock.previous["pid"] == pid
        assert json.loads((tmp_path / RunDirectory.LOCK).read_text())["pid"] == os.getpid()
    finally:
        lock.release()


def test_a_run_that_fails_releases_its_lock(tmp_path):
    run_dir = tmp_path / "run"
    config = RunConfig(backend="fake", method="cot", test_size=2, display="none", run_dir=run_dir,
                       cache={"train": False, "eval": False}, backend_options={"script": []})
    with pytest.raises(EconashError):
        asyncio.run(run_async(config))
    assert (run_dir / RunDirectory.MANIFEST).exists() and not (run_dir / RunDirectory.LOCK).exists()
    with pytest.raises(EconashError):
        asyncio.run(resume_async(run_dir))
    assert not (run_dir / RunDirectory.LOCK).exists()


def test_a_run_dir_held_by_a_resume_refuses_a_new_run_with_the_run_dir_advice(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with RunLock.acquire(run_dir, instead="wait for it"):
        with pytest.raises(RunLockedError, match="choose another --run-dir"):
            RunDirectory.create(run_dir, task="arith", method="cot")
    assert not (run_dir / RunDirectory.MANIFEST).exists()


def test_a_folder_that_cannot_be_locked_is_one_sentence(tmp_path):
    with pytest.raises(EconashError, match="does not exist"):
        RunLock.acquire(tmp_path / "missing", instead="wait for it")
    (tmp_path / RunDirectory.LOCK).mkdir()  # a lock file that cannot be opened, even by root
    with pytest.raises(EconashError, match="cannot be locked .*make the folder writable"):
        RunLock.acquire(tmp_path, instead="wait for it")
