"""The `anthropic` backend: the real anthropic SDK against the loopback MessagesServer (no network)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest

from econash.backend import EmptyCompletionError, ErrorKind
from econash.engine.context import RunContext
from econash.engine.engine import Engine
from econash.errors import BackendError, ConfigError
from econash.testing.anthropic_server import MessageFault, MessagesServer
from econash.types import LLMRequest, Message, RetryConfig, SamplingParams

anthropic = pytest.importorskip("anthropic", reason="the anthropic backend needs the anthropic package")
from econash_plugins.backends.anthropic import AnthropicBackend, UnsendableRequest, to_messages_api  # noqa: E402

SECRET = "sk-ant-test-SECRET-0123456789abcdef"


@pytest.fixture(autouse=True)
def no_anthropic_env(monkeypatch):
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "ANTHROPIC_PROFILE",
                 "ANTHROPIC_CUSTOM_HEADERS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def server():
    with MessagesServer(api_key=SECRET) as srv:
        yield srv


@pytest.fixture(autouse=True)
def fresh(request):
    if "server" in request.fixturenames:
        request.getfixturevalue("server").reset()


def ask(*messages: tuple[str, str], **sampling) -> LLMRequest:
    messages = messages or (("system", "be brief"), ("user", "what is two plus two"))
    return LLMRequest(messages=[Message(role=r, content=c) for r, c in messages], sampling=SamplingParams(**sampling))


def backend_for(server: MessagesServer, **options) -> AnthropicBackend:
    options.setdefault("api_key", SECRET)
    return AnthropicBackend(AnthropicBackend.Options(**options), model="test-model", base_url=server.url)


def call(backend: AnthropicBackend, request: LLMRequest | None = None):
    """One generate call in its own event loop; returns the result or the exception raised."""

    async def go():
        try:
            return await backend.generate(request or ask())
        except Exception as exc:  # noqa: BLE001 - the tests inspect it
            return exc
        finally:
            await backend.aclose()

    return asyncio.run(go())


# ---------------------------------------------------------------- answers and the request


def test_text_usage_model_and_headers(server):
    result = call(backend_for(server))
    assert result.text == "what is two plus two" and result.finish_reason == "end_turn"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (7, 5)
    assert result.model == "test-model" and result.latency_s > 0
    headers = server.request_headers[0]
    # anthropic 0.40 sends the key as x-api-key, 2.17 as a bearer token; the API takes both.
    assert headers.get("x-api-key") == SECRET or headers.get("authorization") == f"Bearer {SECRET}"
    assert headers["anthropic-version"]


def test_system_messages_go_to_system_and_turns_alternate(server):
    request = ask(("system", "be brief"), ("user", "first"), ("user", "second"), ("system", "use digits"),
                  ("assistant", "ok"), ("assistant", "so"), ("user", "go"))
    result = call(backend_for(server), request)
    assert result.text == "go"
    sent = server.requests[0]
    assert sent["system"] == "be brief\n\nuse digits"
    assert sent["messages"] == [{"role": "user", "content": "first\n\nsecond"},
                                {"role": "assistant", "content": "ok\n\nso"}, {"role": "user", "content": "go"}]
    assert to_messages_api([Message(role="user", content="x")]) == (None, [{"role": "user", "content": "x"}])


def test_a_conversation_without_a_leading_user_turn_is_fatal(server):
    backend = backend_for(server)
    with pytest.raises(UnsendableRequest):
        to_messages_api([Message(role="system", content="s")])
    exc = call(backend, ask(("system", "s"), ("assistant", "a"), ("user", "u")))
    assert isinstance(exc, UnsendableRequest) and server.request_count == 0
    assert backend.classify_error(exc) == (ErrorKind.FATAL, None)
    assert "start the prompt with a user message" in backend.describe_error(exc)


def test_temperature_or_top_p_never_both_max_tokens_and_stop_sequences(server):
    backend = backend_for(server)
    call(backend, ask(temperature=0.3, top_p=1.0, max_tokens=17, stop=["END"], seed=4))
    call(backend, ask(temperature=0.3, top_p=0.8))
    with_temperature, with_top_p = server.requests
    assert with_temperature["temperature"] == 0.3 and "top_p" not in with_temperature
    assert with_temperature["max_tokens"] == 17 and with_temperature["stop_sequences"] == ["END"]
    assert "seed" not in with_temperature and with_temperature["model"] == "test-model"
    assert with_top_p["top_p"] == 0.8 and "temperature" not in with_top_p


def test_stop_sequences_and_max_tokens_shape_the_answer(server):
    backend = backend_for(server)
    # "\n\n" alone is refused by the API: it is applied to the text instead of being sent
    stopped = call(backend, ask(("user", "one two\n\nthree END four"), stop=["\n\n", "END"]))
    assert stopped.text == "one two" and stopped.finish_reason == "stop_sequence"
    assert server.requests[0]["stop_sequences"] == ["END"]
    truncated = call(backend, ask(("user", "a b c d e f"), max_tokens=3))
    assert truncated.text == "a b c" and truncated.finish_reason == "max_tokens"
    assert truncated.usage.completion_tokens == 3


def test_engine_clips_temperature_to_one_drops_the_seed_and_retries(server):
    server.add_faults("overloaded", MessageFault("rate_limit", retry_after=0.01), None)
    backend = backend_for(server)
    run = RunContext(backend=backend, task=None, engine=Engine(retry=RetryConfig(initial_wait_s=0.01, jitter_s=0)))

    async def go():
        try:
            return await run.episode().call([{"role": "user", "content": "hi"}], SamplingParams(temperature=1.7, seed=3))
        finally:
            await backend.aclose()

    result = asyncio.run(go())
    assert result.text == "hi" and server.request_count == 3 and run.engine.stats.retries == 2
    assert server.requests[-1]["temperature"] == 1.0 and "seed" not in server.requests[-1]


def test_send_sampling_false_sends_neither_and_pins_the_capabilities():
    with MessagesServer(sampling_deprecated=True) as srv:
        refusing = AnthropicBackend(AnthropicBackend.Options(), model="m", base_url=srv.url)
        exc = call(refusing, ask(temperature=0.5))
        assert isinstance(exc, anthropic.BadRequestError)
        assert refusing.classify_error(exc) == (ErrorKind.FATAL, None)
        assert "backend_options.send_sampling=false" in refusing.describe_error(exc)
        quiet = AnthropicBackend(AnthropicBackend.Options(send_sampling=False), model="m", base_url=srv.url)
        assert quiet.capabilities.temperature_range == (1.0, 1.0) and not quiet.capabilities.supports_top_p
        assert call(quiet, ask(temperature=0.5, top_p=0.5)).text == "what is two plus two"
        assert "temperature" not in srv.requests[-1] and "top_p" not in srv.requests[-1]


def test_an_out_of_range_temperature_is_not_blamed_on_the_model(server):
    backend = backend_for(server)
    exc = call(backend, ask(temperature=1.5))  # generate() does not clip: the engine does
    message = backend.describe_error(exc)
    assert "status 400" in message and "send_sampling" not in message


# ---------------------------------------------------------------- errors


def test_401_is_fatal_and_names_the_key_variable(server):
    backend = AnthropicBackend(AnthropicBackend.Options(api_key="wrong-key"), model="m", base_url=server.url)
    exc = call(backend)
    assert isinstance(exc, anthropic.AuthenticationError)
    assert backend.classify_error(exc) == (ErrorKind.FATAL, None)
    assert backend.describe_error(exc) == (f"the server at {server.url} rejected the API key (401); set "
                                           "ANTHROPIC_API_KEY to a valid key.")


def test_429_is_rate_limit_with_the_retry_after_value(server):
    server.add_faults(MessageFault("rate_limit", retry_after=2.5), MessageFault("rate_limit", retry_after=None))
    backend = backend_for(server)
    first, second = call(backend), call(backend)
    assert isinstance(first, anthropic.RateLimitError)
    assert backend.classify_error(first) == (ErrorKind.RATE_LIMIT, 2.5)
    assert backend.classify_error(second) == (ErrorKind.RATE_LIMIT, None)
    assert "(429)" in backend.describe_error(first)


@pytest.mark.parametrize("fault,status,words", [("server_error", 500, "status 500"), ("overloaded", 529, "overloaded (529)"),
                                                (MessageFault("server_error", status=503), 503, "status 503")])
def test_5xx_and_overloaded_are_transient(server, fault, status, words):
    server.add_faults(fault)
    backend = backend_for(server)
    exc = call(backend)
    assert isinstance(exc, anthropic.InternalServerError) and exc.status_code == status
    assert backend.classify_error(exc) == (ErrorKind.TRANSIENT, None)
    assert words in backend.describe_error(exc)
    assert server.request_count == 1  # the SDK's own retries are off


def test_reset_timeout_malformed_and_empty_are_transient(server):
    server.add_faults("reset", MessageFault("timeout", delay_s=2.0), "malformed", "empty")
    backend = backend_for(server, timeout_s=0.3)
    reset, timeout, malformed, empty = (call(backend) for _ in range(4))
    assert type(reset) is anthropic.APIConnectionError
    assert isinstance(timeout, anthropic.APITimeoutError)
    assert isinstance(malformed, json.JSONDecodeError)
    assert isinstance(empty, EmptyCompletionError)
    for exc in (reset, timeout, malformed, empty):
        assert backend.classify_error(exc) == (ErrorKind.TRANSIENT, None)
    assert backend.describe_error(reset) == f"could not connect to {server.url}; is the server running?"
    assert "timed out after 0.3 s" in backend.describe_error(timeout)
    assert "not valid Messages API JSON" in backend.describe_error(malformed)
    assert "returned no text" in backend.describe_error(empty)


@pytest.mark.parametrize("fault,words", [
    ("request_too_large", "too large for the server"),
    ("prompt_too_long", "prompt is too long for model 'test-model'"),
    ("not_found", "does not know the model 'test-model' (404); pass --model"),
    ("permission", "(403)"),
    ("bad_request", "status 400"),
])
def test_client_errors_are_fatal_and_say_what_to_fix(server, fault, words):
    server.add_faults(fault)
    backend = backend_for(server)
    exc = call(backend)
    assert backend.classify_error(exc) == (ErrorKind.FATAL, None)
    assert words in backend.describe_error(exc)


def test_fatal_errors_stop_the_engine_with_one_sentence(server):
    server.add_faults("prompt_too_long")
    backend = backend_for(server)
    run = RunContext(backend=backend, task=None)

    async def go():
        try:
            return await run.episode().call([{"role": "user", "content": "hi"}])
        finally:
            await backend.aclose()

    with pytest.raises(BackendError, match="^The prompt is too long") as info:
        asyncio.run(go())
    assert server.request_count == 1 and str(info.value).endswith(".")


def test_missing_key_and_environment(monkeypatch, server):
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY") as info:
        AnthropicBackend(AnthropicBackend.Options())
    assert str(info.value).count(". ") == 0
    monkeypatch.setenv("ANTHROPIC_API_KEY", "from-env")
    backend = AnthropicBackend(AnthropicBackend.Options())
    assert backend.api_key == "from-env" and backend.model == "claude-sonnet-4-6"
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url + "/v1/")
    assert AnthropicBackend(AnthropicBackend.Options()).cache_identity() == {"base_url": server.url}


def test_describe_error_never_contains_the_api_key(server):
    faults = ["auth", "rate_limit", "overloaded", "server_error", "bad_request", "not_found", "prompt_too_long",
              "malformed", "reset", "empty", MessageFault("bad_request", message=f"key {SECRET} is not allowed")]
    server.add_faults(*faults)
    backend = backend_for(server)
    for _ in faults:
        message = backend.describe_error(call(backend))
        assert message and SECRET not in message
    assert SECRET not in backend.describe_error(RuntimeError(f"boom {SECRET}"))
    assert SECRET not in repr(backend)


def test_cache_identity_capabilities_and_registration(server):
    import econash

    assert backend_for(server).cache_identity() == {"base_url": server.url}
    hosted = AnthropicBackend(AnthropicBackend.Options(api_key="k"))
    assert hosted.cache_identity() == {"base_url": "https://api.anthropic.com"}
    caps = AnthropicBackend(AnthropicBackend.Options(api_key="k", max_connections=5)).capabilities
    assert caps.temperature_range == (0.0, 1.0) and caps.supports_top_p and not caps.supports_seed
    assert caps.max_concurrency == 5
    registries = econash.registries()
    assert registries.backends.get("anthropic").plugin == "anthropic"
    with pytest.raises(ConfigError, match="send_sampling"):
        registries.backends.create("anthropic", {"api_key": "k", "send_sampling": "maybe"}, model=None, base_url=None)


# ---------------------------------------------------------------- the server itself


def post(server: MessagesServer, body, headers=None) -> tuple[int, dict]:
    data = json.dumps(body).encode()
    base = {"content-type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": SECRET}
    request = urllib.request.Request(server.url + "/v1/messages", data=data, headers={**base, **(headers or {})})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_messages_server_answers_in_the_api_shape_and_validates(server):
    good = {"model": "m", "max_tokens": 10, "system": [{"type": "text", "text": "s"}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}]}
    status, body = post(server, good)
    assert status == 200
    assert body == {"id": body["id"], "type": "message", "role": "assistant", "model": "m",
                    "content": [{"type": "text", "text": "hello there"}], "stop_reason": "end_turn",
                    "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 2}}
    bad = {
        "no model": {k: v for k, v in good.items() if k != "model"},
        "no max_tokens": {k: v for k, v in good.items() if k != "max_tokens"},
        "empty messages": {**good, "messages": []},
        "assistant first": {**good, "messages": [{"role": "assistant", "content": "x"}]},
        "two user turns": {**good, "messages": [{"role": "user", "content": "x"}, {"role": "user", "content": "y"}]},
        "temperature 1.5": {**good, "temperature": 1.5},
        "both samplers": {**good, "temperature": 0.5, "top_p": 0.5},
        "unknown field": {**good, "seed": 1},
        "blank stop": {**good, "stop_sequences": ["\n\n"]},
        "bad system": {**good, "system": 5},
    }
    for name, body in bad.items():
        status, answer = post(server, body)
        assert (status, answer["type"], answer["error"]["type"]) == (400, "error", "invalid_request_error"), name
    assert post(server, good, {"anthropic-version": ""})[0] == 400
    status, answer = post(server, good, {"x-api-key": "wrong"})
    assert (status, answer["error"]["type"]) == (401, "authentication_error")
    assert server.request_count == 1 + len(bad) + 2
