"""The `openai` embedder: the OpenAI embeddings endpoint, or any compatible server via base_url
(synchronous client; the together embedder builds on it)."""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, Callable

from pydantic import Field

from econash.embedder import Embedder
from econash.errors import BackendError
from econash.hookspecs import hookimpl
from econash.redaction import secret_field
from econash.sdk_backend import (error_code, error_headers, error_message, parse_retry_after, resolve_key, scrub_key,
                                 short_text)
from econash.types import StrictModel
from econash_plugins.backends.openai import OPENAI_BASE_URL, import_openai


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
        model: str | None = Field(None, description="The embedding model; null: the embedder's default model.")
        base_url: str | None = Field(None, description=(
            "A compatible server's URL; null: the base-URL environment variable, else the provider's API."))
        api_key: str | None = secret_field(env="OPENAI_API_KEY", description=(
            "The API key; without it the embedder's key variable is read. Never written to manifests, logs or "
            "the cache."))
        dim: int | None = Field(None, ge=1, description=(
            "The vectors' size, checked against the first reply; null: learned from the first call."))
        batch_size: int = Field(64, ge=1, description="Texts sent per request.")
        timeout_s: float = Field(60.0, gt=0, description=(
            "Timeout of one request in seconds (embedders are synchronous and retry by themselves, outside the "
            "engine)."))

    def __init__(self, options: Options) -> None:
        self._sdk = self._import_sdk()
        self.model = options.model or self.default_model
        base_url = options.base_url or os.environ.get(self.base_url_env) or None
        self.base_url = self._normalise_base_url(base_url) if base_url else None
        self._api_key = resolve_key(options.api_key, self.key_env, self.base_url,
                                    f"The {self.name} embedder needs an API key; set the environment variable "
                                    f"{self.key_env}.")
        self.batch_size = options.batch_size
        self.timeout_s = options.timeout_s
        self.dim = options.dim or 0
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.where_url!r})"

    @property
    def where_url(self) -> str:
        return self.base_url or self.default_url

    # -------------------------------------------------- hooks a compatible SDK overrides

    def _import_sdk(self) -> Any:
        return import_openai()

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
            if error_code(exc) == "insufficient_quota":
                return False, None
            return True, parse_retry_after(error_headers(exc))
        if isinstance(exc, sdk.APIStatusError):
            return exc.status_code >= 500 or exc.status_code in (408, 409), parse_retry_after(error_headers(exc))
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
                    f"({short_text(error_message(exc))}); check the embedder's model and options.")
        if isinstance(exc, sdk.APITimeoutError):
            return f"{who} timed out {tries} at {where}; raise the embedder option timeout_s."
        if isinstance(exc, sdk.APIConnectionError):
            return f"{who} could not connect to {where} {tries}; is the server running?"
        if isinstance(exc, (sdk.APIResponseValidationError, _MalformedEmbeddings, json.JSONDecodeError)):
            return f"{who} got a response from {where} that is not a valid embeddings response {tries}; check base_url."
        return f"{who} failed at {where} ({type(exc).__name__}: {short_text(str(exc))})."

    def _scrub(self, text: str) -> str:
        return scrub_key(text, self._api_key)


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
