"""The `local` backend's batched decoding (`-M parallel=N`): answers are those of one call at a time.

The fast tests check options and the rules ported from llama-cpp-python; the slow ones load the real
SmolLM2-135M model and compare the batched path with the serial one (parallel=1), which is
llama-cpp-python's create_chat_completion on a fresh context.
"""

from __future__ import annotations

import asyncio
import ctypes
import importlib.util
import subprocess
import sys
import types

import pytest

from econash.errors import ConfigError
from econash.types import LLMRequest, Message, SamplingParams
from econash_plugins.backends.local import LocalBackend, default_model_path
from econash_plugins.backends.local_batch import chunk_safe_prefix
from econash_plugins.backends.local_plan import RequestPlan, TextAssembly

needs_llama = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                 reason="install econash[local] to test the local backend")
GARBAGE_GGUF = b"GGUF" + b"\x03\x00\x00\x00" + b"not really a model" * 8


@pytest.fixture
def fake_model(tmp_path, monkeypatch):
    if importlib.util.find_spec("llama_cpp") is None:
        monkeypatch.setitem(sys.modules, "llama_cpp", types.ModuleType("llama_cpp"))
    model = tmp_path / "m.gguf"
    model.write_bytes(GARBAGE_GGUF)
    return str(model)


def test_parallel_sets_the_connection_limit_and_excludes_reuse_prefix(fake_model):
    backend = LocalBackend(LocalBackend.Options(), model=fake_model)
    assert backend.parallel == backend.capabilities.max_concurrency == 4 and backend.share_prefix
    assert LocalBackend(LocalBackend.Options(parallel=1), model=fake_model).capabilities.max_concurrency == 1
    assert LocalBackend(LocalBackend.Options(parallel=7), model=fake_model).capabilities.max_concurrency == 7
    # reuse_prefix works one call at a time: it changes the default, and refuses an explicit parallel > 1.
    assert LocalBackend(LocalBackend.Options(reuse_prefix=True), model=fake_model).capabilities.max_concurrency == 1
    with pytest.raises(ConfigError, match="^reuse_prefix works one call at a time: add -M parallel=1"):
        LocalBackend(LocalBackend.Options(parallel=2, reuse_prefix=True), model=fake_model)


def test_chunk_after_a_shared_prefix_never_has_one_token_unless_a_fresh_chunk_does():
    assert chunk_safe_prefix(63, 64, 512) == 62  # the last prompt token alone: keep two
    assert chunk_safe_prefix(62, 64, 512) == 62
    assert chunk_safe_prefix(0, 64, 512) == 0
    assert chunk_safe_prefix(512, 513, 512) == 512  # a fresh evaluation has that one-token chunk too
    assert chunk_safe_prefix(511, 600, 512) == 510  # [511, 512) would be one token; fresh has 512
    assert chunk_safe_prefix(511, 512, 512) == 510


class Letters:
    """A stand-in for the model's detokenizer: token t is the bytes in TABLE[t]."""

    TABLE = {1: b"ab", 2: b".", 3: b"\xc3", 4: b"\xa9", 5: b"cd"}

    def detokenize(self, tokens, prev_tokens=None):
        return b"".join(self.TABLE[t] for t in tokens)


def assemble(tokens, max_tokens=10, stop=(), end=99):
    plan = RequestPlan(prompt=[7, 7], max_tokens=max_tokens, stop=[s.encode() for s in stop], temperature=0.0,
                       top_k=40, top_p=1.0, min_p=0.05, typical_p=1.0, seed=0, repeat_penalty=1.0,
                       frequency_penalty=0.0, presence_penalty=0.0)
    assembly = TextAssembly(plan=plan, llama=Letters(), is_end=lambda token: token == end)
    taken = 0
    for token in tokens:
        taken += 1
        if assembly.add(token, [7, 7], None):
            break
    return assembly.response(), taken


def test_text_assembly_follows_llama_cpp_pythons_rules():
    # A stop string cuts the text before it; the token that completed it is counted.
    response, _ = assemble([1, 2, 5], stop=["."])
    assert response["choices"][0]["message"]["content"] == "ab"
    assert response["choices"][0]["finish_reason"] == "stop" and response["usage"]["completion_tokens"] == 2
    # The end-of-generation token ends the answer and is not counted.
    response, _ = assemble([1, 99, 1])
    assert (response["choices"][0]["finish_reason"], response["usage"]["completion_tokens"]) == ("stop", 1)
    # max_tokens, and usage counting the prompt.
    response, _ = assemble([1, 5, 1, 5], max_tokens=3)
    assert response["choices"][0]["message"]["content"] == "abcdab"
    assert response["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    # Half a UTF-8 character is held back, even past max_tokens, until it is whole.
    response, taken = assemble([1, 3, 4, 1], max_tokens=2)
    assert taken == 3 and response["usage"]["completion_tokens"] == 3
    assert response["choices"][0]["message"]["content"] == "abé"


def ask(text: str, temperature: float = 0.0, max_tokens: int = 40, seed: int = 0,
        stop: list[str] | None = None) -> LLMRequest:
    return LLMRequest(messages=[Message(role="user", content=text)],
                      sampling=SamplingParams(temperature=temperature, max_tokens=max_tokens, seed=seed, stop=stop))


QUESTION = "Question: Tom has 3 apples and buys 5 more, then gives 2 away. How many apples does he have now?"
# An episode's shape: executors that share the question (and here a strategy), greedy and sampled,
# with and without stop strings, plus unrelated calls; two identical prompts at different settings.
MIXED = [
    ask(QUESTION + " Strategy: count step by step."),
    ask(QUESTION + " Strategy: write an equation.", temperature=0.8, seed=3),
    ask(QUESTION + " Strategy: count step by step.", temperature=0.9, seed=5, stop=["\n"]),
    ask("Name three colors.", temperature=1.0, seed=7, stop=["."]),
    ask("Write a poem about rain.", temperature=0.7, seed=1, stop=["\n\n"], max_tokens=60),
    ask("Say hi.", max_tokens=5),
]


def outcome(result) -> tuple:
    return result.text, result.usage.prompt_tokens, result.usage.completion_tokens, result.finish_reason


def serve(backend: LocalBackend, order: list[int], groups: list[int], delay_s: float = 0.0) -> tuple[dict, LocalBackend]:
    """Submit MIXED's requests in `order`, `groups` of them at a time (each group concurrently, the next
    group `delay_s` after the previous started: 0 waits for it to finish)."""

    async def go():
        results = {}
        try:
            position, running = 0, []
            for size in groups:
                batch = order[position:position + size]
                position += size
                task = asyncio.gather(*(backend.generate(MIXED[i]) for i in batch))
                if delay_s:
                    running.append((batch, asyncio.ensure_future(task)))
                    await asyncio.sleep(delay_s)
                else:
                    results.update(zip(batch, map(outcome, await task)))
            for batch, task in running:
                results.update(zip(batch, map(outcome, await task)))
            return results
        finally:
            await backend.aclose()

    return asyncio.run(go()), backend


@pytest.fixture(scope="module")
def serial_answers() -> dict:
    n = len(MIXED)
    return serve(LocalBackend(LocalBackend.Options(parallel=1)), list(range(n)), [1] * n)[0]


@needs_llama
@pytest.mark.slow
@pytest.mark.parametrize("order, groups, delay_s, share_prefix", [
    ([0, 1, 2, 3, 4, 5], [6], 0.0, True),           # all at once (two wait for a free slot)
    ([5, 4, 3, 2, 1, 0], [6], 0.0, True),           # the other way round
    ([2, 0, 4, 1, 5, 3], [2, 2, 2], 0.0, True),     # pairs, one after another: prefixes from finished calls
    ([3, 0, 1, 2, 4, 5], [1, 1, 2, 2], 0.3, True),  # arriving while others decode: joining mid-decode
    ([0, 1, 2, 3, 4, 5], [6], 0.0, False),          # without prefix sharing
])
def test_batched_answers_equal_serial_ones_in_any_order_and_grouping(serial_answers, order, groups, delay_s,
                                                                     share_prefix):
    backend = LocalBackend(LocalBackend.Options(parallel=4, share_prefix=share_prefix))
    answers, _ = serve(backend, order, groups, delay_s)
    assert answers == serial_answers


@needs_llama
@pytest.mark.slow
def test_a_cancelled_call_frees_its_slot_and_the_others_are_unchanged(serial_answers):
    backend = LocalBackend(LocalBackend.Options(parallel=2))

    async def go():
        try:
            first = outcome(await backend.generate(MIXED[5]))  # loads the model
            with pytest.raises(asyncio.TimeoutError):  # the engine's timeout cancels generate this way
                await asyncio.wait_for(backend.generate(ask("Write a very long essay about the sea.", max_tokens=1500)), 0.5)
            return [first] + [outcome(r) for r in await asyncio.gather(*(backend.generate(MIXED[i]) for i in (0, 3)))]
        finally:
            await backend.aclose()

    assert asyncio.run(go()) == [serial_answers[5], serial_answers[0], serial_answers[3]]


def quantize(source: str, target: str, file_type: int) -> None:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.allow_requantize, params.nthread = file_type, True, 2
    assert llama_cpp.llama_model_quantize(source.encode(), target.encode(), ctypes.byref(params)) == 0


@needs_llama
@pytest.mark.slow
def test_a_model_whose_kernels_mix_rows_is_decoded_in_narrower_steps(tmp_path):
    """Q4_K weights are repacked for a kernel that computes rows four at a time: the probe must find
    it, and the answers must still be the serial ones."""
    import llama_cpp

    model = str(tmp_path / "q4_k_m.gguf")
    quantize(str(default_model_path()), model, llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M)
    order = list(range(len(MIXED)))
    serial, _ = serve(LocalBackend(LocalBackend.Options(parallel=1), model=model), order, [1] * len(order))
    batched, backend = serve(LocalBackend(LocalBackend.Options(parallel=6), model=model), order, [len(order)])
    assert batched == serial
    assert backend.probe == {"exact_width": 3, "share_prefix": False}


UNCLOSED = """
import asyncio, sys
from econash.types import LLMRequest, Message, SamplingParams
from econash_plugins.backends.local import LocalBackend
backend = LocalBackend(LocalBackend.Options(parallel=int(sys.argv[1])))
request = LLMRequest(messages=[Message(role="user", content="Say hi.")], sampling=SamplingParams(temperature=0.0, max_tokens=4))
print(asyncio.run(backend.generate(request)).usage.completion_tokens)
"""


@needs_llama
@pytest.mark.slow
@pytest.mark.parametrize("parallel", [1, 3])
def test_a_backend_nobody_closes_does_not_keep_the_process_alive(parallel):
    """A library user's script that never calls aclose (or one that crashes) must still exit: the
    batched decoder's loop waits for requests on the backend's thread."""
    result = subprocess.run([sys.executable, "-c", UNCLOSED, str(parallel)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "4"


def test_a_context_that_does_not_fit_names_both_fixes(fake_model):
    failure = RuntimeError("Failed to create llama_context")
    batched = LocalBackend(LocalBackend.Options(), model=fake_model)._load_failure(failure)
    assert "for each of 4 parallel calls" in batched and "-M n_ctx=1024" in batched and "-M parallel=1" in batched
    alone = LocalBackend(LocalBackend.Options(parallel=1), model=fake_model)._load_failure(failure)
    assert "-M n_ctx=1024" in alone and "parallel" not in alone
