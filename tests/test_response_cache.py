"""The response cache off the event loop (reads, writes and commits on a worker thread; a hit
commits nothing) and `econash cache prune --older-than AGE`."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest
from click.testing import CliRunner

from econash.cli import build_cli
from econash.engine.cache import ResponseCache, parse_age
from econash.engine.engine import Engine
from econash.errors import ConfigError, DamagedCacheError
from econash.plugins import make_plugin_manager
from econash.testing import FakeBackend
from econash.types import LLMRequest, LLMResult, Message, SamplingParams, Usage


def request(text: str = "q") -> LLMRequest:
    return LLMRequest(messages=[Message(role="user", content=text)], sampling=SamplingParams(max_tokens=16),
                      role="executor", agent=0)


def traced(cache: ResponseCache) -> list[tuple[int, str]]:
    """Every SQL statement the cache runs from now on, with the thread that ran it."""
    statements: list[tuple[int, str]] = []
    cache._db.set_trace_callback(lambda sql: statements.append((threading.get_ident(), sql)))
    return statements


def test_the_engine_reads_and_writes_the_cache_off_the_event_loop(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    statements = traced(cache)
    engine = Engine(cache=cache)
    backend = FakeBackend(echo=True)

    async def two_calls() -> int:
        first, _ = await engine.call(backend, request(), phase="eval")
        again, _ = await engine.call(backend, request(), phase="eval")
        assert not first.cached and again.cached
        return threading.get_ident()

    loop_thread = asyncio.run(two_calls())
    kinds = {sql.split()[0].upper() for _, sql in statements}
    assert {"SELECT", "INSERT"} <= kinds, statements
    on_loop = [sql for thread, sql in statements if thread == loop_thread]
    assert on_loop == [], f"ran on the event loop: {on_loop}"
    cache.close()


def test_a_hit_commits_nothing_and_its_count_is_written_at_close(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = ResponseCache(path)
    result = LLMResult(text="4", usage=Usage(prompt_tokens=1, completion_tokens=1), model="m")
    cache.put("k", "fake", result)
    statements = traced(cache)
    assert cache.get("k").cached and cache.get("k").text == "4"
    assert [sql for _, sql in statements if not sql.upper().startswith("SELECT")] == []
    cache.close()
    reopened = ResponseCache(path, for_writing=False)
    assert reopened.stats()["by_model"] == [{"provider": "fake", "model": "m", "entries": 1, "hits": 2}]
    assert reopened._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # safe across processes
    reopened.close()


def test_a_damaged_cache_is_still_one_sentence_from_the_worker_thread(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(bytes(range(256)) * 40)
    cache._db.close()
    cache._db = sqlite3.connect(garbage, check_same_thread=False)  # the file went bad under a running run
    with pytest.raises(DamagedCacheError, match=r"c\.sqlite' is damaged .*; clear it with `econash cache clear"):
        asyncio.run(Engine(cache=cache).call(FakeBackend(echo=True), request(), phase="eval"))


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("12h", 43200), ("7d", 604800), ("2w", 1209600),
                                               ("1.5h", 5400), ("90s", 90), (" 7D ", 604800)])
def test_ages(text, seconds):
    assert parse_age(text) == seconds


def invoke(*args: str):
    return CliRunner().invoke(build_cli(make_plugin_manager(warn=False)), list(args))


def test_cache_prune_removes_only_the_old_entries(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = ResponseCache(path)
    for key in ("old", "new"):
        cache.put(key, "fake", LLMResult(text=key, usage=Usage(prompt_tokens=1, completion_tokens=1), model="m"))
    cache._db.execute("UPDATE responses SET created = ? WHERE key = 'old'", (time.time() - 8 * 86400,))
    cache._db.commit()
    cache.close()
    result = invoke("cache", "prune", "--older-than", "7d", "--path", str(path))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "removed 1 cached responses older than 7d"
    reopened = ResponseCache(path, for_writing=False)
    assert reopened.get("old") is None and reopened.get("new").text == "new"
    reopened.close()
    assert invoke("cache", "prune", "--older-than", "2w", "--path", str(path)).output.strip() == \
        "removed 0 cached responses older than 2w"


@pytest.mark.parametrize("age", ["7x", "seven days", "-1d", "d"])
def test_cache_prune_with_a_bad_age_is_one_sentence(tmp_path, age):
    result = invoke("cache", "prune", "--older-than", age, "--path", str(tmp_path / "c.sqlite"))
    assert result.exit_code == 2
    assert result.output.strip() == (f"Error: --older-than '{age}' is not an age; give a number and a unit "
                                     "(s, m, h, d or w), e.g. 30m, 12h, 7d or 2w.")
    with pytest.raises(ConfigError):
        parse_age(age)
