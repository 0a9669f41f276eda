"""The public base for backends that call a hosted API through an async SDK built like openai's.

The openai, together and anthropic SDKs are generated alike (Stainless): the same exception classes
(``RateLimitError``, ``APIStatusError``, ``APIConnectionError``, ...), ``DefaultAsyncHttpxClient``
and ``max_retries``. ``SDKBackend`` holds what a backend on such an SDK needs besides its request:
key and base-URL resolution, one async client per running event loop, ``aclose``, retry
classification, the common error sentences and key scrubbing. A subclass names its SDK and
environment variables, builds the client (``make_client``) and implements ``generate``; it may add
error sentences (``describe_status``). ``docs/writing-plugins.md`` has a complete example.

The functions below read the SDKs' exceptions and headers; backends and embedders (which are
synchronous and retry themselves) share them. Every name here without an underscore is public
and kept stable for plugins.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import os
import time
import weakref
from typing import Any, AsyncGenerator, ClassVar, Mapping

from pydantic import Field

from econash.backend import Backend, EmptyCompletionError, ErrorKind
from econash.errors import ConfigError
from econash.redaction import secret_field
from econash.strict_model import StrictModel
from econash.urls import check_base_url

__all__ = [
    "PLACEHOLDER_KEY", "SDKBackend", "error_code", "error_headers", "error_message", "host_root",
    "is_context_length_error", "parse_retry_after", "resolve_key", "scrub_key", "short_text",
]

#: sent as the key to servers that need none (a local server given by --base-url)
PLACEHOLDER_KEY = "not-needed"


class SDKBackend(Backend):
    """A backend calling a hosted API through its async SDK, with the SDK's own retries off.

    A subclass sets the class attributes below and ``name``, implements ``import_sdk``,
    ``make_client`` and ``generate`` (which gets its client from ``client_for_running_loop``), and
    sets ``capabilities`` in ``__init__``. It may override ``normalise_base_url``,
    ``describe_status``, ``api_error_message``, ``out_of_quota`` and ``where``.
    """

    #: hooks a subclass sets: the key's and base URL's environment variables, the API's URL
    key_env: ClassVar[str]
    base_url_env: ClassVar[str]
    default_url: ClassVar[str]
    default_model: ClassVar[str]
    #: words for the error sentences: what a valid response is, what --base-url should point to
    response_kind: ClassVar[str] = "chat completions JSON"
    compatible_api: ClassVar[str] = "an OpenAI-compatible API"
    empty_answer: ClassVar[str] = "an empty completion"

    class Options(StrictModel):
        #: a subclass's Options names its key's environment variable: secret_field(env=key_env, ...)
        api_key: str | None = secret_field(description=(
            "The API key; without it the backend's environment variable is read. Never written to manifests, "
            "logs or the cache."))
        max_connections: int = Field(32, ge=1, description=(
            "Calls in flight to the server at once: the engine's connection limit and the client's connection "
            "pool alike. --max-connections sets it for a run (docs/engine.md)."))
        timeout_s: float = Field(120.0, gt=0, description=(
            "The client's timeout of one request, in seconds. A run sets it to generation.timeout_s, its one "
            "timeout (docs/engine.md), so give that instead."))

    def __init__(self, options: Options, model: str | None = None, base_url: str | None = None) -> None:
        """``options`` is the validated ``Options`` (the registry checks the user's against the model)."""
        #: the SDK module ``import_sdk`` returned: its client and exception classes
        self.sdk = self.import_sdk()
        self.model = model or self.default_model
        if not base_url and (from_env := os.environ.get(self.base_url_env)):
            try:  # --base-url was checked with the config; the environment's URL is checked here
                check_base_url(from_env)
            except ValueError as exc:
                raise ConfigError(f"{self.base_url_env}={from_env!r} {exc}; fix or unset it.") from None
            base_url = from_env
        self.base_url = self.normalise_base_url(base_url) if base_url else None
        self._api_key = resolve_key(options.api_key, self.key_env, self.base_url,
                                    f"The {self.name} backend needs an API key; set the environment variable "
                                    f"{self.key_env}.")
        self.max_connections = options.max_connections
        self.timeout_s = options.timeout_s
        self._client: Any = None
        self._client_loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._closer: AsyncGenerator[None, None] | None = None

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.where_url!r})"

    @property
    def api_key(self) -> str:
        """The key to give the SDK's client: the option, else ``key_env``'s value, else
        ``PLACEHOLDER_KEY`` for a server given by base URL. Never put it in a message or a log."""
        return self._api_key

    @property
    def where_url(self) -> str:
        """The base URL calls go to."""
        return self.base_url or self.default_url

    @property
    def where(self) -> str:
        """The server as error sentences name it (a subclass may shorten its default URL to a host)."""
        return self.where_url

    def cache_identity(self) -> dict[str, Any]:
        return {"base_url": self.where_url}

    # ------------------------------------------------------------ hooks

    def import_sdk(self) -> Any:
        """The SDK module, imported here so that ``import econash`` stays light; raise
        ``econash.errors.missing_dependency(...)`` when it is not installed."""
        raise NotImplementedError

    @staticmethod
    def normalise_base_url(url: str) -> str:
        """The base URL as the SDK wants it (``host_root`` for SDKs that append ``/v1`` themselves)."""
        return url.rstrip("/")

    def make_client(self, http_client: Any) -> Any:
        """The SDK's async client, built with ``api_key``, ``max_retries=0``, ``timeout_s`` and
        ``http_client`` (which carries the connection limit)."""
        raise NotImplementedError

    # ------------------------------------------------------------ client

    async def client_for_running_loop(self) -> Any:
        """The client of the running event loop, made on first use in it: ``asyncio.run`` may be
        called more than once in a process, and a client's connections belong to its loop."""
        loop = asyncio.get_running_loop()
        if self._client is not None and self._client_loop is not None and self._client_loop() is loop:
            return self._client
        # A client from an earlier loop cannot be used or closed from this one; it was closed when
        # that loop shut down (see _closer) or, failing that, is dropped.
        sdk = self.sdk
        limits = type(sdk.DEFAULT_CONNECTION_LIMITS)(
            max_connections=self.max_connections, max_keepalive_connections=self.max_connections
        )
        client = self.make_client(sdk.DefaultAsyncHttpxClient(limits=limits))
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

    # ------------------------------------------------------------ errors

    def classify_error(self, exc: BaseException) -> tuple[ErrorKind, float | None]:
        sdk = self.sdk
        if isinstance(exc, EmptyCompletionError):
            return ErrorKind.TRANSIENT, None
        if isinstance(exc, sdk.RateLimitError):
            if self.out_of_quota(exc):  # waiting will not help
                return ErrorKind.FATAL, None
            return ErrorKind.RATE_LIMIT, parse_retry_after(error_headers(exc))
        if isinstance(exc, sdk.APIStatusError):
            status = exc.status_code
            # Every 5xx (anthropic's 529 overloaded too) and 408/409 pass; other 4xx will not change on retry.
            if status >= 500 or status in (408, 409):
                return ErrorKind.TRANSIENT, parse_retry_after(error_headers(exc))
            return ErrorKind.FATAL, None
        if isinstance(exc, (sdk.APIConnectionError, sdk.APIResponseValidationError)):
            return ErrorKind.TRANSIENT, None
        # A 200 whose body is not JSON: the SDKs let json.JSONDecodeError through unwrapped.
        if isinstance(exc, (json.JSONDecodeError, ConnectionError, TimeoutError, asyncio.TimeoutError)):
            return ErrorKind.TRANSIENT, None
        return ErrorKind.FATAL, None

    def out_of_quota(self, exc: BaseException) -> bool:
        """Whether a 429 means the account has no credit left, not that it is going too fast: such
        an error is fatal, since waiting will not help."""
        return False

    def describe_error(self, exc: BaseException) -> str:
        """The common sentences below (with the subclass's ``describe_status``), the key scrubbed.
        A subclass that raises exceptions of its own overrides this and calls ``super()`` for the rest."""
        return scrub_key(self._describe(exc), self._api_key)

    def describe_status(self, exc: Any, status: int, message: str) -> str | None:
        """The subclass's own sentence for an API status error, or None for the common ones.

        Asked after 401 and 403 and before 429 and 5xx; ``message`` is ``api_error_message``'s,
        shortened."""
        return None

    def api_error_message(self, exc: BaseException) -> str:
        """The server's own message in an SDK exception (``error_message`` unless the SDK keeps it elsewhere)."""
        return error_message(exc)

    def _describe(self, exc: BaseException) -> str:
        sdk, where = self.sdk, self.where
        if isinstance(exc, sdk.APIStatusError):
            status = exc.status_code
            message = short_text(self.api_error_message(exc))
            if status == 401:
                return f"the server at {where} rejected the API key (401); set {self.key_env} to a valid key."
            if status == 403:
                return (f"the server at {where} refused access to model '{self.model}' (403); check that the API key "
                        "may use it, or pass --model with another model.")
            specific = self.describe_status(exc, status, message)
            if specific is not None:
                return specific
            if isinstance(exc, sdk.RateLimitError):
                return (f"the server at {where} is rate limiting requests (429); lower --concurrency or "
                        "backend_options.max_connections, or wait before retrying.")
            if status >= 500:
                return f"the server at {where} failed with status {status} ({message}); this is usually temporary, retry later."
            return f"the server at {where} rejected the request with status {status} ({message}); check the model and generation settings."
        if isinstance(exc, sdk.APITimeoutError):
            return (f"the request to {self.where_url} timed out after {self.timeout_s:g} s; raise "
                    "-B generation.timeout_s=SECONDS or check the server's load.")
        if isinstance(exc, sdk.APIConnectionError):
            return f"could not connect to {self.where_url}; is the server running?"
        if isinstance(exc, (sdk.APIResponseValidationError, json.JSONDecodeError)):
            return (f"the server at {where} sent a response that is not valid {self.response_kind}; check that "
                    f"--base-url points to {self.compatible_api}.")
        if isinstance(exc, EmptyCompletionError):
            return (f"model '{self.model}' at {where} returned {self.empty_answer}; retry, or raise "
                    "generation.max_tokens if the model stops early.")
        if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
            return f"the request to {self.where_url} timed out; raise -B generation.timeout_s=SECONDS or check the server's load."
        return f"{self.name} call to {where} failed ({type(exc).__name__}: {short_text(str(exc))})."


async def _close_on_loop_shutdown(client: Any) -> AsyncGenerator[None, None]:
    """Started once, it waits; closing it (aclose, or the loop's shutdown_asyncgens) closes the client."""
    try:
        yield
    finally:
        await client.close()


# ---------------------------------------------------------------- helpers (backends and embedders)


def resolve_key(api_key: str | None, key_env: str, base_url: str | None, missing: str) -> str:
    """The given key, else ``key_env``'s; without either, a placeholder for a server at ``base_url``
    (a local server may need no key), or a ConfigError saying ``missing`` when there is none."""
    key = api_key or os.environ.get(key_env) or None
    if key is None:
        if base_url is None:
            raise ConfigError(missing)
        key = PLACEHOLDER_KEY
    return key


def scrub_key(text: str, key: str | None) -> str:
    """``text`` with the API key replaced by ***, so that error sentences never show it."""
    if key and key != PLACEHOLDER_KEY and len(key) >= 4:  # a very short key would blank ordinary words
        text = text.replace(key, "***")
    return text


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


def error_headers(exc: BaseException) -> Mapping[str, str] | None:
    """The HTTP response headers an SDK exception carries (for ``parse_retry_after``), or None."""
    response = getattr(exc, "response", None)
    return getattr(response, "headers", None)


def error_code(exc: BaseException) -> str | None:
    """The API's error code (``insufficient_quota``, ``model_not_found``, ...) from the exception or
    its JSON body (``{"error": {"code": ...}}`` or ``{"code": ...}``), or None."""
    code = getattr(exc, "code", None)
    if code:
        return str(code)
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        inner = error if isinstance(error, dict) else body
        if inner.get("code"):
            return str(inner["code"])
    return None


def error_message(exc: BaseException) -> str:
    """The server's message from the exception's JSON body (``{"error": {"message": ...}}`` or
    ``{"message": ...}``), else the exception's own message."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        inner = error if isinstance(error, dict) else body
        if isinstance(inner.get("message"), str):
            return inner["message"]
    return getattr(exc, "message", None) or str(exc)


def is_context_length_error(code: str, message: str) -> bool:
    """Whether an error code and message say the prompt does not fit the model's context: servers
    word it differently, and it is fatal (a retry sends the same prompt)."""
    lowered = message.lower()
    return (code == "context_length_exceeded" or "context length" in lowered or "context_length" in lowered
            or "maximum context" in lowered or "too many tokens" in lowered)


def short_text(text: str, limit: int = 200) -> str:
    """``text`` on one line, without a final full stop, cut to ``limit`` characters: a server's message
    fit to quote inside an error sentence."""
    text = " ".join(text.split()).rstrip(".")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def host_root(url: str) -> str:
    """``url`` without a trailing slash or ``/v1``: the together and anthropic SDKs append ``/v1/...`` themselves."""
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url
