"""Concurrent requests on the `local` backend: batched (parallel=N) against serial (parallel=1) and raw
llama-cpp-python single-stream, and the physical limits of the machine; used by benchmarks/backends.py.

Every variant of a repeat gets the same prompts (fresh ones each repeat, so that no variant finds them
in a cache) at temperature 0, and the aggregate rate is completion tokens over the wall time from the
first submission to the last answer. Answers must be identical across variants (the batched path
promises it), so the variants produce the same number of tokens; mismatches are counted. Ratios are
taken within each repeat and their median is reported.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from typing import Any, Callable

import numpy as np

from econash.types import LLMRequest, Message, SamplingParams
from econash_plugins.backends.local import LocalBackend

STORY = "Write a long, detailed story about a lighthouse keeper who finds a message in a bottle."
# An episode's executors: one question and strategy, then each executor's own instruction.
SHARED = ("A farmer keeps a ledger of his animals. {tag} On Monday he had 14 cows, 23 sheep and 9 goats. "
          "On Tuesday he sold 3 cows and bought twice as many sheep as the cows he sold. On Wednesday "
          "a storm scattered a third of the goats, and he found only half of those again. On Thursday "
          "his neighbour gave him 5 sheep in exchange for 2 cows, and on Friday he counted everything "
          "once more, writing each number next to the day. Question: how many animals does he have on "
          "Friday, and how many of each kind? Strategy: work through the week one day at a time, "
          "keeping a running count of each kind of animal, then add the three counts together. ")
SHARED_SMOKE = "A farmer has 14 cows {tag} and sells 3. Question: how many are left? Strategy: subtract. "
EXECUTORS = ("Executor 1: answer in full sentences.", "Executor 2: answer with a table.",
             "Executor 3: answer with equations.")


def memory_bandwidth(megabytes: int = 256, repeats: int = 5) -> float:
    """Copy bandwidth in GB/s (bytes read plus bytes written), best of `repeats` numpy copies."""
    source = np.ones(megabytes * 2**20 // 8)
    target = np.empty_like(source)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - started)
    return 2 * source.nbytes / best / 1e9


def prompt_rate(llama: Any, tokens: int = 128, repeats: int = 3) -> float:
    """Tokens per second evaluating a `tokens`-token prompt: rows that share every weight read, so the
    rate a batch could reach at best when computing, not reading weights, bounds a step."""
    prompt = llama.tokenize(STORY.encode() * 8, add_bos=False)[:tokens]
    best = float("inf")
    for _ in range(repeats):
        llama.reset()
        started = time.perf_counter()
        llama.eval(prompt)
        best = min(best, time.perf_counter() - started)
    llama.reset()
    return len(prompt) / best


def decode_rate(llama: Any, steps: int = 32, repeats: int = 3) -> float:
    """One stream's generation steps per second (one token each), its prompt aside."""
    prompt = llama.tokenize(STORY.encode(), add_bos=False)
    best = float("inf")
    for _ in range(repeats):
        llama.reset()
        llama.eval(prompt)
        started = time.perf_counter()
        for token in prompt[:steps]:
            llama.eval([token])
        best = min(best, time.perf_counter() - started)
    llama.reset()
    return min(steps, len(prompt)) / best


def limits(model_bytes: int, bandwidth_gbs: float, rate_prompt: float, single_stream: float,
           counts: list[int]) -> dict[str, Any]:
    """What the hardware allows: a step reads every weight once (model_bytes at the copy bandwidth)
    and computes each row at no more than the prompt rate."""
    step_floor_s = model_bytes / (bandwidth_gbs * 1e9)
    ceilings = {str(n): min(n / step_floor_s, rate_prompt) for n in counts}
    return {"model_bytes": model_bytes, "copy_bandwidth_gb_s": bandwidth_gbs, "step_floor_ms": step_floor_s * 1000,
            "prompt_tokens_per_s": rate_prompt, "single_stream_tokens_per_s": single_stream,
            "ceiling_tokens_per_s": ceilings,
            "ceiling_over_single_stream": {n: rate / single_stream for n, rate in ceilings.items()}}


def _request(text: str, max_tokens: int) -> LLMRequest:
    return LLMRequest(messages=[Message(role="user", content=text)],
                      sampling=SamplingParams(temperature=0.0, max_tokens=max_tokens, seed=0))


def _through(backend: LocalBackend, loop: asyncio.AbstractEventLoop) -> Callable[[list[str], int], list[tuple[str, int]]]:
    """All prompts submitted at once, as the engine submits an episode's executors."""

    def run(prompts: list[str], max_tokens: int) -> list[tuple[str, int]]:
        async def together() -> list[tuple[str, int]]:
            results = await asyncio.gather(*(backend.generate(_request(p, max_tokens)) for p in prompts))
            return [(r.text, r.usage.completion_tokens) for r in results]

        return loop.run_until_complete(together())

    return run


def _raw(llama: Any) -> Callable[[list[str], int], list[tuple[str, int]]]:
    """llama-cpp-python single-stream: one prompt after another, each from a fresh context."""

    def run(prompts: list[str], max_tokens: int) -> list[tuple[str, int]]:
        out = []
        for prompt in prompts:
            llama.reset()
            response = llama.create_chat_completion(messages=[{"role": "user", "content": prompt}], temperature=0.0,
                                                    max_tokens=max_tokens, seed=0)
            out.append((response["choices"][0]["message"]["content"], response["usage"]["completion_tokens"]))
        return out

    return run


def _scenarios(counts: list[int], repeat: int, shared: str) -> dict[str, list[str]]:
    """Prompts per scenario, new for each scenario and repeat so that no cache holds them (they still
    share the chat template's system prompt, as every call does)."""
    tag = f"[run {os.getpid()}-{repeat}"
    scenarios = {f"{n} concurrent": [f"{tag}-{n}] Story {i + 1}. {STORY}" for i in range(n)] for n in counts}
    if 3 in counts:
        scenarios["3 executors, shared prefix"] = [shared.format(tag=f"{tag}-x]") + e for e in EXECUTORS]
    return scenarios


def concurrency(llama: Any, model: str, options: dict[str, Any], counts: list[int], parallel: int,
                max_tokens: int, repeats: int, smoke: bool = False) -> dict[str, Any]:
    """Aggregate completion tokens/s per scenario and variant, with ratios measured within each repeat."""
    loop = asyncio.new_event_loop()
    serial = LocalBackend(LocalBackend.Options(**options, parallel=1), model=model)
    batched = LocalBackend(LocalBackend.Options(**options, parallel=parallel), model=model)
    unshared = LocalBackend(LocalBackend.Options(**options, parallel=parallel, share_prefix=False), model=model)
    variants = {"raw single-stream": _raw(llama), "local serial": _through(serial, loop),
                "local batched": _through(batched, loop), "local batched, share_prefix off": _through(unshared, loop)}
    for run in variants.values():  # load each model and warm it up
        run(["Say hi."], 4)
    rates: dict[str, dict[str, list[float]]] = {}
    mismatches: dict[str, int] = {}
    for repeat in range(repeats):
        for scenario, prompts in _scenarios(counts, repeat, SHARED_SMOKE if smoke else SHARED).items():
            answers = {}
            for name, run in variants.items():  # in turn, so a busy moment costs every variant
                started = time.perf_counter()
                answers[name] = run(prompts, max_tokens)
                wall = time.perf_counter() - started
                rates.setdefault(scenario, {}).setdefault(name, []).append(sum(n for _, n in answers[name]) / wall)
            reference = answers["raw single-stream"]
            mismatches[scenario] = mismatches.get(scenario, 0) + sum(
                got != want for name, got_all in answers.items() for got, want in zip(got_all, reference))
    for backend in (serial, batched, unshared):
        loop.run_until_complete(backend.aclose())
    loop.close()
    table: dict[str, Any] = {}
    for scenario, by_variant in rates.items():
        row: dict[str, Any] = {name: statistics.median(values) for name, values in by_variant.items()}
        for base in ("local serial", "raw single-stream"):
            for name in by_variant:
                if name.startswith("local batched"):
                    row[f"{name} / {base}"] = statistics.median(
                        b / s for b, s in zip(by_variant[name], by_variant[base]))
        row["answers differing from raw"] = mismatches[scenario]
        table[scenario] = row
    return {"scenarios": table, "probe": batched.probe, "parallel": parallel, "repeats": repeats,
            "max_tokens": max_tokens}


def print_concurrency(result: dict[str, Any], bounds: dict[str, Any]) -> None:
    print(f"\nconcurrent requests, aggregate completion tokens/s (median of {result['repeats']}, "
          f"max_tokens {result['max_tokens']}, batched: parallel={result['parallel']}, probe {result['probe']})")
    print(f"{'scenario':<27} {'raw':>7} {'serial':>7} {'batched':>7} {'unshared':>8} {'b/serial':>8} {'u/serial':>8} "
          f"{'b/raw':>6} {'differ':>6}")
    off = "local batched, share_prefix off"
    for scenario, row in result["scenarios"].items():
        print(f"{scenario:<27} {row['raw single-stream']:>7.1f} {row['local serial']:>7.1f} {row['local batched']:>7.1f} "
              f"{row[off]:>8.1f} {row['local batched / local serial']:>8.2f} {row[off + ' / local serial']:>8.2f} "
              f"{row['local batched / raw single-stream']:>6.2f} {row['answers differing from raw']:>6}")
    print("unshared: batched with share_prefix off; differ: answers (text, tokens) unlike raw's, all variants and repeats")
    print(f"limits: weights {bounds['model_bytes'] / 1e6:.0f} MB per step at {bounds['copy_bandwidth_gb_s']:.1f} GB/s "
          f"copy bandwidth = {bounds['step_floor_ms']:.2f} ms/step floor; prompt evaluation "
          f"{bounds['prompt_tokens_per_s']:.0f} tokens/s bounds any batch; one stream decodes "
          f"{bounds['single_stream_tokens_per_s']:.1f} tokens/s")
    for n, ceiling in bounds["ceiling_tokens_per_s"].items():
        print(f"  {n} concurrent: at most {ceiling:.0f} tokens/s, "
              f"{bounds['ceiling_over_single_stream'][n]:.2f}x single stream")
