"""The `together` backend and embedder: Together AI chat completions and embeddings through the together SDK.

``--base-url`` for together is the host root (``http://127.0.0.1:8000``), not ``.../v1``: the SDK
adds ``/v1`` itself. A trailing ``/v1`` is dropped, so either form works. Like the openai backend,
the SDK's own retries are off (the engine retries, guided by ``classify_error``) and one
``AsyncTogether`` client is made per event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import weakref
from typing import Any, AsyncGenerator, Callable

from pydantic import Field

from econash.backend import Backend, EmptyCompletionError, ErrorKind
from econash.errors import ConfigError, missing_dependency
from econash.hookspecs import hookimpl
from econash.types import Capabilities, LLMRequest, LLMResult, StrictModel, Usage
from econash_plugins.openai_backend import (
    PLACEHOLDER_KEY,
    OpenAIEmbedder,
    _error_code,
    _error_message,
    _headers,
    _is_context_length,
    _short,
    parse_retry_after,
)

DEFAULT_MODEL = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
DEFAULT_EMBEDDING_MODEL = "BAAI/bge-base-en-v1.5"
TOGETHER_URL = "https://api.together.ai"


def _import_together() -> Any:
    try:
        import together
    except ImportError:
        raise missing_dependency("The together backend", "together", "together") from None
    return together


def host_root(url: str) -> str:
    """``url`` without a trailing slash or ``/v1``: the together SDK appends ``/v1/...`` itself."""
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


async def _close_on_loop_shutdown(client: Any) -> AsyncGenerator[None, None]:
    """Started once, it waits; closing it (aclose, or the loop's shutdown_asyncgens) closes the client."""
    try:
        yield
    finally:
        await client.close()


class TogetherBackend(Backend):
    """Together AI chat completions (together SDK); --base-url is the host root, without /v1.

    The API key comes from ``backend_options.api_key``, else ``TOGETHER_API_KEY``; a server given by
    --base-url (or ``TOGETHER_BASE_URL``) may need none. temperature (0-2), top_p, max_tokens, seed
    and stop are sent as given.
    """

    name = "together"

    class Options(StrictModel):
        api_key: str | None = None
        max_connections: int = Field(32, ge=1)
        timeout_s: float = Field(120.0, gt=0)

    def __init__(self, model: str | None = None, base_url: str | None = None, *, api_key: str | None = None,
                 max_connections: int = 32, timeout_s: float = 120.0) -> None:
        self._together = _import_together()
        if max_connections < 1:
            raise ConfigError("The together backend's max_connections must be at least 1; pass -B backend_options.max_connections=N.")
        if not timeout_s > 0:
            raise ConfigError("The together backend's timeout_s must be positive; pass -B backend_options.timeout_s=SECONDS.")
        self.model = model or DEFAULT_MODEL
        base_url = base_url or os.environ.get("TOGETHER_BASE_URL") or None
        self.base_url = host_root(base_url) if base_url else None
        key = api_key or os.environ.get("TOGETHER_API_KEY") or None
        if key is None:
            if self.base_url is None:
                raise ConfigError(
                    "The together backend needs an API key; set TOGETHER_API_KEY or pass -B backend_options.api_key=...."
                )
            key = PLACEHOLDER_KEY
        self._api_key = key
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
        return f"TogetherBackend(model={self.model!r}, base_url={self.where_url!r})"

    @property
    def where_url(self) -> str:
        return self.base_url or TOGETHER_URL

    # ------------------------------------------------------------ client

    async def _client_for_running_loop(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is not None and self._client_loop is not None and self._client_loop() is loop:
            return self._client
        together = self._together
        limits = type(together.DEFAULT_CONNECTION_LIMITS)(
            max_connections=self.max_connections, max_keepalive_connections=self.max_connections
        )
        # base_url None keeps the SDK's own routing to Together's inference host.
        client = together.AsyncTogether(
            api_key=self._api_key,
            base_url=self.base_url,
            max_retries=0,
            timeout=self.timeout_s,
            http_client=together.DefaultAsyncHttpxClient(limits=limits),
        )
        self._client, self._client_loop = client, weakref.ref(loop)
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
        together = self._together
        if isinstance(exc, EmptyCompletionError):
            return ErrorKind.TRANSIENT, None
        if isinstance(exc, together.RateLimitError):
            return ErrorKind.RATE_LIMIT, parse_retry_after(_headers(exc))
        if isinstance(exc, together.APIStatusError):
            status = exc.status_code
            if status >= 500 or status in (408, 409):
                return ErrorKind.TRANSIENT, parse_retry_after(_headers(exc))
            return ErrorKind.FATAL, None
        if isinstance(exc, (together.APIConnectionError, together.APIResponseValidationError)):
            return ErrorKind.TRANSIENT, None
        # A 200 whose body is not JSON: the SDK lets json.JSONDecodeError through unwrapped.
        if isinstance(exc, (json.JSONDecodeError, ConnectionError, TimeoutError, asyncio.TimeoutError)):
            return ErrorKind.TRANSIENT, None
        return ErrorKind.FATAL, None

    def describe_error(self, exc: BaseException) -> str:
        return self._scrub(self._describe(exc))

    def _describe(self, exc: BaseException) -> str:
        together, where = self._together, self.where_url
        if isinstance(exc, together.APIStatusError):
            status = exc.status_code
            message = _short(_error_message(exc))
            code = _error_code(exc) or ""
            if status == 401:
                return f"the server at {where} rejected the API key (401); set TOGETHER_API_KEY to a valid key."
            if status == 402:
                return f"the account of the API key cannot pay for requests at {where} (402); check its credit and billing."
            if status == 403:
                return (f"the server at {where} refused access to model '{self.model}' (403); check that the API key "
                        "may use it, or pass --model with another model.")
            if status == 404:
                if "model" in code or "model" in message.lower():
                    return (f"the server at {where} does not know the model '{self.model}' (404); pass --model with "
                            "a model it serves.")
                return (f"the server at {where} has no chat completions endpoint (404); check --base-url "
                        "(for together it is the host root, without /v1).")
            if _is_context_length(code, message):
                return (f"the prompt is too long for the context length of model '{self.model}' ({status}); lower "
                        "generation.max_tokens, shorten the prompt, or use a model with a longer context.")
            if isinstance(exc, together.RateLimitError):
                return (f"the server at {where} is rate limiting requests (429); lower --concurrency or "
                        "backend_options.max_connections, or wait before retrying.")
            if status >= 500:
                return f"the server at {where} failed with status {status} ({message}); this is usually temporary, retry later."
            return f"the server at {where} rejected the request with status {status} ({message}); check the model and generation settings."
        if isinstance(exc, together.APITimeoutError):
            return (f"the request to {where} timed out after {self.timeout_s:g} s; raise "
                    "backend_options.timeout_s or check the server's load.")
        if isinstance(exc, together.APIConnectionError):
            return f"could not connect to {where}; is the server running?"
        if isinstance(exc, (together.APIResponseValidationError, json.JSONDecodeError)):
            return (f"the server at {where} sent a response that is not valid chat completions JSON; check that "
                    "--base-url points to a Together-compatible API.")
        if isinstance(exc, EmptyCompletionError):
            return (f"model '{self.model}' at {where} returned an empty completion; retry, or raise "
                    "generation.max_tokens if the model stops early.")
        if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
            return f"the request to {where} timed out; raise backend_options.timeout_s or check the server's load."
        return f"together call to {where} failed ({type(exc).__name__}: {_short(str(exc))})."

    def _scrub(self, text: str) -> str:
        key = self._api_key
        if key and key != PLACEHOLDER_KEY and len(key) >= 4:
            text = text.replace(key, "***")
        return text

    def cache_identity(self) -> dict[str, Any]:
        return {"base_url": self.where_url}


class TogetherEmbedder(OpenAIEmbedder):
    """Together AI embeddings (together SDK); default BAAI/bge-base-en-v1.5; base_url is the host root.

    Batching, retries and ``dim`` work as in the `openai` embedder; the key comes from the
    ``api_key`` option, else ``TOGETHER_API_KEY``.
    """

    name = "together"
    default_model = DEFAULT_EMBEDDING_MODEL
    key_env = "TOGETHER_API_KEY"
    base_url_env = "TOGETHER_BASE_URL"
    default_url = TOGETHER_URL

    def _import_sdk(self) -> Any:
        return _import_together()

    @staticmethod
    def _normalise_base_url(url: str) -> str:
        return host_root(url)

    def _make_client(self) -> Any:
        return self._sdk.Together(api_key=self._api_key, base_url=self.base_url, max_retries=0, timeout=self.timeout_s)

    def _request(self, client: Any, batch: list[str]) -> Any:
        return client.embeddings.create(model=self.model, input=batch)


@hookimpl
def register_backends(register: Callable[..., None]) -> None:
    register("together", TogetherBackend)


@hookimpl
def register_embedders(register: Callable[..., None]) -> None:
    register("together", TogetherEmbedder)
