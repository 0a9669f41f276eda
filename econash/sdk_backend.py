"""What the openai, together and anthropic backends share: their SDKs are built alike (Stainless).

``SDKBackend`` holds the machinery: key and base-URL resolution, one async client per running event
loop, ``aclose``, retry classification, the common error sentences and key scrubbing. A subclass
names its SDK and environment variables, builds the client, and adds its own request, response
parsing and error sentences. The helpers below read the SDKs' exceptions and are shared with the
embedders.
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
from econash.types import StrictModel
from econash.urls import check_base_url

#: sent as the key to servers that need none (a local server given by --base-url)
PLACEHOLDER_KEY = "not-needed"


class SDKBackend(Backend):
    """A backend calling a hosted API through its async SDK, with the SDK's own retries off."""

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
        #: a subclass's Options names its key's environment variable: secret_field(env=key_env)
        api_key: str | None = secret_field()
        max_connections: int = Field(32, ge=1)
        timeout_s: float = Field(120.0, gt=0)

    def __init__(self, options: Options, model: str | None = None, base_url: str | None = None) -> None:
        """``options`` is the validated ``Options`` (the registry checks the user's against the model)."""
        self._sdk = self._import_sdk()
        self.model = model or self.default_model
        if not base_url and (from_env := os.environ.get(self.base_url_env)):
            try:  # --base-url was checked with the config; the environment's URL is checked here
                check_base_url(from_env)
            except ValueError as exc:
                raise ConfigError(f"{self.base_url_env}={from_env!r} {exc}; fix or unset it.") from None
            base_url = from_env
        self.base_url = self._normalise_base_url(base_url) if base_url else None
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
    def where_url(self) -> str:
        """The base URL calls go to."""
        return self.base_url or self.default_url

    @property
    def _where(self) -> str:
        """The server as error sentences name it."""
        return self.where_url

    def cache_identity(self) -> dict[str, Any]:
        return {"base_url": self.where_url}

    # ------------------------------------------------------------ hooks

    def _import_sdk(self) -> Any:
        raise NotImplementedError

    @staticmethod
    def _normalise_base_url(url: str) -> str:
        return url.rstrip("/")

    def _make_client(self, http_client: Any) -> Any:
        """The SDK's async client, with ``max_retries=0`` and ``http_client``."""
        raise NotImplementedError

    # ------------------------------------------------------------ client

    async def _client_for_running_loop(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is not None and self._client_loop is not None and self._client_loop() is loop:
            return self._client
        # A client from an earlier loop cannot be used or closed from this one; it was closed when
        # that loop shut down (see _closer) or, failing that, is dropped.
        sdk = self._sdk
        limits = type(sdk.DEFAULT_CONNECTION_LIMITS)(
            max_connections=self.max_connections, max_keepalive_connections=self.max_connections
        )
        client = self._make_client(sdk.DefaultAsyncHttpxClient(limits=limits))
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
        sdk = self._sdk
        if isinstance(exc, EmptyCompletionError):
            return ErrorKind.TRANSIENT, None
        if isinstance(exc, sdk.RateLimitError):
            if self._out_of_quota(exc):  # waiting will not help
                return ErrorKind.FATAL, None
            return ErrorKind.RATE_LIMIT, parse_retry_after(_headers(exc))
        if isinstance(exc, sdk.APIStatusError):
            status = exc.status_code
            # Every 5xx (anthropic's 529 overloaded too) and 408/409 pass; other 4xx will not change on retry.
            if status >= 500 or status in (408, 409):
                return ErrorKind.TRANSIENT, parse_retry_after(_headers(exc))
            return ErrorKind.FATAL, None
        if isinstance(exc, (sdk.APIConnectionError, sdk.APIResponseValidationError)):
            return ErrorKind.TRANSIENT, None
        # A 200 whose body is not JSON: the SDKs let json.JSONDecodeError through unwrapped.
        if isinstance(exc, (json.JSONDecodeError, ConnectionError, TimeoutError, asyncio.TimeoutError)):
            return ErrorKind.TRANSIENT, None
        return ErrorKind.FATAL, None

    def _out_of_quota(self, exc: BaseException) -> bool:
        """Whether a 429 means the account has no credit left, not that it is going too fast."""
        return False

    def describe_error(self, exc: BaseException) -> str:
        return self._scrub(self._describe(exc))

    def _describe_status(self, exc: Any, status: int, message: str) -> str | None:
        """The subclass's own sentence for an API status error, or None for the common ones.

        Asked after 401 and 403 and before 429 and 5xx."""
        return None

    def _error_message(self, exc: BaseException) -> str:
        return _error_message(exc)

    def _describe(self, exc: BaseException) -> str:
        sdk, where = self._sdk, self._where
        if isinstance(exc, sdk.APIStatusError):
            status = exc.status_code
            message = _short(self._error_message(exc))
            if status == 401:
                return f"the server at {where} rejected the API key (401); set {self.key_env} to a valid key."
            if status == 403:
                return (f"the server at {where} refused access to model '{self.model}' (403); check that the API key "
                        "may use it, or pass --model with another model.")
            specific = self._describe_status(exc, status, message)
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
        return f"{self.name} call to {where} failed ({type(exc).__name__}: {_short(str(exc))})."

    def _scrub(self, text: str) -> str:
        return scrub_key(text, self._api_key)


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


def host_root(url: str) -> str:
    """``url`` without a trailing slash or ``/v1``: the together and anthropic SDKs append ``/v1/...`` themselves."""
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url
