"""The `openai` backend: OpenAI chat completions, or any OpenAI-compatible server via --base-url.

The SDK's own retries are off: the econash engine retries, guided by ``classify_error``. One
``AsyncOpenAI`` client is made per event loop, on first use inside it, because ``asyncio.run`` may
be called more than once in a process and a client's connections belong to the loop that made them.
``aclose()`` closes it; a client still open when ``asyncio.run`` ends its loop is closed then.

The module also registers the `openai` embedder (the embeddings endpoint, synchronous client).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import os
import threading
import time
import weakref
from typing import Any, AsyncGenerator, Callable, Mapping

from pydantic import Field

from econash.backend import Backend, EmptyCompletionError, ErrorKind
from econash.embedder import Embedder
from econash.errors import BackendError, ConfigError, missing_dependency
from econash.hookspecs import hookimpl
from econash.types import Capabilities, LLMRequest, LLMResult, StrictModel, Usage

DEFAULT_MODEL = "gpt-4o-mini"
OPENAI_BASE_URL = "https://api.openai.com/v1"
#: sent as the key to servers that need none (a local server given by --base-url)
PLACEHOLDER_KEY = "not-needed"


def _import_openai() -> Any:
    try:
        import openai
    except ImportError:
        raise missing_dependency("The openai backend", "openai", "openai") from None
    return openai


async def _close_on_loop_shutdown(client: Any) -> AsyncGenerator[None, None]:
    """Started once, it waits; closing it (aclose, or the loop's shutdown_asyncgens) closes the client."""
    try:
        yield
    finally:
        await client.close()


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date), or None."""
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            if name != "retry-after":
                continue
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                continue
            if when is None:
                continue
            seconds = when.timestamp() - time.time()
        if math.isfinite(seconds):
            return max(0.0, seconds)
    return None


class OpenAIBackend(Backend):
    """OpenAI chat completions, or any OpenAI-compatible server via --base-url (vLLM, Ollama, LM Studio, llama.cpp).

    The API key comes from ``backend_options.api_key``, else ``OPENAI_API_KEY``; a server given by
    --base-url (or ``OPENAI_BASE_URL``) may need none. ``max_tokens`` is sent as ``max_tokens``,
    which OpenAI-compatible servers understand.
    """

    name = "openai"

    class Options(StrictModel):
        api_key: str | None = None
        max_connections: int = Field(32, ge=1)
        timeout_s: float = Field(120.0, gt=0)
        organization: str | None = None

    def __init__(self, model: str | None = None, base_url: str | None = None, *, api_key: str | None = None,
                 max_connections: int = 32, timeout_s: float = 120.0, organization: str | None = None) -> None:
        self._openai = _import_openai()
        if max_connections < 1:
            raise ConfigError("The openai backend's max_connections must be at least 1; pass -B backend_options.max_connections=N.")
        if not timeout_s > 0:
            raise ConfigError("The openai backend's timeout_s must be positive; pass -B backend_options.timeout_s=SECONDS.")
        self.model = model or DEFAULT_MODEL
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        self.base_url = base_url.rstrip("/") if base_url else None
        key = api_key or os.environ.get("OPENAI_API_KEY") or None
        if key is None:
            if self.base_url is None:
                raise ConfigError(
                    "The openai backend needs an API key; set OPENAI_API_KEY or pass -B backend_options.api_key=...."
                )
            key = PLACEHOLDER_KEY
        self._api_key = key
        self.organization = organization
        self.max_connections = max_connections
        self.timeout_s = float(timeout_s)
        self.capabilities = Capabilities(
            temperature_range=(0.0, 2.0), supports_top_p=True, supports_seed=True,
            context_length=None, reports_usage=True, max_concurrency=max_connections,
        )
        self._client: Any = None
        self._client_loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._closer: AsyncGenerator[None, None] | None = None

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIBackend(model={self.model!r}, base_url={self.where_url!r})"

    @property
    def where_url(self) -> str:
        """The base URL calls go to."""
        return self.base_url or OPENAI_BASE_URL

    @property
    def _where(self) -> str:
        return self.base_url or "api.openai.com"

    # ------------------------------------------------------------ client

    async def _client_for_running_loop(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is not None and self._client_loop is not None and self._client_loop() is loop:
            return self._client
        # A client from an earlier loop cannot be used or closed from this one; it was closed when
        # that loop shut down (see _closer) or, failing that, is dropped.
        openai = self._openai
        limits = type(openai.DEFAULT_CONNECTION_LIMITS)(
            max_connections=self.max_connections, max_keepalive_connections=self.max_connections
        )
        client = openai.AsyncOpenAI(
            api_key=self._api_key,
            base_url=self.where_url,
            organization=self.organization,
            max_retries=0,
            timeout=self.timeout_s,
            http_client=openai.DefaultAsyncHttpxClient(limits=limits),
        )
        self._client, self._client_loop = client, weakref.ref(loop)
        # asyncio.run closes open async generators before it closes the loop: a started generator
        # whose cleanup closes the client releases its connections even without aclose().
        self._closer = _close_on_loop_shutdown(client)
        await self._closer.__anext__()
        return client

    async def aclose(self) -> None:
        closer, loop_ref = self._closer, self._client_loop
        self._client = self._client_loop = self._closer = None
        if closer is not None and loop_ref is not None and loop_ref() is asyncio.get_running_loop():
            await closer.aclose()

    # ------------------------------------------------------------ calls

    async def generate(self, request: LLMRequest) -> LLMResult:
        client = await self._client_for_running_loop()
        params = request.sampling
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [m.model_dump() for m in request.messages],
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
        }
        if params.seed is not None:
            kwargs["seed"] = params.seed
        if params.stop:
            kwargs["stop"] = list(params.stop)
        started = time.perf_counter()
        response = await client.chat.completions.create(**kwargs)
        latency = time.perf_counter() - started
        choices = getattr(response, "choices", None)
        if not choices:
            raise EmptyCompletionError(f"model '{self.model}' at {self.where_url} answered with no choices")
        choice = choices[0]
        text = choice.message.content if choice.message is not None else None
        finish_reason = choice.finish_reason
        if not text and finish_reason != "length":
            raise EmptyCompletionError(
                f"model '{self.model}' at {self.where_url} returned an empty completion (finish_reason {finish_reason!r})"
            )
        usage = getattr(response, "usage", None)
        return LLMResult(
            text=text or "",
            usage=Usage(
                prompt_tokens=(getattr(usage, "prompt_tokens", 0) or 0) if usage is not None else 0,
                completion_tokens=(getattr(usage, "completion_tokens", 0) or 0) if usage is not None else 0,
            ),
            model=getattr(response, "model", None) or self.model,
            finish_reason=finish_reason,
            latency_s=latency,
        )

    # ------------------------------------------------------------ errors

    def classify_error(self, exc: BaseException) -> tuple[ErrorKind, float | None]:
        openai = self._openai
        if isinstance(exc, EmptyCompletionError):
            return ErrorKind.TRANSIENT, None
        if isinstance(exc, openai.RateLimitError):
            if _error_code(exc) == "insufficient_quota":  # out of credit: waiting will not help
                return ErrorKind.FATAL, None
            return ErrorKind.RATE_LIMIT, parse_retry_after(_headers(exc))
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            if status >= 500 or status in (408, 409):
                return ErrorKind.TRANSIENT, parse_retry_after(_headers(exc))
            return ErrorKind.FATAL, None
        if isinstance(exc, (openai.APIConnectionError, openai.APIResponseValidationError)):
            return ErrorKind.TRANSIENT, None
        # A 200 whose body is not JSON: the SDK lets json.JSONDecodeError through unwrapped.
        if isinstance(exc, (json.JSONDecodeError, ConnectionError, TimeoutError, asyncio.TimeoutError)):
            return ErrorKind.TRANSIENT, None
        return ErrorKind.FATAL, None

    def describe_error(self, exc: BaseException) -> str:
        return self._scrub(self._describe(exc))

    def _describe(self, exc: BaseException) -> str:
        openai = self._openai
        where = self._where
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            message = _short(_error_message(exc))
            code = _error_code(exc) or ""
            if status == 401:
                return f"the server at {where} rejected the API key (401); set OPENAI_API_KEY to a valid key."
            if status == 403:
                return (f"the server at {where} refused access to model '{self.model}' (403); check that the API key "
                        "may use it, or pass --model with another model.")
            if status == 404:
                if code == "model_not_found" or "model" in message.lower():
                    return (f"the server at {where} does not know the model '{self.model}' (404); pass --model with "
                            "a model it serves.")
                return (f"the server at {where} has no chat completions endpoint (404); check --base-url "
                        "(it usually ends in /v1).")
            if _is_context_length(code, message):
                return (f"the prompt is too long for the context length of model '{self.model}' ({status}); lower "
                        "generation.max_tokens, shorten the prompt, or use a model with a longer context.")
            if isinstance(exc, openai.RateLimitError):
                if code == "insufficient_quota":
                    return (f"the account of the API key has no quota left at {where} (429 insufficient_quota); "
                            "check its plan and billing.")
                return (f"the server at {where} is rate limiting requests (429); lower --concurrency or "
                        "backend_options.max_connections, or wait before retrying.")
            if status >= 500:
                return f"the server at {where} failed with status {status} ({message}); this is usually temporary, retry later."
            return f"the server at {where} rejected the request with status {status} ({message}); check the model and generation settings."
        if isinstance(exc, openai.APITimeoutError):
            return (f"the request to {self.where_url} timed out after {self.timeout_s:g} s; raise "
                    "backend_options.timeout_s or check the server's load.")
        if isinstance(exc, openai.APIConnectionError):
            return f"could not connect to {self.where_url}; is the server running?"
        if isinstance(exc, (openai.APIResponseValidationError, json.JSONDecodeError)):
            return (f"the server at {where} sent a response that is not valid OpenAI JSON; check that --base-url "
                    "points to an OpenAI-compatible API.")
        if isinstance(exc, EmptyCompletionError):
            return (f"model '{self.model}' at {where} returned an empty completion; retry, or raise "
                    "generation.max_tokens if the model stops early.")
        if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
            return f"the request to {self.where_url} timed out; raise backend_options.timeout_s or check the server's load."
        return f"openai call to {where} failed ({type(exc).__name__}: {_short(str(exc))})."

    def _scrub(self, text: str) -> str:
        key = self._api_key
        if key and key != PLACEHOLDER_KEY and len(key) >= 4:
            text = text.replace(key, "***")
        return text

    def cache_identity(self) -> dict[str, Any]:
        return {"base_url": self.where_url}


def _headers(exc: BaseException) -> Mapping[str, str] | None:
    response = getattr(exc, "response", None)
    return getattr(response, "headers", None)


def _error_code(exc: BaseException) -> str | None:
    code = getattr(exc, "code", None)
    if code:
        return str(code)
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        if inner.get("code"):
            return str(inner["code"])
    return None


def _error_message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        if isinstance(inner.get("message"), str):
            return inner["message"]
    return getattr(exc, "message", None) or str(exc)


def _is_context_length(code: str, message: str) -> bool:
    lowered = message.lower()
    return (code == "context_length_exceeded" or "context length" in lowered or "context_length" in lowered
            or "maximum context" in lowered or "too many tokens" in lowered)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split()).rstrip(".")
    return text if len(text) <= limit else text[: limit - 3] + "..."


@hookimpl
def register_backends(register: Callable[..., None]) -> None:
    register("openai", OpenAIBackend)


# ---------------------------------------------------------------- embeddings


class OpenAIEmbedder(Embedder):
    """OpenAI embeddings endpoint, or any compatible server via base_url; default text-embedding-3-small.

    Synchronous, like every embedder: it is not called through the engine, so it retries
    transient errors itself (``attempts`` tries with a short backoff, or the server's Retry-After)
    with the SDK's own retries off. Texts go in batches of ``batch_size``. ``dim`` is known after the
    first call, or from the ``dim`` option, which the vectors are then checked against.
    """

    name = "openai"
    default_model = "text-embedding-3-small"
    key_env = "OPENAI_API_KEY"
    base_url_env = "OPENAI_BASE_URL"
    default_url = OPENAI_BASE_URL
    attempts = 3
    backoff_s = 0.5
    max_wait_s = 10.0

    class Options(StrictModel):
        model: str | None = None
        base_url: str | None = None
        api_key: str | None = None
        dim: int | None = Field(None, ge=1)
        batch_size: int = Field(64, ge=1)
        timeout_s: float = Field(60.0, gt=0)

    def __init__(self, model: str | None = None, base_url: str | None = None, *, api_key: str | None = None,
                 dim: int | None = None, batch_size: int = 64, timeout_s: float = 60.0) -> None:
        self._sdk = self._import_sdk()
        if batch_size < 1:
            raise ConfigError(f"The {self.name} embedder's batch_size must be at least 1; pass batch_size=N.")
        if dim is not None and dim < 1:
            raise ConfigError(f"The {self.name} embedder's dim must be at least 1; pass dim=N or leave it unset.")
        self.model = model or self.default_model
        base_url = base_url or os.environ.get(self.base_url_env) or None
        self.base_url = self._normalise_base_url(base_url) if base_url else None
        key = api_key or os.environ.get(self.key_env) or None
        if key is None:
            if self.base_url is None:
                raise ConfigError(f"The {self.name} embedder needs an API key; set {self.key_env} or pass the "
                                  "embedder option api_key=....")
            key = PLACEHOLDER_KEY
        self._api_key = key
        self.batch_size = batch_size
        self.timeout_s = float(timeout_s)
        self._declared_dim = dim
        self.dim = dim or 0
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.where_url!r})"

    @property
    def where_url(self) -> str:
        return self.base_url or self.default_url

    # -------------------------------------------------- hooks a compatible SDK overrides

    def _import_sdk(self) -> Any:
        return _import_openai()

    @staticmethod
    def _normalise_base_url(url: str) -> str:
        return url.rstrip("/")

    def _make_client(self) -> Any:
        return self._sdk.OpenAI(api_key=self._api_key, base_url=self.where_url, max_retries=0, timeout=self.timeout_s)

    def _request(self, client: Any, batch: list[str]) -> Any:
        # "float" explicitly: the SDK otherwise asks for base64, which some compatible servers lack.
        return client.embeddings.create(model=self.model, input=batch, encoding_format="float")

    # -------------------------------------------------- embedding

    def _client_once(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def embed(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            vectors.extend(self._embed_batch(list(texts[start:start + self.batch_size])))
        return vectors

    def _embed_batch(self, batch: list[str]) -> list[list[float]]:
        client = self._client_once()
        for attempt in range(1, self.attempts + 1):
            try:
                vectors = _vectors_of(self._request(client, batch), len(batch))
                break
            except Exception as exc:  # noqa: BLE001 - classified below; unknown errors are not retried
                retry, wait = self._retryable(exc)
                if not retry or attempt == self.attempts:
                    raise BackendError(self._scrub(self._describe(exc, attempt))) from exc
                time.sleep(min(self.max_wait_s, wait if wait is not None else self.backoff_s * 2 ** (attempt - 1)))
        size = len(vectors[0]) if vectors else self.dim
        if self.dim and any(len(v) != self.dim for v in vectors):
            raise BackendError(f"The {self.name} embedder's model '{self.model}' returned vectors of length {size}, "
                               f"not {self.dim}; check the embedder's model and its dim option.")
        self.dim = size
        return vectors

    def _retryable(self, exc: BaseException) -> tuple[bool, float | None]:
        sdk = self._sdk
        if isinstance(exc, sdk.RateLimitError):
            if _error_code(exc) == "insufficient_quota":
                return False, None
            return True, parse_retry_after(_headers(exc))
        if isinstance(exc, sdk.APIStatusError):
            return exc.status_code >= 500 or exc.status_code in (408, 409), parse_retry_after(_headers(exc))
        return isinstance(exc, (sdk.APIConnectionError, sdk.APIResponseValidationError, _MalformedEmbeddings,
                                json.JSONDecodeError, ConnectionError, TimeoutError)), None

    def _describe(self, exc: BaseException, attempts: int) -> str:
        sdk, where, who = self._sdk, self.where_url, f"The {self.name} embedder"
        tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
        if isinstance(exc, sdk.APIStatusError):
            status = exc.status_code
            if status == 401:
                return f"{who}'s API key was rejected by {where} (401); set {self.key_env} to a valid key."
            if status == 404:
                return (f"{who} found no model '{self.model}' or no embeddings endpoint at {where} (404); pass the "
                        "embedder option model=... with a model the server serves, or check base_url.")
            if isinstance(exc, sdk.RateLimitError):
                return f"{who} was rate limited by {where} (429) {tries}; wait, or embed fewer texts at once."
            if status >= 500:
                return f"{who} got status {status} from {where} {tries}; this is usually temporary, retry later."
            return (f"{who} request was rejected by {where} with status {status} "
                    f"({_short(_error_message(exc))}); check the embedder's model and options.")
        if isinstance(exc, sdk.APITimeoutError):
            return f"{who} timed out {tries} at {where}; raise the embedder option timeout_s."
        if isinstance(exc, sdk.APIConnectionError):
            return f"{who} could not connect to {where} {tries}; is the server running?"
        if isinstance(exc, (sdk.APIResponseValidationError, _MalformedEmbeddings, json.JSONDecodeError)):
            return f"{who} got a response from {where} that is not a valid embeddings response {tries}; check base_url."
        return f"{who} failed at {where} ({type(exc).__name__}: {_short(str(exc))})."

    def _scrub(self, text: str) -> str:
        key = self._api_key
        if key and key != PLACEHOLDER_KEY and len(key) >= 4:
            text = text.replace(key, "***")
        return text


class _MalformedEmbeddings(ValueError):
    """The response parsed, but does not hold one vector per input."""


def _vectors_of(response: Any, expected: int) -> list[list[float]]:
    data = getattr(response, "data", None)
    if not isinstance(data, list) or len(data) != expected:
        raise _MalformedEmbeddings(f"expected {expected} embeddings, got {len(data) if isinstance(data, list) else 0}")
    ordered = sorted(data, key=lambda item: getattr(item, "index", 0) or 0)
    vectors = [list(getattr(item, "embedding", None) or []) for item in ordered]
    if any(not v or not isinstance(v[0], (int, float)) for v in vectors):
        raise _MalformedEmbeddings("an embedding is empty or not a list of numbers")
    return [[float(x) for x in v] for v in vectors]


@hookimpl
def register_embedders(register: Callable[..., None]) -> None:
    register("openai", OpenAIEmbedder)
