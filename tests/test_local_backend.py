"""The `local` backend: file, option and message checks always; the real SmolLM2-135M model when slow."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import types

import pytest

import econash
from econash.errors import ConfigError, MissingDependencyError
from econash.types import LLMRequest, Message, SamplingParams
from econash_plugins.backends.local import LocalBackend

from conftest import run_cli

# Tests that run llama.cpp; the others check files and messages and need no extra.
needs_llama = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                 reason="install econash[local] to test the local backend")
GARBAGE_GGUF = b"GGUF" + b"\x03\x00\x00\x00" + b"not really a model" * 8


@pytest.fixture(autouse=True)
def llama_cpp_importable(monkeypatch):
    """Construction checks that llama-cpp-python is installed. The tests of files, options and
    messages need nothing more, so where it is absent (no econash[local]) a stand-in module lets them run."""
    if importlib.util.find_spec("llama_cpp") is None:
        monkeypatch.setitem(sys.modules, "llama_cpp", types.ModuleType("llama_cpp"))


def ask(text: str, seed: int = 0, temperature: float = 0.0, max_tokens: int = 16, draw: int = 0) -> LLMRequest:
    return LLMRequest(messages=[Message(role="user", content=text)], draw=draw,
                      sampling=SamplingParams(temperature=temperature, max_tokens=max_tokens, seed=seed))


def local(model: object = None, base_url: str | None = None, **options: object) -> LocalBackend:
    """The backend built as the registry builds it: its options through its Options model."""
    return LocalBackend(LocalBackend.Options(**options), model=str(model) if model is not None else None,
                        base_url=base_url)


def generate_all(backend: LocalBackend, requests: list[LLMRequest]) -> list[str]:
    async def go():
        try:
            return [(await backend.generate(r)).text for r in requests]
        finally:
            await backend.aclose()

    return asyncio.run(go())


def test_missing_model_file_is_one_sentence(tmp_path):
    with pytest.raises(ConfigError, match="does not exist; pass --model"):
        local(tmp_path / "missing.gguf")
    with pytest.raises(ConfigError, match="no --base-url"):
        local(base_url="http://127.0.0.1:1")


def test_missing_llama_cpp_is_named_at_construction(tmp_path, monkeypatch):
    # At construction, so that `econash run --model FILE` stops before it makes a run directory.
    model = tmp_path / "model.gguf"
    model.write_bytes(GARBAGE_GGUF)
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # None: both find_spec and import report it absent
    with pytest.raises(MissingDependencyError) as info:
        local(model)
    assert str(info.value) == ("The local backend needs the 'llama-cpp-python' package; install it with: "
                               "pip install 'econash[local]'.")


def test_text_file_renamed_gguf_fails_at_construction(tmp_path):
    fake = tmp_path / "notes.gguf"
    fake.write_text("these are my notes, not a model\n")
    with pytest.raises(ConfigError, match=r"^Model file '.*notes.gguf' is not a GGUF file; pass --model") as info:
        local(fake)
    assert str(info.value).count(".") >= 1 and "\n" not in str(info.value)


def test_text_file_renamed_gguf_is_one_line_error_in_cli(tmp_path):
    fake = tmp_path / "notes.gguf"
    fake.write_text("hello\n")
    result = run_cli("run", "--model", str(fake), "--test-size", "1", "--display", "plain",
                     "--run-dir", str(tmp_path / "r"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"Error: Model file '{fake}' is not a GGUF file")
    assert "Traceback" not in result.stderr


@needs_llama
def test_gguf_header_but_unloadable_fails_on_first_call_in_one_sentence(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(GARBAGE_GGUF)
    backend = local(broken)  # the header looks right: the load itself must fail
    with pytest.raises(ConfigError, match=r"^The model file '.*broken.gguf' could not be loaded by llama.cpp; ") as info:
        generate_all(backend, [ask("hi")])
    assert "\n" not in str(info.value)
    assert backend.describe_error(info.value) == str(info.value)


def test_options_are_validated_and_n_batch_is_accepted(tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(GARBAGE_GGUF)
    backends = econash.registries().backends
    backend = backends.create("local", {"n_ctx": 512, "n_threads": 1, "n_batch": 64, "seed": 3}, model=str(model))
    assert (backend.n_ctx, backend.n_threads, backend.n_batch, backend.seed) == (512, 1, 64, 3)
    assert backend.capabilities.context_length == 512 and backend.capabilities.max_concurrency == 4
    with pytest.raises(ConfigError, match="n_threads"):
        backends.create("local", {"n_threads": 0}, model=str(model))
    with pytest.raises(ConfigError, match="n_ctx"):  # below llama.cpp's minimum, which breaks long prompts
        backends.create("local", {"n_ctx": 64}, model=str(model))
    with pytest.raises(ConfigError, match="option 'n_bacth'; did you mean 'n_batch'"):
        backends.create("local", {"n_bacth": 64}, model=str(model))


def test_default_threads_fit_the_machine(tmp_path):
    from econash_plugins.backends.local import available_cores

    model = tmp_path / "m.gguf"
    model.write_bytes(GARBAGE_GGUF)
    threads = local(model).n_threads
    assert 1 <= threads <= min(4, available_cores())


def test_cache_identity_tells_files_and_seeds_apart(tmp_path):
    a, b = tmp_path / "a" / "m.gguf", tmp_path / "b" / "m.gguf"
    for path, size in ((a, 1), (b, 2)):
        path.parent.mkdir()
        path.write_bytes(GARBAGE_GGUF * size)
    assert local(a).model == local(b).model == "m"
    assert local(a).cache_identity() != local(b).cache_identity()
    assert local(a, seed=1).cache_identity() != local(a).cache_identity()
    assert local(a).cache_identity() == local(a).cache_identity()


def test_describe_error_names_the_fix_for_a_context_overflow(tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(GARBAGE_GGUF)
    backend = local(model)
    message = backend.describe_error(ValueError("Requested tokens (3000) exceed context window of 2048"))
    assert message == ("the prompt (3000 tokens) does not fit the local model's context of 2048 tokens; "
                       "raise it with -B backend_options.n_ctx=4096 or shorten the prompt.")
    other = backend.describe_error(RuntimeError("llama_decode returned -1"))
    assert "m.gguf" in other and "llama_decode returned -1" in other and "\n" not in other


@needs_llama
@pytest.mark.slow
def test_real_model_answers_with_usage():
    backend = local()

    async def go():
        try:
            return await backend.generate(ask("What is the capital of France?"))
        finally:
            await backend.aclose()

    result = asyncio.run(go())
    assert result.text.strip()
    assert result.usage.prompt_tokens > 5 and 0 < result.usage.completion_tokens <= 16
    assert result.model.startswith("SmolLM2")


@needs_llama
@pytest.mark.slow
def test_eight_concurrent_requests_all_complete_like_sequential_ones():
    backend = local()
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


@needs_llama
@pytest.mark.slow
def test_main_job_runs_offline_with_defaults(tmp_path):
    """`econash run` with no options besides a small test size: econash on the local model and arith,
    offline: untrained and trained policies on the same questions, training in between."""
    result = run_cli("run", "--test-size", "3", "--display", "plain", "--run-dir", str(tmp_path / "r"),
                     timeout=600)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["backend"] == "local" and summary["task"] == "arith" and summary["n_test"] == 3
    assert summary["method"] == "econash" and summary["n_train"] == 16
    # Per question: a strategy (regenerated at most once), three executors and a commitment.
    assert 3 * 5 <= summary["llm_calls"] <= 3 * 6 and summary["tokens"]["completion"] > 0
    assert summary["untrained"]["n_test"] == 3 and summary["llm_calls_train"] >= 16 * 5
    assert len(summary["accuracy_ci"]) == 2 and len(summary["untrained"]["accuracy_ci"]) == 2
    assert len(summary["executor_actions"]) == 3 and summary["comparison"]["n"] == 3
    for policy in ("untrained", "trained"):  # both rows, each with its interval
        assert any(line.split("│")[1].strip() == policy and "[" in line
                   for line in result.stdout.splitlines() if line.count("│") > 3), result.stdout
    assert "trained actions per executor: 1:" in result.stdout and "within noise" in result.stdout


@needs_llama
@pytest.mark.slow
def test_temperature_zero_is_greedy_whatever_came_before():
    """Same prompt at temperature 0: same text from a fresh model, after other prompts, with any seed."""
    prompts = ["What is 17 plus 25?", "Name three colors.", "Tom has 3 apples and buys 5 more. How many now?"]
    fresh = [generate_all(local(), [ask(p, max_tokens=32)])[0] for p in prompts]
    backend = local(seed=7)
    history = [ask(p, max_tokens=32, seed=s) for s in (None, 5) for p in reversed(prompts)]
    texts = generate_all(backend, history)
    assert texts[:3][::-1] == fresh and texts[3:][::-1] == fresh


@needs_llama
@pytest.mark.slow
def test_sampling_is_reproducible_per_seed_and_draw():
    prompt = "Write one short sentence about the sea."
    requests = [ask(prompt, seed=None, temperature=1.0, max_tokens=24, draw=d) for d in (0, 1, 2, 0)]
    first = generate_all(local(seed=11), requests)
    again = generate_all(local(seed=11), requests)
    assert first == again
    assert first[0] == first[3]  # the same draw, later in the same model's history
    assert len(set(first[:3])) > 1  # different draws sample differently


@needs_llama
@pytest.mark.slow
def test_real_context_overflow_is_described():
    backend = local(n_ctx=256)
    with pytest.raises(ValueError) as info:
        generate_all(backend, [ask("word " * 400)])
    assert backend.describe_error(info.value).startswith("the prompt (")
