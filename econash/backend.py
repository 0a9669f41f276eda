"""The interface every LLM backend implements. Engine concerns (retries, cache, limits) live elsewhere."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from econash.call_types import Capabilities, LLMRequest, LLMResult


class ErrorKind(str, enum.Enum):
    """How the engine should treat a failed call."""

    RATE_LIMIT = "rate_limit"  # retry after the server's Retry-After, or back off
    TRANSIENT = "transient"  # retry with backoff
    FATAL = "fatal"  # never retry: auth, bad request, context length


class EmptyCompletionError(RuntimeError):
    """The server answered, but with no text. Backends raise it; the engine retries it as transient."""


class Backend(ABC):
    """An LLM provider. Subclasses set ``name`` and ``capabilities`` and implement ``generate``.

    ``generate`` must fill ``usage`` on its result. Turn off the SDK's own retries: the engine
    retries, using ``classify_error`` to decide whether and how.
    """

    name: ClassVar[str] = "backend"
    capabilities: Capabilities = Capabilities()

    #: the model actually answering (for accounting); subclasses set it in __init__
    model: str = "unknown"

    #: True when ``--model`` names a file (a GGUF path): the run stores it as an absolute path, so
    #: that ``econash resume`` finds it from any working directory
    model_is_file: ClassVar[bool] = False

    @abstractmethod
    async def generate(self, request: LLMRequest) -> LLMResult:
        """Answer one request."""

    def classify_error(self, exc: BaseException) -> tuple[ErrorKind, float | None]:
        """Classify an exception raised by ``generate``: its kind and a server-given retry delay
        in seconds (from Retry-After), or None."""
        if isinstance(exc, (EmptyCompletionError, ConnectionError, TimeoutError)):
            return ErrorKind.TRANSIENT, None
        return ErrorKind.FATAL, None

    def describe_error(self, exc: BaseException) -> str:
        """One sentence for a user about a failed call, naming the fix where there is one
        (for example the environment variable of a missing or rejected API key)."""
        return f"{self.name} call failed ({type(exc).__name__}: {exc})"

    def cache_identity(self) -> dict[str, Any]:
        """What besides the model name decides this backend's answers (base URL, model file, seed):
        part of the response-cache key."""
        return {}

    async def aclose(self) -> None:
        """Release connections or model memory. Called once when a run ends."""
