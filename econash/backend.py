"""The interface every LLM backend implements. Engine concerns (retries, cache, limits) live elsewhere."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from typing import ClassVar

from econash.types import Capabilities, LLMRequest, LLMResult


class ErrorKind(str, enum.Enum):
    """How the engine should treat a failed call."""

    RATE_LIMIT = "rate_limit"  # retry after the server's Retry-After, or back off
    TRANSIENT = "transient"  # retry with backoff
    FATAL = "fatal"  # never retry: auth, bad request, context length


class Backend(ABC):
    """An LLM provider. Subclasses set ``name`` and ``capabilities`` and implement ``generate``.

    ``generate`` must fill ``usage`` on its result. Turn off the SDK's own retries: the engine
    retries, using ``classify_error`` to decide whether and how.
    """

    name: ClassVar[str] = "backend"
    capabilities: Capabilities = Capabilities()

    #: the model actually answering (for accounting); subclasses set it in __init__
    model: str = "unknown"

    @abstractmethod
    async def generate(self, request: LLMRequest) -> LLMResult:
        """Answer one request."""

    def classify_error(self, exc: BaseException) -> tuple[ErrorKind, float | None]:
        """Classify an exception raised by ``generate``: its kind and a server-given retry delay."""
        return ErrorKind.FATAL, None

    async def aclose(self) -> None:
        """Release connections or model memory. Called once when a run ends."""
