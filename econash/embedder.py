"""The interface of text embedders, used for question and strategy embeddings and the AL reward."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar


class Embedder(ABC):
    """Turns texts into fixed-size vectors."""

    name: ClassVar[str] = "embedder"
    dim: int = 0

    @abstractmethod
    def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector of length ``dim`` per text."""
