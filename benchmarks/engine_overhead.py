"""Engine overhead against a loopback OpenAI-compatible server with a fixed latency per call.

Each episode has the shape of an EcoNash episode: one coordinator call (strategy), N executor
calls at once, one coordinator call (commitment), all through the real runner, engine, openai
backend and SDK over HTTP. Reports:

* overhead ratio: episode wall time / critical path (strategy + slowest executor + commitment
  latency as the client measured them), with one episode in flight; target <= 1.10;
* throughput (episodes per second) with 1, 4 and 16 episodes in flight; target: 16 in flight at
  least 12x the throughput of 1.

Writes benchmarks/results/engine_overhead.json and prints a table.

    .venv/bin/python benchmarks/engine_overhead.py [--latency 0.2] [--executors 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import econash
from econash.engine.context import EpisodeContext
from econash.method import Method
from econash.runner import Components, run_async
from econash.testing.openai_server import FaultServer
from econash.types import Problem

RESULTS = Path(__file__).resolve().parent / "results"


class ProbeEpisode(Method):
    """Strategy, N concurrent executors, commitment; records its own wall time and critical path."""

    name = "probe"

    def __init__(self, executors: int) -> None:
        self.executors = executors
        self.episodes: list[tuple[float, float]] = []
        self.first_start: float | None = None
        self.last_end = 0.0

    async def solve(self, problem: Problem, episode: EpisodeContext) -> str:
        started = time.perf_counter()
        self.first_start = started if self.first_start is None else min(self.first_start, started)
        strategy = await episode.call([{"role": "user", "content": f"Strategy for: {problem.question}"}],
                                      role="coordinator")
        answers = await asyncio.gather(*(
            episode.call([{"role": "user", "content": f"{strategy.text} Executor {i}: {problem.question}"}],
                         role="executor", agent=i)
            for i in range(self.executors)))
        commitment = await episode.call([{"role": "user", "content": " ".join(a.text[:20] for a in answers)}],
                                        role="coordinator")
        ended = time.perf_counter()
        self.last_end = max(self.last_end, ended)
        wall = ended - started
        critical = strategy.latency_s + max(a.latency_s for a in answers) + commitment.latency_s
        self.episodes.append((wall, critical))
        return commitment.text


SERVER = """
import sys
from econash.testing.openai_server import FaultServer
server = FaultServer(responder=lambda body: "The answer is 7.", latency_s=float(sys.argv[1])).start()
print(server.base_url, flush=True)
sys.stdin.read()
server.stop()
"""


class ServerProcess:
    """The loopback server in its own process, so its threads do not share the client's GIL."""

    def __init__(self, latency_s: float) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", SERVER, str(latency_s)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        self.base_url = self.process.stdout.readline().strip()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


async def measure(server: FaultServer | ServerProcess, executors: int, in_flight: int, episodes: int) -> dict:
    registries = econash.registries()
    method = ProbeEpisode(executors)
    backend = econash.load_backend("openai", base_url=server.base_url, model="bench", api_key="not-needed",
                                   max_connections=256, registries=registries)
    components = Components(backend=backend, task=econash.load_task("arith", registries=registries), method=method)
    with tempfile.TemporaryDirectory() as tmp:
        config = econash.RunConfig(backend="openai", test_size=episodes, concurrency=in_flight, display="none",
                                   run_dir=Path(tmp) / "run", cache={"train": False, "eval": False},
                                   generation={"max_tokens": 16})
        summary = await run_async(config, registries=registries, components=components)
    # Throughput over the span in which episodes ran (run set-up and summary writing excluded).
    elapsed = method.last_end - method.first_start
    assert summary.llm_calls == episodes * (executors + 2), "every call must be counted exactly once"
    ratios = [wall / critical for wall, critical in method.episodes]
    return {
        "in_flight": in_flight,
        "episodes": episodes,
        "wall_s": elapsed,
        "throughput_eps": episodes / elapsed,
        "episode_wall_s": statistics.median(w for w, _ in method.episodes),
        "critical_path_s": statistics.median(c for _, c in method.episodes),
        "overhead_ratio": statistics.median(ratios),
        "overhead_ratio_max": max(ratios),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="server latency per call, seconds")
    parser.add_argument("--executors", type=int, default=3)
    parser.add_argument("--episodes-per-slot", type=int, default=8, help="episodes per in-flight slot")
    parser.add_argument("--same-process", action="store_true", help="run the server in this process")
    args = parser.parse_args()

    rows = []
    server_cm = (FaultServer(responder=lambda body: "The answer is 7.", latency_s=args.latency)
                 if args.same_process else ServerProcess(args.latency))
    with server_cm as server:
        for in_flight in (1, 4, 16):
            episodes = max(8, in_flight * args.episodes_per_slot)
            rows.append(asyncio.run(measure(server, args.executors, in_flight, episodes)))
    base = rows[0]["throughput_eps"]
    for row in rows:
        row["speedup"] = row["throughput_eps"] / base
    result = {
        "benchmark": "engine_overhead",
        "latency_s": args.latency,
        "executors": args.executors,
        "server": "same process" if args.same_process else "separate process",
        "python": sys.version.split()[0],
        "rows": rows,
        "targets": {
            "overhead_ratio_one_in_flight<=1.10": rows[0]["overhead_ratio"] <= 1.10,
            "speedup_16_in_flight>=12": rows[-1]["speedup"] >= 12,
        },
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "engine_overhead.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"server latency {args.latency * 1000:.0f} ms, {args.executors} executors, calls per episode "
          f"{args.executors + 2}")
    print(f"{'in flight':>9} {'episodes':>8} {'wall s':>7} {'ep/s':>6} {'speedup':>7} {'episode s':>9} "
          f"{'critical s':>10} {'ratio':>6} {'ratio max':>9}")
    for r in rows:
        print(f"{r['in_flight']:>9} {r['episodes']:>8} {r['wall_s']:>7.2f} {r['throughput_eps']:>6.2f} "
              f"{r['speedup']:>7.2f} {r['episode_wall_s']:>9.3f} {r['critical_path_s']:>10.3f} "
              f"{r['overhead_ratio']:>6.3f} {r['overhead_ratio_max']:>9.3f}")
    for name, ok in result["targets"].items():
        print(f"target {name}: {'met' if ok else 'NOT met'}")
    print(f"written: {out}")


if __name__ == "__main__":
    main()
