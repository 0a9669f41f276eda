"""The `together` embedder: Together AI embeddings through the together SDK (base_url is the host
root, as for the together backend)."""

from __future__ import annotations

from typing import Any, Callable

from econash.hookspecs import hookimpl
from econash.redaction import secret_field
from econash.sdk_backend import host_root
from econash_plugins.backends.together import DEFAULT_EMBEDDING_MODEL, TOGETHER_URL, import_together
from econash_plugins.embedders.openai import OpenAIEmbedder


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

    class Options(OpenAIEmbedder.Options):
        api_key: str | None = secret_field(env="TOGETHER_API_KEY",
                                           description=OpenAIEmbedder.Options.model_fields["api_key"].description)

    def _import_sdk(self) -> Any:
        return import_together()

    @staticmethod
    def _normalise_base_url(url: str) -> str:
        return host_root(url)

    def _make_client(self) -> Any:
        return self._sdk.Together(api_key=self._api_key, base_url=self.base_url, max_retries=0, timeout=self.timeout_s)

    def _request(self, client: Any, batch: list[str]) -> Any:
        return client.embeddings.create(model=self.model, input=batch)


@hookimpl
def register_embedders(register: Callable[..., None]) -> None:
    register("together", TogetherEmbedder)
