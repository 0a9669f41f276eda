"""The engine's call pipeline: retries, timeouts, cache keys, connection limits, ledger, cost limit."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from econash.backend import Backend, EmptyCompletionError, ErrorKind
from econash.engine.cache import ResponseCache
from econash.engine.engine import Engine, backoff_wait
from econash.engine.ledger import CostLimitReached, ModelPrice, PriceTable
from econash.errors import BackendError, ConfigError
from econash.testing import FakeBackend
from econash.types import Capabilities, LLMRequest, LLMResult, Message, RetryConfig, SamplingParams, Usage

FAST = RetryConfig(max_attempts=4, initial_wait_s=0.001, max_wait_s=0.01, jitter_s=0.0)


def request(text="q", temperature=0.7, draw=0, role="executor", agent=0, max_tokens=16):
    return LLMRequest(messages=[Message(role="user", content=text)],
                      sampling=SamplingParams(temperature=temperature, max_tokens=max_tokens),
                      role=role, agent=agent, draw=draw)


def call(engine, backend, req, phase="eval"):
    return asyncio.run(engine.call(backend, req, phase=phase))


def test_transient_errors_are_retried_and_recorded():
    events = []
    backend = FakeBackend(script=[ConnectionError("reset"), EmptyCompletionError("empty"), "fine"])
    engine = Engine(retry=FAST, emit=events.append)
    result, record = call(engine, backend, request())
    assert result.text == "fine" and record.retries == 2 and len(backend.requests) == 3
    retries = [e for e in events if e["type"] == "retry"]
    assert [e["error"] for e in retries] == ["ConnectionError", "EmptyCompletionError"]
    assert engine.ledger("eval").calls == 1 and engine.ledger("eval").retries == 2  # counted once


def test_fatal_errors_are_never_retried():
    backend = FakeBackend(script=[PermissionError("bad key"), "never"])
    with pytest.raises(BackendError, match="bad key"):
        call(Engine(retry=FAST), backend, request())
    assert len(backend.requests) == 1


def test_retries_are_bounded():
    backend = FakeBackend(script=[ConnectionError("down")] * 10)
    with pytest.raises(BackendError, match="gave up after 4 attempts") as err:
        call(Engine(retry=FAST), backend, request())
    assert len(backend.requests) == 4 and "econash resume" in str(err.value)


class RateLimited(Backend):
    name = "ratelimited"
    capabilities = Capabilities(max_concurrency=4)

    def __init__(self, retry_after):
        self.model, self.retry_after, self.calls = "m", retry_after, 0

    async def generate(self, request):
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("429")
        return LLMResult(text="ok", usage=Usage(prompt_tokens=1, completion_tokens=1), model="m")

    def classify_error(self, exc):
        return ErrorKind.RATE_LIMIT, self.retry_after


def test_rate_limit_waits_for_retry_after():
    started = time.perf_counter()
    result, record = call(Engine(retry=RetryConfig(initial_wait_s=5.0, jitter_s=0.0)), RateLimited(0.2), request())
    elapsed = time.perf_counter() - started
    assert result.text == "ok" and record.retries == 1
    assert 0.2 <= elapsed < 2.0  # the server's 0.2 s, not the 5 s backoff


def test_timeouts_are_retried_then_reported():
    backend = FakeBackend(latency_s=1.0)
    with pytest.raises(BackendError, match="did not answer within 0.05 s; gave up after 2 attempts"):
        call(Engine(retry=FAST.model_copy(update={"max_attempts": 2}), timeout_s=0.05), backend, request())


def test_backoff_is_exponential_jittered_and_capped():
    retry = RetryConfig(initial_wait_s=1.0, max_wait_s=10.0, jitter_s=0.5)
    rng = random.Random(0)
    waits = [backoff_wait(a, retry, rng) for a in (1, 2, 3, 10)]
    assert 1.0 <= waits[0] <= 1.5 and 2.0 <= waits[1] <= 2.5 and 4.0 <= waits[2] <= 4.5 and waits[3] == 10.0


def test_cache_hits_and_keys(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    backend = FakeBackend(responder=lambda req: f"draw {req.draw} t {req.sampling.temperature}")
    engine = Engine(cache=cache)
    first, _ = call(engine, backend, request(temperature=0.7))
    again, record = call(engine, backend, request(temperature=0.70000001))  # rounds to the same key
    assert again.text == first.text and again.cached and record.cached and len(backend.requests) == 1
    other_draw, _ = call(engine, backend, request(draw=1))
    other_temp, _ = call(engine, backend, request(temperature=0.9))
    assert not other_draw.cached and not other_temp.cached and len(backend.requests) == 3
    call(engine, backend, request(), phase="train")  # training never uses the cache
    assert len(backend.requests) == 4
    other_model = FakeBackend(model="other", responder=backend.responder)
    assert not call(engine, other_model, request())[0].cached
    assert engine.ledger("eval").cached_calls == 1
    stats = cache.stats()
    assert stats["entries"] == 4 and {row["model"] for row in stats["by_model"]} == {"fake-model", "other"}
    assert cache.clear() == 4 and cache.stats()["entries"] == 0


def test_cache_never_stores_secrets(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    backend = FakeBackend(echo=True, api_key="sk-very-secret")
    call(Engine(cache=cache), backend, request("hello"))
    cache.close()
    assert b"sk-very-secret" not in (tmp_path / "c.sqlite").read_bytes()


class Counting(Backend):
    name = "counting"

    def __init__(self, limit):
        self.model = "m"
        self.capabilities = Capabilities(max_concurrency=limit)
        self.now = self.peak = 0

    async def generate(self, request):
        self.now += 1
        self.peak = max(self.peak, self.now)
        await asyncio.sleep(0.02)
        self.now -= 1
        return LLMResult(text="x", usage=Usage(prompt_tokens=1, completion_tokens=1), model="m")


@pytest.mark.parametrize("limit,override,expected", [(2, None, 2), (8, None, 8), (8, 3, 3)])
def test_connection_limit(limit, override, expected):
    backend = Counting(limit)
    engine = Engine(max_connections=override)

    async def go():
        await asyncio.gather(*(engine.call(backend, request(str(i)), phase="eval") for i in range(12)))

    asyncio.run(go())
    assert backend.peak == expected


def test_ledger_by_role_agent_and_model_with_cost():
    prices = PriceTable(models={"fake-model": ModelPrice(prompt=1.0, completion=2.0)})
    engine = Engine(prices=prices)
    backend = FakeBackend(script=["a b c", "d", "e f"])
    call(engine, backend, request("one two", role="coordinator", agent=None))
    call(engine, backend, request("x", agent=0))
    call(engine, backend, request("y", agent=1))
    ledger = engine.ledger("eval")
    assert ledger.by_role["coordinator"].completion == 3 and ledger.by_role["executor"].calls == 2
    assert set(ledger.by_agent) == {"coordinator", "executor:0", "executor:1"}
    assert ledger.by_model["fake-model"].calls == 3
    assert ledger.cost == pytest.approx(((2 + 1 + 1) * 1.0 + (3 + 1 + 2) * 2.0) / 1e6)


def test_cost_limit_stops_before_it_is_exceeded():
    # Each call really costs about $0.101 (1 + 100 tokens at $1000/M) and is estimated at ~$0.108 at
    # worst, so two calls fit under $0.25 and a third could pass it: it must not start.
    prices = PriceTable(models={"fake-model": ModelPrice(prompt=1000.0, completion=1000.0)})
    engine = Engine(prices=prices, cost_limit=0.25)
    backend = FakeBackend(responder=lambda req: "w " * 100)
    made = 0
    with pytest.raises(CostLimitReached):
        for i in range(10):
            call(engine, backend, request(f"q{i}", max_tokens=100))
            made += 1
    assert made == 2 and engine.stopped == "cost_limit" and engine.spent <= 0.25
    with pytest.raises(CostLimitReached):  # once stopped, nothing new starts
        call(engine, backend, request("later", max_tokens=1))


def test_cost_limit_needs_a_price_for_the_model():
    engine = Engine(prices=PriceTable(models={}), cost_limit=1.0)
    with pytest.raises(ConfigError, match="no|needs a price for model 'fake-model'"):
        call(engine, FakeBackend(echo=True), request())


def test_price_table_file_errors(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text("gpt-x: {prompt: 0.15, completion: 0.6}\n")
    assert PriceTable.load(path).price("gpt-x").completion == 0.6
    path.write_text("gpt-x: {prompt: 0.15}\n")
    with pytest.raises(ConfigError, match="bad entry at 'models.gpt-x.completion'"):
        PriceTable.load(path)
    with pytest.raises(ConfigError, match="does not exist"):
        PriceTable.load(tmp_path / "missing.yaml")
