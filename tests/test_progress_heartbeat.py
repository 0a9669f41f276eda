"""The plain progress display says something while calls are in flight, even when no episode finishes
for minutes (a slow server): calls running, the oldest call's age and the retries so far. The
heartbeat interval is 30 s in a run; these tests set it to a few tens of milliseconds."""

from __future__ import annotations

import asyncio

import pytest

import econash
from econash import display
from econash.config_types import RetryConfig
from econash.display import Progress
from econash.engine.engine import Engine
from econash.errors import BackendError
from econash.testing import FakeBackend
from econash.types import LLMRequest, Message

HEARTBEAT_S = 0.05


@pytest.fixture()
def fast_heartbeat(monkeypatch):
    monkeypatch.setattr(display, "HEARTBEAT_EVERY_S", HEARTBEAT_S, raising=False)


def heartbeats(text: str) -> list[str]:
    return [line for line in text.splitlines() if "oldest call" in line]


def request() -> LLMRequest:
    return LLMRequest(messages=[Message(role="user", content="What is 2+2?")], role="executor")


def test_a_run_hears_a_heartbeat_at_least_every_30_seconds():
    assert 0 < display.HEARTBEAT_EVERY_S <= 30.0


def test_plain_heartbeat_while_calls_are_in_flight_and_silence_when_idle(fast_heartbeat, capsys):
    """Two calls of 0.4 s (one retried once): heartbeat lines with the calls, their age and the retry;
    then 0.4 s with nothing in flight: no heartbeat."""
    backend = FakeBackend(script=[ConnectionError("reset"), "4", "4"], latency_s=0.4)
    engine = Engine(retry=RetryConfig(max_attempts=3, initial_wait_s=0.01, jitter_s=0.0))

    async def scenario() -> tuple[str, str]:
        with Progress("plain", engine=engine) as progress:
            progress.start_phase("eval", 2)
            progress.started()
            progress.started()
            await asyncio.gather(*(engine.call(backend, request(), phase="eval") for _ in range(2)))
            busy = capsys.readouterr().err
            await asyncio.sleep(0.4)
            return busy, capsys.readouterr().err

    busy, idle = asyncio.run(scenario())
    beats = heartbeats(busy)
    assert len(beats) >= 4, busy
    assert all(line.startswith("econash: eval 0/2 episodes (2 running)") for line in beats), busy
    assert any("calls in flight 2" in line for line in beats), busy
    assert "retries 1" in beats[-1], busy
    ages = [float(line.split("oldest call ")[1].split(" s")[0]) for line in beats]
    assert ages[-1] > ages[0] and ages[-1] >= 0.3, busy  # the retried call's age counts from its first try
    assert heartbeats(idle) == [], idle


def test_a_plain_run_prints_heartbeats_between_episodes(fast_heartbeat, tmp_path, capsys):
    """Through the runner: a 0.3 s call with a 0.05 s heartbeat prints heartbeat lines before the
    episode's own progress line."""
    econash.run(backend="fake", method="cot", test_size=1, display="plain", run_dir=tmp_path / "r",
                cache={"train": False, "eval": False}, backend_options={"script": ["The answer is 5."], "latency_s": 0.3})
    err = capsys.readouterr().err
    beats = heartbeats(err)
    assert len(beats) >= 2 and "calls in flight 1" in beats[0], err
    assert err.index(beats[-1]) < err.index("econash: eval 1/1"), err


@pytest.mark.parametrize("mode", ["none", "rich"])
def test_no_heartbeat_without_the_plain_display(mode, fast_heartbeat, capsys):
    backend = FakeBackend(script=["4"], latency_s=0.3)
    engine = Engine()

    async def scenario() -> None:
        with Progress(mode, engine=engine) as progress:
            progress.start_phase("eval", 1)
            progress.started()
            await engine.call(backend, request(), phase="eval")

    asyncio.run(scenario())
    captured = capsys.readouterr()
    assert heartbeats(captured.err + captured.out) == []
    if mode == "none":
        assert captured.err == ""


def test_the_engine_forgets_a_call_once_it_is_answered_or_fails():
    backend = FakeBackend(script=["4", ValueError("bad request")])
    engine = Engine()
    asyncio.run(engine.call(backend, request(), phase="eval"))
    with pytest.raises(BackendError):
        asyncio.run(engine.call(backend, request(), phase="eval"))
    assert engine.stats.oldest_call_age_s() is None and engine.stats.calls_waiting == 0
