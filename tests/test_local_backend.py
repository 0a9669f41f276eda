"""The `local` backend on the real SmolLM2-135M model (slow: it loads the model)."""

from __future__ import annotations

import asyncio
import json

import pytest

from econash.errors import ConfigError
from econash.types import LLMRequest, Message, SamplingParams

from conftest import run_cli

pytest.importorskip("llama_cpp", reason="install econash[local] to test the local backend")
from econash_plugins.local import LocalBackend  # noqa: E402


def ask(text: str, seed: int = 0) -> LLMRequest:
    return LLMRequest(messages=[Message(role="user", content=text)],
                      sampling=SamplingParams(temperature=0.0, max_tokens=16, seed=seed))


def test_missing_model_file_is_one_sentence(tmp_path):
    with pytest.raises(ConfigError, match="does not exist; pass --model"):
        LocalBackend(model=str(tmp_path / "missing.gguf"))
    with pytest.raises(ConfigError, match="no --base-url"):
        LocalBackend(base_url="http://127.0.0.1:1")


@pytest.mark.slow
def test_real_model_answers_with_usage():
    backend = LocalBackend()

    async def go():
        try:
            return await backend.generate(ask("What is the capital of France?"))
        finally:
            await backend.aclose()

    result = asyncio.run(go())
    assert result.text.strip()
    assert result.usage.prompt_tokens > 5 and 0 < result.usage.completion_tokens <= 16
    assert result.model.startswith("SmolLM2")


@pytest.mark.slow
def test_eight_concurrent_requests_all_complete_like_sequential_ones():
    backend = LocalBackend()
    prompts = [f"Count from {i} to {i + 3}." for i in range(8)]

    async def go():
        try:
            together = await asyncio.gather(*(backend.generate(ask(p)) for p in prompts))
            alone = [await backend.generate(ask(p)) for p in prompts]
            return together, alone
        finally:
            await backend.aclose()

    together, alone = asyncio.run(go())
    # Greedy decoding: concurrent calls must give exactly what one-by-one calls give.
    assert [r.text for r in together] == [r.text for r in alone]
    assert all(r.usage.completion_tokens > 0 for r in together)


@pytest.mark.slow
def test_main_job_runs_offline_with_defaults(tmp_path):
    """`econash run` with no options besides a small test size: local model, arith, offline."""
    result = run_cli("run", "--test-size", "3", "--display", "plain", "--run-dir", str(tmp_path / "r"),
                     timeout=600)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["backend"] == "local" and summary["task"] == "arith" and summary["n_test"] == 3
    assert summary["tokens"]["completion"] > 0 and summary["llm_calls"] == 3
