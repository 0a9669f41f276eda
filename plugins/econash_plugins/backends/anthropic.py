"""The `anthropic` backend: Claude through the Anthropic Messages API (anthropic SDK).

Like the openai backend, the SDK's own retries are off (the engine retries, guided by
``classify_error``) and one ``AsyncAnthropic`` client is made per event loop (see ``SDKBackend``).
``--base-url`` is the host root (the SDK posts to ``/v1/messages`` under it); a trailing ``/v1`` is
dropped.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from pydantic import Field

from econash.backend import EmptyCompletionError
from econash.errors import missing_dependency
from econash.hookspecs import hookimpl
from econash.redaction import secret_field
from econash.types import Capabilities, LLMRequest, LLMResult, Message, Usage
from econash.sdk_backend import SDKBackend, host_root

#: A current Sonnet that still takes `temperature` (Opus 4.7 and later, and generation 5, refuse it).
DEFAULT_MODEL = "claude-sonnet-4-6"
ANTHROPIC_URL = "https://api.anthropic.com"


def _import_anthropic() -> Any:
    try:
        import anthropic
    except ImportError:
        raise missing_dependency("The anthropic backend", "anthropic", "anthropic") from None
    return anthropic


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


class AnthropicBackend(SDKBackend):
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
    key_env = "ANTHROPIC_API_KEY"
    base_url_env = "ANTHROPIC_BASE_URL"
    default_url = ANTHROPIC_URL
    default_model = DEFAULT_MODEL
    response_kind = "Messages API JSON"
    compatible_api = "an Anthropic-compatible API"
    empty_answer = "no text"

    class Options(SDKBackend.Options):
        api_key: str | None = secret_field(env="ANTHROPIC_API_KEY", description=(
            "The API key; without it ANTHROPIC_API_KEY is read (a server given by --base-url may need none). Never "
            "written to manifests, logs or the cache."))
        max_connections: int = Field(16, ge=1, description=SDKBackend.Options.model_fields["max_connections"].description)
        send_sampling: bool = Field(True, description=(
            "Send temperature or top_p. Set false for the models that refuse sampling parameters (Opus 4.7 and "
            "later, generation 5): the capabilities then pin temperature to the API's default of 1.0, so the run "
            "records what the model did."))

    def __init__(self, options: Options, model: str | None = None, base_url: str | None = None) -> None:
        super().__init__(options, model, base_url)
        self.send_sampling = options.send_sampling
        self.capabilities = Capabilities(
            temperature_range=(0.0, 1.0) if self.send_sampling else (1.0, 1.0),
            supports_top_p=self.send_sampling, supports_seed=False,
            context_length=None, reports_usage=True, max_concurrency=options.max_connections,
        )

    def import_sdk(self) -> Any:
        return _import_anthropic()

    @staticmethod
    def normalise_base_url(url: str) -> str:
        return host_root(url)

    def make_client(self, http_client: Any) -> Any:
        # An explicit api_key also stops the SDK from looking for profiles or federation credentials.
        return self.sdk.AsyncAnthropic(api_key=self.api_key, base_url=self.where_url, max_retries=0,
                                        timeout=self.timeout_s, http_client=http_client)

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
        client = await self.client_for_running_loop()
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

    def api_error_message(self, exc: BaseException) -> str:
        return getattr(exc, "api_message", None) or getattr(exc, "message", None) or str(exc)

    def describe_status(self, exc: Any, status: int, message: str) -> str | None:
        where, lowered = self.where_url, message.lower()
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
        if status == 529:  # never a RateLimitError: the SDK gives that class to 429 only
            return f"the server at {where} is overloaded (529); this is usually temporary, retry later."
        return None

    def describe_error(self, exc: BaseException) -> str:
        if isinstance(exc, UnsendableRequest):
            return f"the request cannot be sent to the anthropic backend: {exc}; start the prompt with a user message."
        return super().describe_error(exc)


@hookimpl
def register_backends(register: Callable[..., None]) -> None:
    register("anthropic", AnthropicBackend)
