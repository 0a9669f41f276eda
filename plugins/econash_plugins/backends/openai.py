"""The `openai` backend: OpenAI chat completions, or any OpenAI-compatible server via --base-url.

The SDK's own retries are off: the econash engine retries, guided by ``classify_error``. One
``AsyncOpenAI`` client is made per event loop, on first use inside it (see ``SDKBackend``), because
``asyncio.run`` may be called more than once in a process and a client's connections belong to the
loop that made them. ``aclose()`` closes it; a client still open when ``asyncio.run`` ends its loop
is closed then.

The module holds the chat completions call that the together backend shares; the `openai`
embedder is in ``econash_plugins.embedders.openai``.
"""

from __future__ import annotations

import time
from typing import Any, Callable


from pydantic import Field

from econash.backend import EmptyCompletionError
from econash.errors import missing_dependency
from econash.hookspecs import hookimpl
from econash.redaction import secret_field
from econash.types import Capabilities, LLMRequest, LLMResult, Usage
from econash.sdk_backend import SDKBackend, error_code, is_context_length_error

DEFAULT_MODEL = "gpt-4o-mini"
OPENAI_BASE_URL = "https://api.openai.com/v1"


def import_openai() -> Any:
    try:
        import openai
    except ImportError:
        raise missing_dependency("The openai backend", "openai", "openai") from None
    return openai


async def chat_completion(client: Any, model: str, where_url: str, request: LLMRequest) -> LLMResult:
    """One chat completions call through an OpenAI-style SDK client (openai, together)."""
    params = request.sampling
    kwargs: dict[str, Any] = {
        "model": model,
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
        raise EmptyCompletionError(f"model '{model}' at {where_url} answered with no choices")
    choice = choices[0]
    text = choice.message.content if choice.message is not None else None
    finish_reason = choice.finish_reason
    if not text and finish_reason != "length":
        raise EmptyCompletionError(
            f"model '{model}' at {where_url} returned an empty completion (finish_reason {finish_reason!r})"
        )
    usage = getattr(response, "usage", None)
    return LLMResult(
        text=text or "",
        usage=Usage(
            prompt_tokens=(getattr(usage, "prompt_tokens", 0) or 0) if usage is not None else 0,
            completion_tokens=(getattr(usage, "completion_tokens", 0) or 0) if usage is not None else 0,
        ),
        model=getattr(response, "model", None) or model,
        finish_reason=finish_reason,
        latency_s=latency,
    )


class OpenAIBackend(SDKBackend):
    """OpenAI chat completions, or any OpenAI-compatible server via --base-url (vLLM, Ollama, LM Studio, llama.cpp).

    The API key comes from ``backend_options.api_key``, else ``OPENAI_API_KEY``; a server given by
    --base-url (or ``OPENAI_BASE_URL``) may need none. ``max_tokens`` is sent as ``max_tokens``,
    which OpenAI-compatible servers understand.
    """

    name = "openai"
    key_env = "OPENAI_API_KEY"
    base_url_env = "OPENAI_BASE_URL"
    default_url = OPENAI_BASE_URL
    default_model = DEFAULT_MODEL
    response_kind = "OpenAI JSON"
    compatible_api = "an OpenAI-compatible API"

    class Options(SDKBackend.Options):
        api_key: str | None = secret_field(env="OPENAI_API_KEY", description=(
            "The API key; without it OPENAI_API_KEY is read (a server given by --base-url may need none). Never "
            "written to manifests, logs or the cache."))
        organization: str | None = Field(None, description="The OpenAI organization ID sent with each request.")

    def __init__(self, options: Options, model: str | None = None, base_url: str | None = None) -> None:
        super().__init__(options, model, base_url)
        self.organization = options.organization
        self.capabilities = Capabilities(
            temperature_range=(0.0, 2.0), supports_top_p=True, supports_seed=True,
            context_length=None, reports_usage=True, max_concurrency=options.max_connections,
        )

    @property
    def where(self) -> str:
        return self.base_url or "api.openai.com"

    def import_sdk(self) -> Any:
        return import_openai()

    def make_client(self, http_client: Any) -> Any:
        return self.sdk.AsyncOpenAI(api_key=self.api_key, base_url=self.where_url, organization=self.organization,
                                     max_retries=0, timeout=self.timeout_s, http_client=http_client)

    async def generate(self, request: LLMRequest) -> LLMResult:
        client = await self.client_for_running_loop()
        return await chat_completion(client, self.model, self.where_url, request)

    # ------------------------------------------------------------ errors

    def out_of_quota(self, exc: BaseException) -> bool:
        return error_code(exc) == "insufficient_quota"

    def describe_status(self, exc: Any, status: int, message: str) -> str | None:
        where, code = self.where, error_code(exc) or ""
        if status == 404:
            if code == "model_not_found" or "model" in message.lower():
                return (f"the server at {where} does not know the model '{self.model}' (404); pass --model with "
                        "a model it serves.")
            return (f"the server at {where} has no chat completions endpoint (404); check --base-url "
                    "(it usually ends in /v1).")
        if is_context_length_error(code, message):
            return (f"the prompt is too long for the context length of model '{self.model}' ({status}); lower "
                    "generation.max_tokens, shorten the prompt, or use a model with a longer context.")
        if isinstance(exc, self.sdk.RateLimitError) and code == "insufficient_quota":
            return (f"the account of the API key has no quota left at {where} (429 insufficient_quota); "
                    "check its plan and billing.")
        return None


@hookimpl
def register_backends(register: Callable[..., None]) -> None:
    register("openai", OpenAIBackend)
