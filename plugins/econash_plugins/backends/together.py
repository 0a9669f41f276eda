"""The `together` backend: Together AI chat completions through the together SDK (the embedder is in
``econash_plugins.embedders.together``).

``--base-url`` for together is the host root (``http://127.0.0.1:8000``), not ``.../v1``: the SDK
adds ``/v1`` itself. A trailing ``/v1`` is dropped, so either form works. Like the openai backend,
the SDK's own retries are off (the engine retries, guided by ``classify_error``) and one
``AsyncTogether`` client is made per event loop; the chat completions call is the openai backend's.
"""

from __future__ import annotations

from typing import Any, Callable

from econash.errors import missing_dependency
from econash.hookspecs import hookimpl
from econash.redaction import secret_field
from econash.types import Capabilities, LLMRequest, LLMResult
from econash.sdk_backend import SDKBackend, error_code, host_root, is_context_length_error
from econash_plugins.backends.openai import chat_completion

DEFAULT_MODEL = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
DEFAULT_EMBEDDING_MODEL = "BAAI/bge-base-en-v1.5"
TOGETHER_URL = "https://api.together.ai"


def import_together() -> Any:
    try:
        import together
    except ImportError:
        raise missing_dependency("The together backend", "together", "together") from None
    return together


class TogetherBackend(SDKBackend):
    """Together AI chat completions (together SDK); --base-url is the host root, without /v1.

    The API key comes from ``backend_options.api_key``, else ``TOGETHER_API_KEY``; a server given by
    --base-url (or ``TOGETHER_BASE_URL``) may need none. temperature (0-2), top_p, max_tokens, seed
    and stop are sent as given.
    """

    name = "together"
    key_env = "TOGETHER_API_KEY"
    base_url_env = "TOGETHER_BASE_URL"
    default_url = TOGETHER_URL
    default_model = DEFAULT_MODEL
    response_kind = "chat completions JSON"
    compatible_api = "a Together-compatible API"

    class Options(SDKBackend.Options):
        api_key: str | None = secret_field(env="TOGETHER_API_KEY", description=(
            "The API key; without it TOGETHER_API_KEY is read (a server given by --base-url may need none). Never "
            "written to manifests, logs or the cache."))

    def __init__(self, options: Options, model: str | None = None, base_url: str | None = None) -> None:
        super().__init__(options, model, base_url)
        self.capabilities = Capabilities(
            temperature_range=(0.0, 2.0), supports_top_p=True, supports_seed=True,
            context_length=None, reports_usage=True, max_concurrency=options.max_connections,
        )

    def import_sdk(self) -> Any:
        return import_together()

    @staticmethod
    def normalise_base_url(url: str) -> str:
        return host_root(url)

    def make_client(self, http_client: Any) -> Any:
        # base_url None keeps the SDK's own routing to Together's inference host.
        return self.sdk.AsyncTogether(api_key=self.api_key, base_url=self.base_url, max_retries=0,
                                       timeout=self.timeout_s, http_client=http_client)

    async def generate(self, request: LLMRequest) -> LLMResult:
        client = await self.client_for_running_loop()
        return await chat_completion(client, self.model, self.where_url, request)

    def describe_status(self, exc: Any, status: int, message: str) -> str | None:
        where, code = self.where_url, error_code(exc) or ""
        if status == 402:
            return f"the account of the API key cannot pay for requests at {where} (402); check its credit and billing."
        if status == 404:
            if "model" in code or "model" in message.lower():
                return (f"the server at {where} does not know the model '{self.model}' (404); pass --model with "
                        "a model it serves.")
            return (f"the server at {where} has no chat completions endpoint (404); check --base-url "
                    "(for together it is the host root, without /v1).")
        if is_context_length_error(code, message):
            return (f"the prompt is too long for the context length of model '{self.model}' ({status}); lower "
                    "generation.max_tokens, shorten the prompt, or use a model with a longer context.")
        return None


@hookimpl
def register_backends(register: Callable[..., None]) -> None:
    register("together", TogetherBackend)
