"""The `together` backend against the loopback FaultServer, and the `openai` and `together` embedders
against a small loopback embeddings server (no network)."""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import json
import threading

import pytest

import econash
from econash.backend import EmptyCompletionError, ErrorKind
from econash.engine.context import RunContext
from econash.engine.engine import Engine
from econash.errors import BackendError, ConfigError
from econash.testing.openai_server import Fault, FaultServer
from econash.types import LLMRequest, Message, RetryConfig, SamplingParams

together = pytest.importorskip("together", reason="the together backend needs the together package")
from econash.sdk_backend import host_root  # noqa: E402
from econash_plugins.backends.together import TogetherBackend  # noqa: E402
from econash_plugins.embedders.openai import OpenAIEmbedder  # noqa: E402
from econash_plugins.embedders.together import TogetherEmbedder  # noqa: E402

SECRET = "tg-test-SECRET-0123456789abcdef"


@pytest.fixture(autouse=True)
def no_provider_env(monkeypatch):
    for name in ("TOGETHER_API_KEY", "TOGETHER_BASE_URL", "TOGETHER_PROJECT_ID", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def server():
    with FaultServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def fresh(request):
    if "server" in request.fixturenames:
        request.getfixturevalue("server").reset()


def ask(text: str = "what is two plus two", **sampling) -> LLMRequest:
    return LLMRequest(messages=[Message(role="system", content="be brief"), Message(role="user", content=text)],
                      sampling=SamplingParams(**sampling))


def backend_for(server: FaultServer, **options) -> TogetherBackend:
    options.setdefault("api_key", SECRET)
    return TogetherBackend(TogetherBackend.Options(**options), model="test-model", base_url=server.url)


def call(backend: TogetherBackend, request: LLMRequest | None = None):
    """One generate call in its own event loop; returns the result or the exception raised."""

    async def go():
        try:
            return await backend.generate(request or ask())
        except Exception as exc:  # noqa: BLE001 - the tests inspect it
            return exc
        finally:
            await backend.aclose()

    return asyncio.run(go())


# ---------------------------------------------------------------- the backend


def test_text_usage_model_and_key_come_through_the_sdk(server):
    result = call(backend_for(server))
    assert result.text == "what is two plus two"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (7, 5)
    assert result.model == "fault-server-model" and result.finish_reason == "stop"
    assert server.request_headers[0]["authorization"] == f"Bearer {SECRET}"
    assert server.request_headers[0]["user-agent"].startswith("AsyncTogether/")


def test_base_url_is_the_host_root_and_a_trailing_v1_is_dropped(server):
    assert host_root("http://h:1/v1/") == "http://h:1" and host_root("http://h:1/") == "http://h:1"
    backend = TogetherBackend(TogetherBackend.Options(api_key=SECRET), model="m", base_url=server.base_url + "/")
    assert backend.where_url == server.url
    assert call(backend).text == "what is two plus two"  # the SDK's /v1 was not doubled


def test_sampling_parameters_are_sent(server):
    call(backend_for(server), ask("x", temperature=1.7, top_p=0.9, max_tokens=17, seed=5, stop=["\n\n", "END"]))
    call(backend_for(server), ask("y"))
    sent, default = server.requests
    assert sent["model"] == "test-model"
    assert sent["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "x"}]
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"], sent["seed"]) == (1.7, 0.9, 17, 5)
    assert sent["stop"] == ["\n\n", "END"]
    assert "seed" not in default and "stop" not in default


def test_engine_clips_temperature_and_retries_classified_errors(server):
    server.add_faults(Fault("rate_limit", retry_after=0.01), "server_error", None)
    backend = backend_for(server)
    run = RunContext(backend=backend, task=None, engine=Engine(retry=RetryConfig(initial_wait_s=0.01, jitter_s=0)))

    async def go():
        try:
            return await run.episode().call([{"role": "user", "content": "hi"}], SamplingParams(temperature=3.5, seed=9))
        finally:
            await backend.aclose()

    result = asyncio.run(go())
    assert result.text == "hi" and server.request_count == 3
    assert server.requests[-1]["temperature"] == 2.0 and server.requests[-1]["seed"] == 9
    assert run.engine.stats.retries == 2


def test_401_is_fatal_and_names_the_key_variable(server):
    server.add_faults("auth")
    backend = backend_for(server)
    exc = call(backend)
    assert isinstance(exc, together.AuthenticationError)
    assert backend.classify_error(exc) == (ErrorKind.FATAL, None)
    assert backend.describe_error(exc) == (f"the server at {server.url} rejected the API key (401); set "
                                           "TOGETHER_API_KEY to a valid key.")


def test_429_is_rate_limit_with_the_retry_after_value(server):
    server.add_faults(Fault("rate_limit", retry_after=1.5), Fault("rate_limit", retry_after=None))
    backend = backend_for(server)
    first, second = call(backend), call(backend)
    assert isinstance(first, together.RateLimitError)
    assert backend.classify_error(first) == (ErrorKind.RATE_LIMIT, 1.5)
    assert backend.classify_error(second) == (ErrorKind.RATE_LIMIT, None)
    assert "(429)" in backend.describe_error(first)


@pytest.mark.parametrize("fault,status", [("server_error", 500), ("unavailable", 503)])
def test_5xx_is_transient_and_names_the_status(server, fault, status):
    server.add_faults(fault)
    backend = backend_for(server)
    exc = call(backend)
    assert isinstance(exc, together.InternalServerError) and exc.status_code == status
    assert backend.classify_error(exc) == (ErrorKind.TRANSIENT, None)
    assert f"status {status}" in backend.describe_error(exc)
    assert server.request_count == 1  # the SDK's own retries are off


def test_reset_timeout_and_malformed_are_transient(server):
    server.add_faults("reset", Fault("timeout", delay_s=2.0), "malformed")
    backend = backend_for(server, timeout_s=0.3)
    reset, timeout, malformed = call(backend), call(backend), call(backend)
    assert type(reset) is together.APIConnectionError
    assert isinstance(timeout, together.APITimeoutError)
    assert isinstance(malformed, json.JSONDecodeError)  # the SDK lets the decoder's error through
    for exc in (reset, timeout, malformed):
        assert backend.classify_error(exc) == (ErrorKind.TRANSIENT, None)
    assert backend.describe_error(reset) == f"could not connect to {server.url}; is the server running?"
    assert "timed out after 0.3 s" in backend.describe_error(timeout)
    assert "not valid chat completions JSON" in backend.describe_error(malformed)


def test_empty_completion_raises_and_is_transient(server):
    server.add_faults("empty", Fault("empty", finish_reason="length"))
    backend = backend_for(server)
    exc = call(backend)
    assert isinstance(exc, EmptyCompletionError)
    assert backend.classify_error(exc) == (ErrorKind.TRANSIENT, None)
    truncated = call(backend)
    assert truncated.text == "" and truncated.finish_reason == "length"


def test_unknown_model_and_context_length_are_fatal_with_the_fix(server):
    server.add_faults("not_found", "context_length")
    backend = backend_for(server)
    missing, too_long = call(backend), call(backend)
    assert backend.classify_error(missing) == (ErrorKind.FATAL, None)
    assert backend.classify_error(too_long) == (ErrorKind.FATAL, None)
    assert "'test-model'" in backend.describe_error(missing) and "--model" in backend.describe_error(missing)
    assert "context length of model 'test-model'" in backend.describe_error(too_long)


def test_missing_key_is_one_sentence_naming_the_variable(monkeypatch):
    with pytest.raises(ConfigError, match="TOGETHER_API_KEY") as info:
        TogetherBackend(TogetherBackend.Options())
    assert str(info.value).count(". ") == 0
    monkeypatch.setenv("TOGETHER_API_KEY", "from-env")
    assert TogetherBackend(TogetherBackend.Options()).api_key == "from-env"
    monkeypatch.setenv("TOGETHER_BASE_URL", "http://127.0.0.1:9/v1")
    assert TogetherBackend(TogetherBackend.Options()).cache_identity() == {"base_url": "http://127.0.0.1:9"}


def test_no_key_with_a_base_url_uses_a_placeholder(server):
    backend = TogetherBackend(TogetherBackend.Options(), base_url=server.url)
    assert backend.model == "meta-llama/Llama-3.3-70B-Instruct-Turbo"
    call(backend)
    assert server.request_headers[0]["authorization"] == "Bearer not-needed"


def test_describe_error_never_contains_the_api_key(server):
    faults = ["auth", "rate_limit", "server_error", "bad_request", "not_found", "malformed", "reset", "empty",
              Fault("bad_request", message=f"key {SECRET} is not allowed")]
    server.add_faults(*faults)
    backend = backend_for(server)
    for _ in faults:
        message = backend.describe_error(call(backend))
        assert message and SECRET not in message
    assert SECRET not in backend.describe_error(RuntimeError(f"boom {SECRET}"))
    assert SECRET not in repr(backend)


def test_cache_identity_and_capabilities(server):
    assert backend_for(server).cache_identity() == {"base_url": server.url}
    hosted = TogetherBackend(TogetherBackend.Options(api_key="k"))
    assert hosted.cache_identity() == {"base_url": "https://api.together.ai"}
    caps = TogetherBackend(TogetherBackend.Options(api_key="k", max_connections=7)).capabilities
    assert caps.max_concurrency == 7 and caps.supports_seed and caps.supports_top_p
    assert caps.temperature_range == (0.0, 2.0)


def test_registered_backends_and_embedders_with_checked_options():
    registries = econash.registries()
    assert {"together", "anthropic"} <= set(registries.backends.names())
    assert {"openai", "together"} <= set(registries.embedders.names())
    assert registries.backends.get("together").plugin == "together"
    assert registries.embedders.get("openai").plugin == "openai_embedder"
    with pytest.raises(ConfigError, match="max_connections"):
        registries.backends.create("together", {"api_key": "k", "max_connections": 0}, model=None, base_url=None)
    with pytest.raises(ConfigError, match="batch_size"):
        registries.embedders.create("together", {"api_key": "k", "batch_size": 0})
    embedder = registries.embedders.create("openai", {"api_key": "k", "dim": 8})
    assert isinstance(embedder, OpenAIEmbedder) and embedder.dim == 8


# ---------------------------------------------------------------- the embedders


def vector_of(text: str, dim: int = 8) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [b / 255 for b in digest[:dim]]


class EmbeddingsServer:
    """POST /v1/embeddings in the OpenAI shape, answering in reverse index order; ``faults`` holds
    statuses (int), "reset" or "malformed" for the next requests."""

    def __init__(self, dim: int = 8) -> None:
        self.dim, self.requests, self.headers, self.faults = dim, [], [], []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != "/v1/embeddings":
                    return self.reply(404, b'{"error": {"message": "no such route", "type": "invalid_request_error"}}')
                owner.requests.append(body)
                owner.headers.append({k.lower(): v for k, v in self.headers.items()})
                fault = owner.faults.pop(0) if owner.faults else None
                if fault == "reset":
                    self.close_connection = True
                    return self.connection.close()
                if fault == "malformed":
                    return self.reply(200, b'{"data": [{"emb')
                if isinstance(fault, int):
                    error = {"error": {"message": f"failure {SECRET}", "type": "server_error", "code": None}}
                    return self.reply(fault, json.dumps(error).encode(), {"retry-after": "0"})
                texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
                data = [{"object": "embedding", "index": i, "embedding": vector_of(t, owner.dim)}
                        for i, t in enumerate(texts)][::-1]
                usage = {"prompt_tokens": len(texts), "total_tokens": len(texts)}
                self.reply(200, json.dumps({"object": "list", "data": data, "model": body["model"],
                                            "usage": usage}).encode())

            def reply(self, status, payload, headers=None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def embeddings():
    with EmbeddingsServer() as srv:
        yield srv


def embedder_for(cls, server: EmbeddingsServer, **options):
    """openai clients take the URL with /v1; together clients take the host root."""
    options.setdefault("api_key", SECRET)
    return cls(cls.Options(base_url=server.url + ("/v1" if cls is OpenAIEmbedder else ""), **options))


def test_openai_embedder_batches_orders_and_sets_dim(embeddings):
    embedder = OpenAIEmbedder(OpenAIEmbedder.Options(base_url=embeddings.url + "/v1", api_key=SECRET,
                                                     batch_size=2))
    assert embedder.dim == 0
    texts = [f"text number {i}" for i in range(5)]
    assert embedder.embed(texts) == [vector_of(t) for t in texts]
    assert embedder.dim == 8
    assert [r["input"] for r in embeddings.requests] == [texts[0:2], texts[2:4], texts[4:5]]
    assert embeddings.requests[0]["model"] == "text-embedding-3-small"
    assert embeddings.requests[0]["encoding_format"] == "float"
    assert embeddings.headers[0]["authorization"] == f"Bearer {SECRET}"
    assert embedder.embed([]) == []
    embedder.close()


def test_together_embedder_uses_the_host_root_and_its_default_model(embeddings):
    embedder = TogetherEmbedder(TogetherEmbedder.Options(base_url=embeddings.url, api_key=SECRET))
    assert embedder.embed(["a", "b"]) == [vector_of("a"), vector_of("b")]
    assert embeddings.requests[0]["model"] == "BAAI/bge-base-en-v1.5"
    assert "encoding_format" not in embeddings.requests[0]
    assert embeddings.headers[0]["user-agent"].startswith("Together/")
    assert TogetherEmbedder(TogetherEmbedder.Options(base_url=embeddings.url + "/v1")).where_url == embeddings.url


@pytest.mark.parametrize("cls", [OpenAIEmbedder, TogetherEmbedder])
def test_embedders_retry_transient_errors_a_bounded_number_of_times(embeddings, cls):
    embedder = embedder_for(cls, embeddings)
    embedder.backoff_s = 0.01
    embeddings.faults += [500, "reset", "malformed"]  # three failures: one more than the attempts allow
    with pytest.raises(BackendError, match="not a valid embeddings response after 3 attempts") as info:
        embedder.embed(["x"])
    assert SECRET not in str(info.value) and len(embeddings.requests) == 3
    embeddings.faults += [429, 503]
    assert embedder.embed(["x"]) == [vector_of("x")]  # recovered on the third attempt
    assert len(embeddings.requests) == 6


@pytest.mark.parametrize("cls,env", [(OpenAIEmbedder, "OPENAI_API_KEY"), (TogetherEmbedder, "TOGETHER_API_KEY")])
def test_embedders_do_not_retry_a_rejected_key_and_name_the_variable(embeddings, cls, env, monkeypatch):
    embeddings.faults += [401, 400]
    embedder = embedder_for(cls, embeddings)
    with pytest.raises(BackendError, match=f"set {env} to a valid key") as info:
        embedder.embed(["x"])
    assert SECRET not in str(info.value) and len(embeddings.requests) == 1
    with pytest.raises(BackendError, match=r"status 400 \(failure \*\*\*\)"):
        embedder.embed(["x"])  # the server's message is shown, without the key
    assert len(embeddings.requests) == 2
    with pytest.raises(ConfigError, match=env):
        cls(cls.Options())
    monkeypatch.setenv(env, "from-env")
    assert cls(cls.Options())._api_key == "from-env"


def test_embedder_dim_option_is_checked_against_the_vectors(embeddings):
    assert embedder_for(OpenAIEmbedder, embeddings, dim=8).embed(["a"]) == [vector_of("a")]
    wrong = embedder_for(OpenAIEmbedder, embeddings, dim=16)
    assert wrong.dim == 16
    with pytest.raises(BackendError, match="returned vectors of length 8, not 16"):
        wrong.embed(["a"])
