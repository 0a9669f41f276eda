"""Queue-aware timeouts: a call waiting for one of our connection slots does not burn its timeout
(the clock starts when the request is sent), and --max-connections, per server, is how many requests
the server runs at once, so a server that runs one (llama-cpp-python's) never sees two. Without the
setting, calls queued at such a server time out, and the error sentence says so and names the fix.
Against FaultServer(slots=1): a loopback server that serves one request at a time, slowly."""

from __future__ import annotations

import asyncio
import logging

import pytest

import econash
from econash.call_types import LLMRequest, Message
from econash.config_types import RunConfig
from econash.engine.engine import Engine
from econash.errors import RetriesExhaustedError
from econash.runner import run_async
from econash.testing.fake import FakeBackend
from econash.testing.openai_server import FaultServer

CALLS = 12
SERVICE_S = 0.15  # one request's time at the server: 12 of them take 1.8 s one after another
TIMEOUT_S = 1.0  # longer than one request, shorter than the queue


def config_for(servers: list[FaultServer], tmp_path, **fields) -> RunConfig:
    urls = [s.base_url for s in servers]
    return RunConfig.model_validate({
        "backend": "openai", "base_url": urls if len(urls) > 1 else urls[0], "model": "m", "method": "cot",
        "display": "none", "run_dir": tmp_path / "run", "cache": {"eval": False}, "test_size": CALLS,
        "concurrency": CALLS, "generation": {"timeout_s": TIMEOUT_S}, "retry": {"max_attempts": 1}, **fields})


def run(config: RunConfig):
    return asyncio.run(run_async(config, registries=econash.registries()))


def test_a_one_slot_server_given_one_connection_never_sees_two_calls_and_none_times_out(tmp_path):
    with FaultServer(responder=lambda body: "The answer is 7.", latency_s=SERVICE_S, slots=1) as server:
        summary = run(config_for([server], tmp_path, max_connections=1))
        peak, served = server.peak_open_requests, server.request_count
    assert summary.complete and summary.n_test == CALLS and summary.retries == 0  # no attempt may fail
    assert (peak, served) == (1, CALLS)


def test_replicas_of_one_slot_each_get_one_call_at_a_time_each(tmp_path):
    servers = [FaultServer(responder=lambda body: "The answer is 7.", latency_s=SERVICE_S, slots=1) for _ in range(2)]
    with servers[0], servers[1]:
        summary = run(config_for(servers, tmp_path, max_connections=1, backend_options={"max_connections": 1}))
        peaks = [s.peak_open_requests for s in servers]
        served = [s.request_count for s in servers]
    assert summary.complete and summary.retries == 0
    assert peaks == [1, 1] and sum(served) == CALLS and min(served) >= CALLS // 3


def test_without_the_setting_queued_calls_time_out_and_the_sentence_names_the_fix(tmp_path, caplog):
    """The failure the issue reports: the default 32 connections let every call through to a server
    that runs one; those waiting there time out. The run stops with a sentence that says why and what
    to set, and a note says it at the first such timeout."""
    with FaultServer(responder=lambda body: "The answer is 7.", latency_s=SERVICE_S, slots=1) as server:
        with caplog.at_level(logging.WARNING, logger="econash"), pytest.raises(RetriesExhaustedError) as caught:
            run(config_for([server], tmp_path))
        peak = server.peak_open_requests
    assert peak > 1  # the server saw them all at once
    message = str(caught.value)
    assert "did not answer within 1 s" in message and "calls in flight to the openai server" in message
    assert "--max-connections" in message and "runs one" in message
    notes = [r.getMessage() for r in caplog.records if "--max-connections" in r.getMessage()]
    assert len(notes) == 1  # once per server, however many calls time out


def test_a_call_waiting_for_a_slot_of_ours_does_not_burn_its_timeout():
    """Five calls of 0.3 s each through one connection with a 0.5 s timeout: the last is sent after
    1.2 s in our queue and still has its whole timeout once sent."""
    backend = FakeBackend(echo=True, latency_s=0.3)
    engine = Engine(timeout_s=0.5, max_connections=1)
    request = LLMRequest(messages=[Message(role="user", content="hi")])

    async def go():
        return await asyncio.gather(*(engine.call(backend, request, phase="train") for _ in range(5)))

    results = asyncio.run(go())
    assert [record.retries for _, record in results] == [0] * 5
    assert engine.endpoint_for(backend).slots == 1 and engine.endpoint_for(backend).in_flight == 0
