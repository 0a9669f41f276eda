"""The `anthropic` backend: Claude through the Anthropic Messages API (anthropic SDK).

Like the openai backend, the SDK's own retries are off (the engine retries, guided by
``classify_error``) and one ``AsyncAnthropic`` client is made per event loop. ``--base-url`` is the
host root (the SDK posts to ``/v1/messages`` under it); a trailing ``/v1`` is dropped.
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
from econash.types import Capabilities, LLMRequest, LLMResult, Message, StrictModel, Usage
from econash_plugins.openai_backend import PLACEHOLDER_KEY, _headers, _short, parse_retry_after

#: A current Sonnet that still takes `temperature` (Opus 4.7 and later, and generation 5, refuse it).
DEFAULT_MODEL = "claude-sonnet-4-6"
ANTHROPIC_URL = "https://api.anthropic.com"


def _import_anthropic() -> Any:
    try:
        import anthropic
    except ImportError:
        raise missing_dependency("The anthropic backend", "anthropic", "anthropic") from None
    return anthropic


def host_root(url: str) -> str:
    """``url`` without a trailing slash or ``/v1``: the SDK appends ``/v1/messages`` itself."""
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


async def _close_on_loop_shutdown(client: Any) -> AsyncGenerator[None, None]:
    """Started once, it waits; closing it (aclose, or the loop's shutdown_asyncgens) closes the client."""
    try:
        yield
    finally:
        await client.close()


class UnsendableRequest(ValueError):
    """The messages cannot be put in the Messages API's shape (no user turn to start with)."""


def to_messages_api(messages: list[Message]) -> tuple[str | None, list[dict[str, str]]]:
    """Split chat messages into the Messages API's ``system`` and alternating ``messages``.

    System messages, wherever they are, are joined into ``system``; consecutive messages of the same
    role are merged (joined by a blank line), so roles alternate as the API requires.
    """
    system = [m.content for m in messages if m.role == "system"]
    turns: list[dict[str, str]] = []
    for m in messages:
        if m.role == "system":
            continue
        if turns and turns[-1]["role"] == m.role:
            turns[-1]["content"] += "\n\n" + m.content
        else:
            turns.append({"role": m.role, "content": m.content})
    if not turns or turns[0]["role"] != "user":
        raise UnsendableRequest("the Messages API needs the conversation to start with a user message")
    return ("\n\n".join(system) if system else None), turns


class AnthropicBackend(Backend):
    """Anthropic Messages API (Claude); system prompts go to `system`, temperature 0-1, no seed.

    The key comes from ``backend_options.api_key``, else ``ANTHROPIC_API_KEY``; a server given by
    --base-url (the host root, or ``ANTHROPIC_BASE_URL``) may need none. Default model
    ``claude-sonnet-4-6``.

    Sampling: the API takes temperature in [0, 1] (the engine clips to it) and, on current models,
    temperature *or* top_p but not both. So ``top_p`` is sent only when it is below 1.0, and then
    in place of ``temperature``; otherwise ``temperature`` is sent. anthropic SDK 1.0 and later has
    no keyword arguments for them, so they travel in ``extra_body`` (the same JSON on the wire).
    Models that refuse sampling parameters altogether (Opus 4.7 and later, generation 5) need
    ``-B backend_options.send_sampling=false``: then neither is sent, and the capabilities pin
    temperature to the API's default of 1.0 so the run records what the model did. Seeds are not
    supported. Stop sequences that are only whitespace, which the API refuses, are applied to the
    returned text instead of being sent.
    """

    name = "anthropic"

    class Options(StrictModel):
        api_key: str | None = None
        max_connections: int = Field(16, ge=1)
        timeout_s: float = Field(120.0, gt=0)
        send_sampling: bool = True

    def __init__(self, model: str | None = None, base_url: str | None = None, *, api_key: str | None = None,
                 max_connections: int = 16, timeout_s: float = 120.0, send_sampling: bool = True) -> None:
        self._anthropic = _import_anthropic()
        if max_connections < 1:
            raise ConfigError("The anthropic backend's max_connections must be at least 1; pass -B backend_options.max_connections=N.")
        if not timeout_s > 0:
            raise ConfigError("The anthropic backend's timeout_s must be positive; pass -B backend_options.timeout_s=SECONDS.")
        self.model = model or DEFAULT_MODEL
        base_url = base_url or os.environ.get("ANTHROPIC_BASE_URL") or None
        self.base_url = host_root(base_url) if base_url else None
        key = api_key or os.environ.get("ANTHROPIC_API_KEY") or None
        if key is None:
            if self.base_url is None:
                raise ConfigError(
                    "The anthropic backend needs an API key; set ANTHROPIC_API_KEY or pass -B backend_options.api_key=...."
                )
            key = PLACEHOLDER_KEY
        self._api_key = key
        self.max_connections = max_connections
        self.timeout_s = float(timeout_s)
        self.send_sampling = bool(send_sampling)
        self.capabilities = Capabilities(
            temperature_range=(0.0, 1.0) if self.send_sampling else (1.0, 1.0),
            supports_top_p=self.send_sampling, supports_seed=False,
            context_length=None, reports_usage=True, max_concurrency=max_connections,
        )
        self._client: Any = None
        self._client_loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._closer: AsyncGenerator[None, None] | None = None

    def __repr__(self) -> str:  # never show the key
        return f"AnthropicBackend(model={self.model!r}, base_url={self.where_url!r})"

    @property
    def where_url(self) -> str:
        return self.base_url or ANTHROPIC_URL

    # ------------------------------------------------------------ client

    async def _client_for_running_loop(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is not None and self._client_loop is not None and self._client_loop() is loop:
            return self._client
        anthropic = self._anthropic
        limits = type(anthropic.DEFAULT_CONNECTION_LIMITS)(
            max_connections=self.max_connections, max_keepalive_connections=self.max_connections
        )
        # An explicit api_key also stops the SDK from looking for profiles or federation credentials.
        client = anthropic.AsyncAnthropic(
            api_key=self._api_key,
            base_url=self.where_url,
            max_retries=0,
            timeout=self.timeout_s,
            http_client=anthropic.DefaultAsyncHttpxClient(limits=limits),
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

    def request_kwargs(self, request: LLMRequest) -> tuple[dict[str, Any], list[str]]:
        """The keyword arguments of ``messages.create`` and the stop sequences to apply locally."""
        system, turns = to_messages_api(request.messages)
        params = request.sampling
        kwargs: dict[str, Any] = {"model": self.model, "messages": turns, "max_tokens": params.max_tokens}
        if system is not None:
            kwargs["system"] = system
        if self.send_sampling:
            # Current models take temperature or top_p, not both: top_p only when it restricts sampling.
            kwargs["extra_body"] = {"top_p": params.top_p} if params.top_p < 1.0 else {"temperature": params.temperature}
        stops = list(params.stop or [])
        sent = [s for s in stops if s.strip()]
        if sent:
            kwargs["stop_sequences"] = sent
        return kwargs, [s for s in stops if s and not s.strip()]

    async def generate(self, request: LLMRequest) -> LLMResult:
        kwargs, local_stops = self.request_kwargs(request)
        client = await self._client_for_running_loop()
        started = time.perf_counter()
        response = await client.messages.create(**kwargs)
        latency = time.perf_counter() - started
        text = "".join(getattr(b, "text", "") or "" for b in (response.content or []) if getattr(b, "type", None) == "text")
        stop_reason = getattr(response, "stop_reason", None)
        cuts = [text.find(s) for s in local_stops if s in text]
        if cuts:
            text, stop_reason = text[: min(cuts)], "stop_sequence"
        if not text and stop_reason != "max_tokens":
            raise EmptyCompletionError(
                f"model '{self.model}' at {self.where_url} returned no text (stop_reason {stop_reason!r})"
            )
        usage = getattr(response, "usage", None)
        return LLMResult(
            text=text,
            usage=Usage(prompt_tokens=getattr(usage, "input_tokens", 0) or 0,
                        completion_tokens=getattr(usage, "output_tokens", 0) or 0),
            model=getattr(response, "model", None) or self.model,
            finish_reason=stop_reason,
            latency_s=latency,
        )

    # ------------------------------------------------------------ errors

    def classify_error(self, exc: BaseException) -> tuple[ErrorKind, float | None]:
        anthropic = self._anthropic
        if isinstance(exc, EmptyCompletionError):
            return ErrorKind.TRANSIENT, None
        if isinstance(exc, anthropic.RateLimitError):
            return ErrorKind.RATE_LIMIT, parse_retry_after(_headers(exc))
        if isinstance(exc, anthropic.APIStatusError):
            status = exc.status_code
            # 529 overloaded and every 5xx pass; 408/409 too. 413 and other 4xx will not change on retry.
            if status >= 500 or status in (408, 409):
                return ErrorKind.TRANSIENT, parse_retry_after(_headers(exc))
            return ErrorKind.FATAL, None
        if isinstance(exc, (anthropic.APIConnectionError, anthropic.APIResponseValidationError)):
            return ErrorKind.TRANSIENT, None
        if isinstance(exc, (json.JSONDecodeError, ConnectionError, TimeoutError, asyncio.TimeoutError)):
            return ErrorKind.TRANSIENT, None
        return ErrorKind.FATAL, None

    def describe_error(self, exc: BaseException) -> str:
        return self._scrub(self._describe(exc))

    def _describe(self, exc: BaseException) -> str:
        anthropic, where = self._anthropic, self.where_url
        if isinstance(exc, anthropic.APIStatusError):
            status = exc.status_code
            message = _short(getattr(exc, "api_message", None) or getattr(exc, "message", None) or str(exc))
            lowered = message.lower()
            if status == 401:
                return f"the server at {where} rejected the API key (401); set ANTHROPIC_API_KEY to a valid key."
            if status == 403:
                return (f"the server at {where} refused access to model '{self.model}' (403); check that the API key "
                        "may use it, or pass --model with another model.")
            if status == 404:
                if "model" in lowered:
                    return (f"the server at {where} does not know the model '{self.model}' (404); pass --model with "
                            "a current Claude model.")
                return (f"the server at {where} has no Messages endpoint (404); check --base-url (the host root, "
                        "without /v1).")
            if status == 413:
                return (f"the request is too large for the server at {where} (413); shorten the prompt or lower "
                        "generation.max_tokens.")
            if "prompt is too long" in lowered:
                return (f"the prompt is too long for model '{self.model}' ({status}); shorten the prompt, lower "
                        "generation.max_tokens, or use a model with a longer context.")
            if status == 400 and ("temperature" in lowered or "top_p" in lowered) and any(
                    word in lowered for word in ("deprecated", "not supported", "cannot both")):
                return (f"model '{self.model}' refused the sampling parameters ({message}); pass "
                        "-B backend_options.send_sampling=false to stop sending temperature and top_p.")
            if isinstance(exc, anthropic.RateLimitError):
                return (f"the server at {where} is rate limiting requests (429); lower --concurrency or "
                        "backend_options.max_connections, or wait before retrying.")
            if status == 529:
                return f"the server at {where} is overloaded (529); this is usually temporary, retry later."
            if status >= 500:
                return f"the server at {where} failed with status {status} ({message}); this is usually temporary, retry later."
            return f"the server at {where} rejected the request with status {status} ({message}); check the model and generation settings."
        if isinstance(exc, anthropic.APITimeoutError):
            return (f"the request to {where} timed out after {self.timeout_s:g} s; raise "
                    "backend_options.timeout_s or check the server's load.")
        if isinstance(exc, anthropic.APIConnectionError):
            return f"could not connect to {where}; is the server running?"
        if isinstance(exc, (anthropic.APIResponseValidationError, json.JSONDecodeError)):
            return (f"the server at {where} sent a response that is not valid Messages API JSON; check that "
                    "--base-url points to an Anthropic-compatible API.")
        if isinstance(exc, EmptyCompletionError):
            return (f"model '{self.model}' at {where} returned no text; retry, or raise generation.max_tokens if "
                    "the model stops early.")
        if isinstance(exc, UnsendableRequest):
            return f"the request cannot be sent to the anthropic backend: {exc}; start the prompt with a user message."
        if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
            return f"the request to {where} timed out; raise backend_options.timeout_s or check the server's load."
        return f"anthropic call to {where} failed ({type(exc).__name__}: {_short(str(exc))})."

    def _scrub(self, text: str) -> str:
        key = self._api_key
        if key and key != PLACEHOLDER_KEY and len(key) >= 4:
            text = text.replace(key, "***")
        return text

    def cache_identity(self) -> dict[str, Any]:
        return {"base_url": self.where_url}


@hookimpl
def register_backends(register: Callable[..., None]) -> None:
    register("anthropic", AnthropicBackend)
