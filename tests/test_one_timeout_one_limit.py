"""One timeout (generation.timeout_s) and one connection limit (--max-connections, or the backend's
max_connections option) for a run: the SDK client's pool is as large as the engine's limit, so no
call waits inside the HTTP client while its timeout runs (docs/engine.md)."""

from __future__ import annotations

import asyncio

import pytest

import econash
from econash.config_types import RunConfig
from econash.errors import ConfigError
from econash.runner import Components, run_async
from econash.testing.openai_server import FaultServer

CALLS = 48  # more than the SDK backends' default pool of 32
LATENCY_S = 1.0


def openai_config(server: FaultServer, tmp_path, **fields) -> RunConfig:
    return RunConfig.model_validate({
        "backend": "openai", "base_url": server.base_url, "model": "m", "method": "cot", "display": "none",
        "run_dir": tmp_path / "run", "cache": {"eval": False}, **fields})


def test_calls_the_engine_lets_through_never_queue_inside_the_client(tmp_path):
    """48 calls at once with --max-connections 48 and a 1 s server: every call gets a connection at
    once. Were the client's pool its default 32, 16 calls would wait a second inside httpx while their
    1.8 s timeout ran, and time out."""
    with FaultServer(responder=lambda body: "The answer is 7.", latency_s=LATENCY_S) as server:
        config = openai_config(server, tmp_path, test_size=CALLS, concurrency=CALLS, max_connections=CALLS,
                               generation={"timeout_s": 1.8}, retry={"max_attempts": 1})
        summary = asyncio.run(run_async(config, registries=econash.registries()))
    assert summary.complete and summary.n_test == CALLS and summary.retries == 0


def test_the_sdk_pool_and_timeout_follow_the_run(tmp_path):
    registries = econash.registries()
    with FaultServer() as server:
        config = openai_config(server, tmp_path, max_connections=48, generation={"timeout_s": 600})
        backend = Components.build(config, registries).backend
        assert (backend.max_connections, backend.timeout_s) == (48, 600)
        # without --max-connections the backend's own option is the one limit, engine and pool alike
        own = Components.build(openai_config(server, tmp_path, backend_options={"max_connections": 8}), registries)
        assert own.backend.max_connections == own.backend.capabilities.max_concurrency == 8


@pytest.mark.parametrize("fields,words", [
    ({"max_connections": 64, "backend_options": {"max_connections": 32}},
     ["backend_options.max_connections (32)", "--max-connections (64)", "give one"]),
    ({"generation": {"timeout_s": 120}, "backend_options": {"timeout_s": 30}},
     ["backend_options.timeout_s (30)", "generation.timeout_s (120)", "give one"]),
])
def test_two_values_for_one_knob_are_refused(fields, words, tmp_path):
    with FaultServer() as server, pytest.raises(ConfigError) as caught:
        Components.build(openai_config(server, tmp_path, **fields), econash.registries())
    message = str(caught.value)
    assert all(word in message for word in words), message


def test_the_same_value_twice_is_one_setting(tmp_path):
    with FaultServer() as server:
        config = openai_config(server, tmp_path, max_connections=16, backend_options={"max_connections": 16},
                               generation={"timeout_s": 30}, topology="hetero",
                               topology_options={"executors": [{"backend": "openai", "base_url": server.base_url,
                                                                "model": "m", "options": {"timeout_s": 30}}]})
        components = Components.build(config, econash.registries())
    assert components.backend.max_connections == 16
    assert [(b.max_connections, b.timeout_s) for b in components.executor_backends] == [(16, 30)] * 3
