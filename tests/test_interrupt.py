"""Ctrl-C and SIGTERM stop a run cleanly (issue 14): the resume hint names the real run directory, no
click "Aborted!", exit 130 for SIGINT and 143 for SIGTERM, and `econash resume` finishes the run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, run_cli

QUESTIONS = 12


def start(run_dir: Path) -> subprocess.Popen:
    args = [sys.executable, "-m", "econash", "run", "--backend", "fake", "--method", "cot", "--test-size",
            str(QUESTIONS), "--concurrency", "1", "--display", "none", "--no-cache", "--run-dir", str(run_dir),
            "-B", "backend_options.latency_s=0.5"]
    env = {k: v for k, v in os.environ.items() if k not in ("ECONASH_DEBUG", "ECONASH_LOAD_PLUGINS")}
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)


def wait_for_a_result(process: subprocess.Popen, results: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not (results.exists() and results.read_text().count("\n") >= 1):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.02)


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_run_with_the_real_resume_hint(tmp_path, signum, code):
    run_dir = tmp_path / "run"
    process = start(run_dir)
    wait_for_a_result(process, run_dir / "results.jsonl")
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=30)
    output = stdout + stderr
    assert process.returncode == code, output
    assert f"econash resume {run_dir}" in output and "RUN_DIR" not in output
    assert "Aborted" not in output and "Traceback" not in output
    assert len([line for line in output.splitlines() if line.strip()]) <= 3, output
    rows = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert 1 <= len(rows) < QUESTIONS
    if signum == signal.SIGINT:  # one resume is enough to show the directory is whole
        resumed = run_cli("resume", str(run_dir), "--display", "none", "--json")
        assert resumed.returncode == 0, resumed.stderr
        ids = [json.loads(line)["id"] for line in (run_dir / "results.jsonl").read_text().splitlines()]
        assert len(ids) == len(set(ids)) == QUESTIONS
        assert json.loads(resumed.stdout)["complete"] is True
