"""The `hashing` embedder: signed feature hashing of word unigrams and bigrams; no dependencies."""

from __future__ import annotations

import hashlib
import math
import re
from typing import Callable

from pydantic import Field

from econash.embedder import Embedder
from econash.hookspecs import hookimpl
from econash.types import StrictModel

_WORD = re.compile(r"\w+")


class HashingEmbedder(Embedder):
    """Dependency-free embedder: hashed word unigrams and bigrams, L2-normalised (for tests and CPUs)."""

    name = "hashing"

    class Options(StrictModel):
        dim: int = Field(256, ge=8, description=(
            "The vectors' size: features are hashed into this many signed buckets (fewer collide more)."))

    def __init__(self, options: Options) -> None:
        self.dim = options.dim

    def _vector(self, text: str) -> list[float]:
        words = _WORD.findall(text.lower())
        features = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
        vector = [0.0] * self.dim
        for feature in features:
            digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
            value = int.from_bytes(digest, "little")
            vector[value % self.dim] += 1.0 if (value >> 63) & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vector))
        return [v / norm for v in vector] if norm else vector

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(text) for text in texts]


@hookimpl
def register_embedders(register: Callable[..., None]) -> None:
    register("hashing", HashingEmbedder)
