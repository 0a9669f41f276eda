"""Several base URLs, replicas of one model, through the real openai SDK against loopback servers:
calls spread over them, a replica that fails (500s, killed) is taken out and its calls retried on
another, nothing is lost or counted twice, summary.json counts calls per replica, the response
cache does not care which replica answered, and no secret in a URL reaches the counts."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

import econash
from econash.cli_api import load_run_config
from econash.config_types import RunConfig
from econash.engine.engine import Engine
from econash.errors import ConfigError, RetriesExhaustedError
from econash.runner import Components, run_async
from econash.summary_text import endpoints_text
from econash.testing.anthropic_server import MessagesServer
from econash.testing.openai_server import FaultServer
from econash.urls import shown_url

ANSWER = "The answer is 7."
FAST_RETRY = {"max_attempts": 6, "initial_wait_s": 0.01, "max_wait_s": 0.05, "jitter_s": 0.0}


def replicas_config(servers: list[FaultServer], tmp_path, name: str = "run", **fields) -> RunConfig:
    values = {"backend": "openai", "base_url": [s.base_url for s in servers], "model": "m", "method": "cot",
              "display": "none", "run_dir": tmp_path / name, "cache": {"eval": False}, "test_size": 24,
              "concurrency": 6, "retry": FAST_RETRY, **fields}
    return RunConfig.model_validate(values)


def run(config: RunConfig):
    return asyncio.run(run_async(config, registries=econash.registries()))


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def check_nothing_lost_or_doubled(summary, run_dir, questions: int) -> None:
    """Every question once; every call answered by exactly one replica; every failed attempt retried."""
    assert summary.complete and summary.n_test == questions
    ids = [row["id"] for row in lines(run_dir / "results.jsonl")]
    assert len(ids) == len(set(ids)) == questions
    calls = [e for e in lines(run_dir / "events.jsonl") if e["type"] == "llm_call"]
    assert len(calls) == summary.llm_calls == questions  # cot: one call per question
    assert sum(c.calls for c in summary.by_endpoint.values()) == summary.llm_calls
    assert sum(c.failures for c in summary.by_endpoint.values()) == summary.retries


def test_calls_spread_over_the_replicas_and_the_summary_counts_them(tmp_path):
    with FaultServer(responder=lambda body: ANSWER, latency_s=0.05) as a, \
            FaultServer(responder=lambda body: ANSWER, latency_s=0.05) as b, \
            FaultServer(responder=lambda body: ANSWER, latency_s=0.05) as c:
        summary = run(replicas_config([a, b, c], tmp_path))
        served = {s.base_url: s.request_count for s in (a, b, c)}
    check_nothing_lost_or_doubled(summary, tmp_path / "run", 24)
    assert summary.retries == 0
    assert {label: c.calls for label, c in summary.by_endpoint.items()} == served
    assert min(served.values()) >= 4, served  # 6 calls in flight over 3 replicas: each takes its share
    first = min(served)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["by_endpoint"][first]["calls"] == served[first]
    assert endpoints_text(summary).startswith(f"calls per replica: {first} {served[first]}")


def test_a_replica_answering_500s_is_taken_out_and_its_calls_go_to_the_others(tmp_path):
    with FaultServer(responder=lambda body: ANSWER) as good, FaultServer(responder=lambda body: ANSWER) as bad:
        bad.set_persistent_fault("server_error")
        config = replicas_config([good, bad], tmp_path, retry={**FAST_RETRY, "cooldown_s": 30.0})
        summary = run(config)
        bad_requests, bad_url = bad.request_count, bad.base_url
    check_nothing_lost_or_doubled(summary, tmp_path / "run", 24)
    # at most the calls sent before its first failure came back; then 30 s out, longer than the run
    assert 1 <= bad_requests <= 6
    assert summary.by_endpoint[bad_url].model_dump() == {"calls": 0, "failures": bad_requests}
    assert summary.retries == bad_requests


def test_a_replica_killed_mid_run_loses_nothing(tmp_path):
    killed = threading.Event()

    def answer_then_die(body: dict) -> str:
        if victim.request_count >= 4 and not killed.is_set():
            killed.set()  # stopped from another thread: stop() waits for this handler
            threading.Thread(target=victim.stop).start()
        return ANSWER

    with FaultServer(responder=lambda body: ANSWER, latency_s=0.05) as survivor, \
            FaultServer(responder=answer_then_die, latency_s=0.05) as victim:
        victim_url, survivor_url = victim.base_url, survivor.base_url
        summary = run(replicas_config([survivor, victim], tmp_path, retry={**FAST_RETRY, "cooldown_s": 0.05}))
    assert killed.is_set()
    check_nothing_lost_or_doubled(summary, tmp_path / "run", 24)
    assert summary.by_endpoint[victim_url].calls < 12 <= summary.by_endpoint[survivor_url].calls
    retried = [e for e in lines(tmp_path / "run" / "events.jsonl") if e["type"] == "retry"]
    assert {e["endpoint"] for e in retried} == {victim_url}  # only the killed replica failed


def test_anthropic_and_together_route_over_replicas_too(tmp_path, monkeypatch):
    """Every backend built on a base URL: anthropic (one replica overloaded, 529) and together (host roots)."""
    pytest.importorskip("anthropic")
    pytest.importorskip("together")
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "TOGETHER_API_KEY", "TOGETHER_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with MessagesServer(responder=lambda body: ANSWER) as good, MessagesServer(responder=lambda body: ANSWER) as bad:
        bad.set_persistent_fault("overloaded")
        config = replicas_config([], tmp_path, "anthropic", backend="anthropic", base_url=[good.url, bad.url],
                                 retry={**FAST_RETRY, "cooldown_s": 30.0})
        summary = run(config)
        bad_requests, good_url, bad_url = bad.request_count, good.url, bad.url
    check_nothing_lost_or_doubled(summary, tmp_path / "anthropic", 24)
    assert summary.by_endpoint[good_url].calls == 24 and summary.by_endpoint[bad_url].failures == bad_requests >= 1
    with FaultServer(responder=lambda body: ANSWER) as a, FaultServer(responder=lambda body: ANSWER) as b:
        summary = run(replicas_config([], tmp_path, "together", backend="together", base_url=[a.url, b.url]))
        served = {a.url: a.request_count, b.url: b.request_count}
    check_nothing_lost_or_doubled(summary, tmp_path / "together", 24)
    assert {label: c.calls for label, c in summary.by_endpoint.items()} == served and min(served.values()) > 0


def test_when_every_replica_is_down_the_run_stops_with_one_sentence(tmp_path):
    with FaultServer() as a, FaultServer() as b:
        config = replicas_config([a, b], tmp_path, retry={**FAST_RETRY, "max_attempts": 3}, test_size=2)
        urls = (a.base_url, b.base_url)
    with pytest.raises(RetriesExhaustedError) as caught:  # both stopped: connections refused
        run(config)
    assert "could not connect" in str(caught.value) and "gave up after 3 attempts" in str(caught.value)
    failed = [e for e in lines(tmp_path / "run" / "events.jsonl") if e["type"] == "call_failed"]
    assert failed and failed[0]["endpoint"] in urls


def test_the_cache_key_does_not_depend_on_which_replica_answered(tmp_path):
    with FaultServer(responder=lambda body: ANSWER) as a, FaultServer(responder=lambda body: ANSWER) as b:
        cache = {"eval": True, "path": tmp_path / "cache.sqlite"}
        first = run(replicas_config([a, b], tmp_path, "first", cache=cache, test_size=8))
        sent = a.request_count + b.request_count
        again = run(replicas_config([b, a], tmp_path, "again", cache=cache, test_size=8))  # other order
        assert a.request_count + b.request_count == sent == 8
    assert first.cached_calls == 0 and again.cached_calls == again.llm_calls == 8
    assert again.by_endpoint == {}  # a cached reply was answered by no replica


def test_one_url_keeps_its_cache_identity_and_has_no_replica_counts(tmp_path):
    with FaultServer(responder=lambda body: ANSWER) as server:
        config = replicas_config([server], tmp_path, test_size=2)
        assert config.base_url == server.base_url  # one URL stays a string, as before
        components = Components.build(config, econash.registries())
        assert components.replicas == []
        summary = run(config)
        url = server.base_url
    assert summary.by_endpoint == {} and endpoints_text(summary) is None
    assert Engine().cache_identity(components.backend) == {"base_url": url}  # the key as before


def test_no_secret_in_a_url_reaches_the_counts(tmp_path):
    with FaultServer(responder=lambda body: ANSWER) as a, FaultServer(responder=lambda body: ANSWER) as b:
        secret_urls = [f"http://user:hunter22@127.0.0.1:{s.port}/v1" for s in (a, b)]
        config = replicas_config([a, b], tmp_path, test_size=4).model_copy(update={"base_url": secret_urls})
        summary = run(config)
        urls = {a.base_url, b.base_url}
    assert set(summary.by_endpoint) == urls
    for name in ("summary.json", "events.jsonl"):
        text = (tmp_path / "run" / name).read_text()
        assert "hunter22" not in text
    assert shown_url("https://u:p@[::1]:8443/v1/?token=x#f") == "https://[::1]:8443/v1"


@pytest.mark.parametrize("given,expected", [
    ({"base_url": "http://a:1/v1,http://b:2/v1"}, ["http://a:1/v1", "http://b:2/v1"]),
    ({"base_url": ("http://a:1/v1", "http://b:2/v1,http://c:3/v1")}, ["http://a:1/v1", "http://b:2/v1",
                                                                       "http://c:3/v1"]),
    ({"base_url": ("http://a:1/v1",)}, "http://a:1/v1"),
    ({"base_url": "http://a:1/v1,"}, "http://a:1/v1"),
    ({"base_url": ()}, None),
])
def test_base_url_flags_name_one_server_or_several(given, expected):
    assert load_run_config(given).base_url == expected


def test_base_url_lists_in_yaml_and_executors(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("base_url: [http://a:1/v1, http://b:2/v1]\ntopology: hetero\n"
                    "topology_options: {executors: [{backend: openai, base_url: 'http://c:3/v1,http://d:4/v1'}]}\n")
    config = load_run_config({"config_file": path})
    assert config.base_url == ["http://a:1/v1", "http://b:2/v1"]
    with FaultServer(responder=lambda body: ANSWER) as c, FaultServer(responder=lambda body: ANSWER) as d:
        hetero = replicas_config([c], tmp_path, topology="hetero", topology_options={"executors": [
            {"backend": "openai", "model": "m", "base_url": [c.base_url, d.base_url]}]})
        components = Components.build(hetero, econash.registries())
        urls = [c.base_url, d.base_url]
    assert len(components.replicas) == 3  # each of the three executors has the two replicas
    assert all([label for label, _ in group] == urls for _, group in components.replicas)


@pytest.mark.parametrize("value,words", [
    ("http://a:1/v1,notaurl", ["'notaurl' is not", "http://"]),
    ("http://a:1/v1,http://a:1/v1", ["http://a:1/v1 twice", "once"]),
    ("notaurl", ["must be an http://", "'notaurl'"]),
])
def test_bad_base_urls_are_one_sentence_naming_the_fix(value, words):
    with pytest.raises(ConfigError) as caught:
        load_run_config({"base_url": value})
    assert all(word in str(caught.value) for word in words), str(caught.value)
