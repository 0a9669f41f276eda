"""The `openai` backend: the real openai SDK against the loopback FaultServer (no network)."""

from __future__ import annotations

import asyncio
import json

import pytest

import econash
from econash.backend import EmptyCompletionError, ErrorKind
from econash.errors import ConfigError
from econash.testing.openai_server import Fault, FaultServer
from econash.types import LLMRequest, Message, SamplingParams

pytest.importorskip("openai", reason="the openai backend needs the openai package")
from econash.sdk_backend import parse_retry_after  # noqa: E402
from econash_plugins.backends.openai import OpenAIBackend  # noqa: E402

SECRET = "sk-test-SECRET-0123456789abcdef"


@pytest.fixture(autouse=True)
def no_openai_env(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server():
    with FaultServer() as srv:
        yield srv


def ask(text: str = "what is two plus two", **sampling) -> LLMRequest:
    return LLMRequest(messages=[Message(role="system", content="be brief"), Message(role="user", content=text)],
                      sampling=SamplingParams(**sampling))


def backend_for(server: FaultServer, **options) -> OpenAIBackend:
    options.setdefault("api_key", SECRET)
    return OpenAIBackend(OpenAIBackend.Options(**options), model="test-model", base_url=server.base_url)


def call(backend: OpenAIBackend, request: LLMRequest | None = None):
    """One generate call in its own event loop; returns the result or the exception raised."""

    async def go():
        try:
            return await backend.generate(request or ask())
        except Exception as exc:  # noqa: BLE001 - the tests inspect it
            return exc
        finally:
            await backend.aclose()

    return asyncio.run(go())


def test_text_usage_and_model_come_from_the_server(server):
    result = call(backend_for(server))
    assert result.text == "what is two plus two"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (7, 5)
    assert result.model == "fault-server-model" and result.finish_reason == "stop"
    assert result.latency_s > 0
    assert server.request_headers[0]["authorization"] == f"Bearer {SECRET}"


def test_sampling_parameters_are_sent(server):
    call(backend_for(server), ask("x", temperature=0.3, top_p=0.9, max_tokens=17, seed=5, stop=["\n\n", "END"]))
    call(backend_for(server), ask("y", temperature=1.1))
    sent, default = server.requests
    assert sent["model"] == "test-model"
    assert sent["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "x"}]
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"], sent["seed"]) == (0.3, 0.9, 17, 5)
    assert sent["stop"] == ["\n\n", "END"]
    assert default["temperature"] == 1.1 and "seed" not in default and "stop" not in default


def test_usage_defaults_to_zero_when_the_server_omits_it(server, monkeypatch):
    # A server that omits usage: strip it from the response the handler builds.
    import econash.testing.openai_server as mod

    original = mod._Handler._send_json

    def without_usage(self, status, obj, headers=None):
        if isinstance(obj, dict):
            obj.pop("usage", None)
        return original(self, status, obj, headers)

    monkeypatch.setattr(mod._Handler, "_send_json", without_usage)
    result = call(backend_for(server))
    assert result.text and result.usage.total_tokens == 0


def test_client_is_made_per_event_loop(server):
    backend = backend_for(server)
    first = asyncio.run(backend.generate(ask("one")))
    first_client = backend._client
    # the loop that made it has ended: its client was closed then, and is not reused
    assert first_client.is_closed()
    second = asyncio.run(backend.generate(ask("two")))
    assert backend._client is not first_client
    asyncio.run(backend.aclose())
    assert (first.text, second.text) == ("one", "two")


def test_concurrent_calls_share_the_client_and_overlap():
    with FaultServer(latency_s=0.2) as srv:
        backend = backend_for(srv, max_connections=48)

        async def go():
            loop = asyncio.get_running_loop()
            try:
                await backend.generate(ask("warm-up"))  # makes the client (the SDK's setup is slow)
                started = loop.time()
                results = await asyncio.gather(*(backend.generate(ask(f"n{i}")) for i in range(48)))
                return results, loop.time() - started
            finally:
                await backend.aclose()

        results, elapsed = asyncio.run(go())
    assert sorted(r.text for r in results) == sorted(f"n{i}" for i in range(48))
    # one at a time they would take 9.6 s; the SDK itself costs a few ms of CPU per call
    # One by one they would take 9.6 s; the bound leaves room for a loaded CI machine.
    assert elapsed < 3.0, f"48 concurrent calls at 0.2 s latency took {elapsed:.2f} s"
    assert backend.capabilities.max_concurrency == 48


def test_401_is_fatal_and_names_the_key_variable(server):
    server.add_faults("auth")
    backend = backend_for(server)
    exc = call(backend)
    assert type(exc).__name__ == "AuthenticationError"
    assert backend.classify_error(exc) == (ErrorKind.FATAL, None)
    message = backend.describe_error(exc)
    assert message == f"the server at {server.base_url} rejected the API key (401); set OPENAI_API_KEY to a valid key."


def test_429_is_rate_limit_with_the_retry_after_value(server):
    server.add_faults(Fault("rate_limit", retry_after=1.5), Fault("rate_limit", retry_after=None, retry_after_ms=250),
                      Fault("rate_limit", retry_after=None))
    backend = backend_for(server)
    kinds = [backend.classify_error(call(backend)) for _ in range(3)]
    assert kinds == [(ErrorKind.RATE_LIMIT, 1.5), (ErrorKind.RATE_LIMIT, 0.25), (ErrorKind.RATE_LIMIT, None)]
    server.add_faults("rate_limit")
    assert "(429)" in backend.describe_error(call(backend))


def test_quota_429_is_fatal(server):
    server.add_faults("quota")
    backend = backend_for(server)
    exc = call(backend)
    assert backend.classify_error(exc) == (ErrorKind.FATAL, None)
    assert "quota" in backend.describe_error(exc)


@pytest.mark.parametrize("fault,status", [("server_error", 500), ("unavailable", 503),
                                          (Fault("server_error", status=502), 502)])
def test_5xx_is_transient_and_names_the_status(server, fault, status):
    server.add_faults(fault)
    backend = backend_for(server)
    exc = call(backend)
    assert getattr(exc, "status_code", None) == status
    assert backend.classify_error(exc) == (ErrorKind.TRANSIENT, None)
    assert f"status {status}" in backend.describe_error(exc)


def test_sdk_retries_are_off(server):
    server.add_faults("server_error")
    exc = call(backend_for(server))
    assert getattr(exc, "status_code", None) == 500
    assert server.request_count == 1


def test_reset_is_a_transient_connection_error(server):
    import openai

    server.add_faults("reset")
    backend = backend_for(server)
    exc = call(backend)
    assert isinstance(exc, openai.APIConnectionError)
    assert backend.classify_error(exc) == (ErrorKind.TRANSIENT, None)
    assert backend.describe_error(exc) == f"could not connect to {server.base_url}; is the server running?"


def test_connection_refused_names_the_url():
    with FaultServer() as srv:
        base_url = srv.base_url
    backend = OpenAIBackend(OpenAIBackend.Options(), model="m", base_url=base_url)  # the server is gone
    exc = call(backend)
    assert backend.classify_error(exc)[0] is ErrorKind.TRANSIENT
    assert backend.describe_error(exc) == f"could not connect to {base_url}; is the server running?"


def test_malformed_body_is_transient(server):
    server.add_faults("malformed")
    backend = backend_for(server)
    exc = call(backend)
    # the SDK lets the JSON decoder's error through for a 200 whose body is not JSON
    assert isinstance(exc, json.JSONDecodeError)
    assert backend.classify_error(exc) == (ErrorKind.TRANSIENT, None)
    assert "not valid OpenAI JSON" in backend.describe_error(exc)


def test_empty_completion_raises_and_is_transient(server):
    server.add_faults("empty", Fault("empty", finish_reason="length"))
    backend = backend_for(server)
    exc = call(backend)
    assert isinstance(exc, EmptyCompletionError)
    assert backend.classify_error(exc) == (ErrorKind.TRANSIENT, None)
    truncated = call(backend)  # empty because max_tokens ran out: a result, not an error
    assert truncated.text == "" and truncated.finish_reason == "length"


def test_client_timeout_is_transient(server):
    import openai

    server.add_faults(Fault("timeout", delay_s=2.0))
    backend = backend_for(server, timeout_s=0.3)
    exc = call(backend)
    assert isinstance(exc, openai.APITimeoutError)
    assert backend.classify_error(exc) == (ErrorKind.TRANSIENT, None)
    assert "timed out after 0.3 s" in backend.describe_error(exc)
    assert backend.classify_error(asyncio.TimeoutError()) == (ErrorKind.TRANSIENT, None)


def test_context_length_and_bad_request_are_fatal(server):
    server.add_faults("context_length", "bad_request")
    backend = backend_for(server)
    too_long, bad = call(backend), call(backend)
    assert backend.classify_error(too_long) == (ErrorKind.FATAL, None)
    assert backend.classify_error(bad) == (ErrorKind.FATAL, None)
    message = backend.describe_error(too_long)
    assert "too long for the context length of model 'test-model'" in message
    assert "generation.max_tokens" in message and "longer context" in message
    assert "status 400" in backend.describe_error(bad) and "context" not in backend.describe_error(bad)


def test_unknown_model_404_names_the_model_and_the_flag(server):
    server.add_faults("not_found")
    backend = backend_for(server)
    exc = call(backend)
    assert backend.classify_error(exc) == (ErrorKind.FATAL, None)
    message = backend.describe_error(exc)
    assert "'test-model'" in message and "--model" in message


def test_missing_key_without_base_url_is_a_config_error(monkeypatch):
    with pytest.raises(ConfigError, match="OPENAI_API_KEY") as info:
        OpenAIBackend(OpenAIBackend.Options())
    assert str(info.value).count(". ") == 0  # one sentence
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    assert OpenAIBackend(OpenAIBackend.Options()).api_key == "from-env"


def test_no_key_with_a_base_url_uses_a_placeholder(server):
    backend = OpenAIBackend(OpenAIBackend.Options(), base_url=server.base_url)
    assert backend.model == "gpt-4o-mini"
    call(backend)
    assert server.request_headers[0]["authorization"] == "Bearer not-needed"
    assert server.requests[0]["model"] == "gpt-4o-mini"


def test_describe_error_never_contains_the_api_key(server):
    faults = ["auth", "rate_limit", "server_error", "unavailable", "bad_request", "context_length", "not_found",
              "malformed", "reset", "empty", Fault("bad_request", message=f"key {SECRET} is not allowed")]
    server.add_faults(*faults)
    backend = backend_for(server)
    for _ in faults:
        message = backend.describe_error(call(backend))
        assert message and SECRET not in message
    assert SECRET not in backend.describe_error(RuntimeError(f"boom {SECRET}"))
    assert SECRET not in repr(backend)


def test_cache_identity_and_capabilities(server):
    assert backend_for(server).cache_identity() == {"base_url": server.base_url}
    hosted = OpenAIBackend(OpenAIBackend.Options(api_key="k"))
    assert hosted.cache_identity() == {"base_url": "https://api.openai.com/v1"}
    caps = OpenAIBackend(OpenAIBackend.Options(api_key="k", max_connections=7)).capabilities
    assert caps.max_concurrency == 7 and caps.supports_seed and caps.temperature_range == (0.0, 2.0)


def test_parse_retry_after():
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_registered_and_options_checked():
    registries = econash.registries()
    entry = registries.backends.get("openai")
    assert entry.plugin == "openai"
    assert entry.description.startswith("OpenAI chat completions, or any OpenAI-compatible server via --base-url")
    with pytest.raises(ConfigError, match="max_connections"):
        registries.backends.create("openai", {"api_key": "k", "max_connections": 0}, model=None, base_url=None)
    with pytest.raises(ConfigError, match="option 'api_kee'; did you mean 'api_key'"):
        registries.backends.create("openai", {"api_kee": "k"}, model=None, base_url=None)
    backend = registries.backends.create("openai", {"api_key": "k", "timeout_s": 5}, model="m", base_url=None)
    assert isinstance(backend, OpenAIBackend) and backend.timeout_s == 5.0
