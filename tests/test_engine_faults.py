"""Whole runs through the real openai SDK against a loopback server that injects faults.

Under each transient fault the run completes with every question answered once and every call
counted once; under a permanent fault it stops with one clear sentence.
"""

from __future__ import annotations

import asyncio
import json

import pytest

import econash
from econash.errors import BackendError
from econash.runner import Components, run_async
from econash.testing.openai_server import Fault, FaultServer

from conftest import run_cli

QUESTIONS = 6
FAST_RETRY = {"max_attempts": 4, "initial_wait_s": 0.01, "max_wait_s": 0.05, "jitter_s": 0.0}


def run_against(server: FaultServer, tmp_path, timeout_s: float = 10.0):
    registries = econash.registries()
    backend = econash.load_backend("openai", base_url=server.base_url, model="m", registries=registries,
                                   timeout_s=timeout_s)
    components = Components(backend=backend, task=econash.load_task("arith", registries=registries),
                            method=econash.load_method("cot", registries=registries))
    config = econash.RunConfig(backend="openai", test_size=QUESTIONS, concurrency=2, display="none",
                               run_dir=tmp_path / "run", retry=FAST_RETRY, cache={"eval": False},
                               generation={"timeout_s": timeout_s})
    return asyncio.run(run_async(config, registries=registries, components=components))


@pytest.mark.parametrize("fault", [
    Fault("rate_limit", retry_after=0.05), "server_error", "unavailable", Fault("timeout", delay_s=4.0),
    "reset", "malformed", "empty",
])
def test_transient_faults_lose_nothing_and_count_nothing_twice(fault, tmp_path):
    with FaultServer(responder=lambda body: "The answer is 7.") as server:
        server.add_faults(fault, None, fault)  # two faulted requests among the first three
        # A short timeout only where the fault is a timeout: a loaded machine must not add retries.
        is_timeout = getattr(fault, "kind", fault) == "timeout"
        summary = run_against(server, tmp_path, timeout_s=1.0 if is_timeout else 10.0)
        requests = server.request_count
    assert summary.complete and summary.n_test == QUESTIONS
    assert summary.llm_calls == QUESTIONS  # a retried call is one call
    assert requests == QUESTIONS + 2  # the server saw the two failed attempts too
    assert summary.retries == 2
    rows = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert len(rows) == len({r["id"] for r in rows}) == QUESTIONS
    assert summary.tokens.completion == QUESTIONS * 4  # usage of the successful answers only
    retries = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()
               if '"retry"' in line]
    assert len(retries) == 2


@pytest.mark.parametrize("fault,phrase", [
    ("server_error", "gave up after 4 attempts"),
    ("auth", "OPENAI_API_KEY"),
    ("context_length", "context"),
])
def test_permanent_faults_fail_with_one_sentence(fault, phrase, tmp_path):
    with FaultServer() as server:
        server.set_persistent_fault(fault)
        with pytest.raises(BackendError) as err:
            run_against(server, tmp_path)
    message = str(err.value)
    assert phrase in message and "\n" not in message
    events = (tmp_path / "run" / "events.jsonl").read_text()
    assert '"abort"' in events


def test_cli_permanent_fault_exits_nonzero_without_traceback(tmp_path):
    with FaultServer() as server:
        server.set_persistent_fault("auth")
        result = run_cli("run", "--backend", "openai", "--method", "cot", "--base-url", server.base_url, "--model", "m",
                         "--test-size", "2", "--display", "none", "--no-cache", "--run-dir", str(tmp_path / "r"),
                         "-B", "backend_options.api_key=sk-test-not-a-real-key")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "OPENAI_API_KEY" in result.stderr and "sk-test-not-a-real-key" not in result.stderr
    assert "sk-test-not-a-real-key" not in (tmp_path / "r" / "manifest.json").read_text()
    assert "sk-test-not-a-real-key" not in (tmp_path / "r" / "events.jsonl").read_text()


def test_second_evaluation_is_served_from_the_cache(tmp_path):
    with FaultServer(responder=lambda body: "The answer is 7.") as server:
        args = ["run", "--backend", "openai", "--method", "cot", "--base-url", server.base_url, "--model", "m",
                "--test-size", "3",
                "--display", "none", "--json"]
        first = run_cli(*args, "--run-dir", str(tmp_path / "a"))
        seen = server.request_count
        second = run_cli(*args, "--run-dir", str(tmp_path / "b"))
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert seen == 3 and server.request_count == 3  # nothing new reached the server
    assert json.loads(second.stdout)["cached_calls"] == 3
    assert json.loads(second.stdout)["tokens"] == json.loads(first.stdout)["tokens"]
