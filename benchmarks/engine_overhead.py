"""Engine overhead and what it sustains, against a loopback OpenAI-compatible server with a fixed latency per call.

Each episode has the shape of an EcoNash episode: one coordinator call (strategy), N executor
calls at once, one coordinator call (commitment), all through the real runner, engine, openai
backend and SDK over HTTP; the server runs in its own process. The problems come from a probe
task in this file, so any number of episodes can be asked for. The connection limit is set to
episodes in flight times executors, so it never holds a call back: what limits throughput is the
client's CPU (or the server's). Reports, per number of episodes in flight (1, 4, 16, 64, 256):

* overhead ratio: episode wall time / critical path (strategy + slowest executor + commitment
  latency as the client measured them); target <= 1.10 with one episode in flight;
* throughput (episodes per second) and its share of the ideal, episodes in flight / (3 x server
  latency); target: 16 in flight at least 12x the throughput of 1;
* CPU: the client process's CPU seconds per call and share of one core, and the server's;
* where the client's CPU goes (at 64 and 256 in flight, in a separate profiled pass so the timed
  rows carry no profiler): cProfile by CPU time, the share of self time by area (econash, openai
  SDK, httpx, pydantic, asyncio, ...), the top 10 functions by self time, and econash's own top 10
  by cumulative time.

Writes benchmarks/results/engine_overhead.json (or --out) and prints a table.

    .venv/bin/python benchmarks/engine_overhead.py [--latency 0.2] [--executors 3] [--in-flight 1,4,16,64,256]
    .venv/bin/python benchmarks/engine_overhead.py --smoke     # seconds: checks the script runs
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import econash
from econash.engine.context import EpisodeContext
from econash.method import Method
from econash.runner import Components, run_async
from econash.task import Task
from econash.task_types import Problem, Score

RESULTS = Path(__file__).resolve().parent / "results"
#: calls one after another in an episode: strategy, the executors (at once), commitment
SEQUENTIAL_CALLS = 3


class ProbeTask(Task):
    """As many distinct problems as asked for (arith's level 0 has only 196 test questions)."""

    name = "probe"

    def load(self, split: str, size: int | None, seed: int) -> list[Problem]:
        return [Problem(id=f"probe-{split}-{i}", question=f"What is {i} + 7?", gold=i + 7) for i in range(size or 0)]

    def answer_format(self, problem: Problem) -> str:
        return "End with 'The answer is N.'"

    def extract_answer(self, text: str, problem: Problem) -> Any | None:
        return text

    def score(self, answer: Any | None, problem: Problem) -> Score:
        return Score(correct=False, score=0.0)


class ProbeEpisode(Method):
    """Strategy, N concurrent executors, commitment; records its own wall time and critical path, and
    the CPU spent from the first episode's start to the last one's end (set-up and summary left out);
    a profiler given to it runs over that span only."""

    name = "probe"

    def __init__(self, executors: int, episodes: int, server_cpu: Callable[[], float | None],
                 profiler: cProfile.Profile | None = None) -> None:
        self.executors = executors
        self.expected = episodes
        self.server_cpu = server_cpu
        self.profiler = profiler
        self.episodes: list[tuple[float, float]] = []
        self.first_start: float | None = None
        self.last_end = 0.0
        self.cpu = [0.0, 0.0]  # process CPU seconds at the first start and the last end
        self.server = [None, None]  # the server's, where it can be read

    async def solve(self, problem: Problem, episode: EpisodeContext) -> str:
        started = time.perf_counter()
        if self.first_start is None:
            self.first_start = started
            self.cpu[0], self.server[0] = time.process_time(), self.server_cpu()
            if self.profiler is not None:
                self.profiler.enable()
        strategy = await episode.call([{"role": "user", "content": f"Strategy for: {problem.question}"}],
                                      role="coordinator")
        answers = await asyncio.gather(*(
            episode.call([{"role": "user", "content": f"{strategy.text} Executor {i}: {problem.question}"}],
                         role="executor", agent=i)
            for i in range(self.executors)))
        commitment = await episode.call([{"role": "user", "content": " ".join(a.text[:20] for a in answers)}],
                                        role="coordinator")
        ended = time.perf_counter()
        wall = ended - started
        critical = strategy.latency_s + max(a.latency_s for a in answers) + commitment.latency_s
        self.episodes.append((wall, critical))
        if ended > self.last_end:
            self.last_end = ended
            self.cpu[1], self.server[1] = time.process_time(), self.server_cpu()
        if len(self.episodes) == self.expected and self.profiler is not None:
            self.profiler.disable()
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
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().strip()

    def cpu_s(self) -> float | None:
        """The server process's CPU seconds so far (Linux /proc); None elsewhere."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def connections_for(in_flight: int, executors: int, cap: int | None) -> int:
    """By default every call of every episode in flight gets a connection; ``cap`` lowers that."""
    return min(in_flight * executors, cap or in_flight * executors)


async def run_episodes(server: ServerProcess, executors: int, in_flight: int, episodes: int,
                       profiler: cProfile.Profile | None = None, max_connections: int | None = None) -> ProbeEpisode:
    """One evaluation run of ``episodes`` probe episodes, ``in_flight`` at a time."""
    registries = econash.registries()
    method = ProbeEpisode(executors, episodes, server.cpu_s, profiler)
    connections = connections_for(in_flight, executors, max_connections)
    backend = econash.load_backend("openai", base_url=server.base_url, model="bench", api_key="not-needed",
                                   max_connections=connections, registries=registries)
    components = Components(backend=backend, task=ProbeTask(), method=method)
    with tempfile.TemporaryDirectory() as tmp:
        config = econash.RunConfig(backend="openai", test_size=episodes, concurrency=in_flight, display="none",
                                   run_dir=Path(tmp) / "run", cache={"train": False, "eval": False},
                                   max_connections=connections, generation={"max_tokens": 16})
        summary = await run_async(config, registries=registries, components=components)
    assert summary.llm_calls == episodes * (executors + 2), "every call must be counted exactly once"
    return method


def measure(server: ServerProcess, executors: int, latency_s: float, in_flight: int, episodes: int,
            max_connections: int | None) -> dict:
    method = asyncio.run(run_episodes(server, executors, in_flight, episodes, max_connections=max_connections))
    # Throughput and CPU over the span in which episodes ran (run set-up and summary writing excluded).
    elapsed = method.last_end - (method.first_start or method.last_end)
    cpu = method.cpu[1] - method.cpu[0]
    server_cpu = None if None in method.server else method.server[1] - method.server[0]
    ratios = [wall / critical for wall, critical in method.episodes]
    calls = episodes * (executors + 2)
    ideal = in_flight / (SEQUENTIAL_CALLS * latency_s)
    return {
        "in_flight": in_flight,
        "connections": connections_for(in_flight, executors, max_connections),
        "episodes": episodes,
        "calls": calls,
        "wall_s": elapsed,
        "throughput_eps": episodes / elapsed,
        "ideal_eps": ideal,
        "throughput_vs_ideal": episodes / elapsed / ideal,
        "calls_per_s": calls / elapsed,
        "episode_wall_s": statistics.median(w for w, _ in method.episodes),
        "critical_path_s": statistics.median(c for _, c in method.episodes),
        "overhead_ratio": statistics.median(ratios),
        "overhead_ratio_max": max(ratios),
        "client_cpu_ms_per_call": cpu / calls * 1000,
        "client_cpu_share": cpu / elapsed,
        "server_cpu_share": None if server_cpu is None else server_cpu / elapsed,
    }


AREAS = (  # (area, substrings of a profiled function's file); the first match wins
    ("econash plugins", ("econash_plugins",)),
    ("econash core", ("/econash/",)),
    ("openai SDK", ("/openai/",)),
    ("httpx, httpcore, h11, anyio", ("/httpx", "/httpcore", "/h11/", "/anyio/", "/sniffio/")),
    ("pydantic", ("/pydantic/", "/pydantic_core/")),
    ("asyncio and selectors", ("/asyncio/", "selectors.py")),
    ("json", ("/json/",)),
    ("typing (type checks at run time)", ("/typing.py",)),
)


def area_of(filename: str, function: str) -> str:
    if filename == "~":  # a built-in: name it by what it does
        if any(word in function for word in ("select", "epoll", "socket", "recv", "send")):
            return "socket and select calls"
        if "pydantic_core" in function:
            return "pydantic"
        return "other built-ins"
    for area, parts in AREAS:
        if any(part in filename for part in parts):
            return area
    return "other Python"


def where(filename: str, line: int, function: str) -> str:
    if filename == "~":
        return function
    parts = Path(filename).parts
    tail = "/".join(parts[parts.index("site-packages") + 1:] if "site-packages" in parts else parts[-2:])
    return f"{tail}:{line} {function}"


def profile(server: ServerProcess, executors: int, in_flight: int, episodes: int, max_connections: int | None) -> dict:
    """Where the client's CPU goes: cProfile with a CPU-time clock, so waiting on the network is not counted."""
    profiler = cProfile.Profile(time.process_time)
    asyncio.run(run_episodes(server, executors, in_flight, episodes, profiler, max_connections))
    stats: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in stats.values()) or 1e-9
    by_area: dict[str, float] = {}
    for (filename, _line, function), row in stats.items():
        area = area_of(filename, function)
        by_area[area] = by_area.get(area, 0.0) + row[2]

    def top(column: int, only_econash: bool) -> list[dict]:
        rows = sorted(stats.items(), key=lambda item: item[1][column], reverse=True)
        if only_econash:  # what econash's own functions cost, the libraries they call included
            rows = [(key, row) for key, row in rows if area_of(key[0], key[2]).startswith("econash")]
        return [{"function": where(*key), "seconds": round(row[column], 4), "share": round(row[column] / total, 4),
                 "calls": row[1]} for key, row in rows[:10]]

    calls = episodes * (executors + 2)
    return {
        "in_flight": in_flight,
        "episodes": episodes,
        "cpu_s": total,
        "cpu_ms_per_call": total / calls * 1000,
        "self_time_by_area": {area: round(seconds / total, 4)
                              for area, seconds in sorted(by_area.items(), key=lambda item: -item[1])},
        "top_self": top(2, only_econash=False),
        "top_econash_cumulative": top(3, only_econash=True),
    }


def numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def print_report(result: dict, out: Path) -> None:
    rows = result["rows"]
    print(f"server latency {result['latency_s'] * 1000:.0f} ms, {result['executors']} executors, calls per episode "
          f"{result['executors'] + 2}; ideal = in flight / ({SEQUENTIAL_CALLS} x latency)")
    print(f"{'in flight':>9} {'conns':>5} {'episodes':>8} {'wall s':>7} {'ep/s':>7} {'/ideal':>6} {'speedup':>7} "
          f"{'episode s':>9} {'critical s':>10} {'ratio':>6} {'ratio max':>9} {'cpu ms/call':>11} "
          f"{'client cpu':>10} {'server cpu':>10}")
    for r in rows:
        server = "-" if r["server_cpu_share"] is None else f"{r['server_cpu_share']:.2f}"
        speedup = "-" if r["speedup"] is None else f"{r['speedup']:.2f}"
        print(f"{r['in_flight']:>9} {r['connections']:>5} {r['episodes']:>8} {r['wall_s']:>7.2f} {r['throughput_eps']:>7.2f} "
              f"{r['throughput_vs_ideal']:>6.2f} {speedup:>7} {r['episode_wall_s']:>9.3f} "
              f"{r['critical_path_s']:>10.3f} {r['overhead_ratio']:>6.3f} {r['overhead_ratio_max']:>9.3f} "
              f"{r['client_cpu_ms_per_call']:>11.2f} {r['client_cpu_share']:>10.2f} {server:>10}")
    print("/ideal: throughput over in flight / (3 x latency); cpu: CPU seconds over the run's wall time, "
          "1.00 = one core busy")
    for prof in result["profiles"]:
        areas = ", ".join(f"{area} {share:.0%}" for area, share in prof["self_time_by_area"].items() if share >= 0.01)
        print(f"\nclient CPU at {prof['in_flight']} in flight (profiled pass, {prof['episodes']} episodes, "
              f"{prof['cpu_ms_per_call']:.2f} ms per call under the profiler): {areas}")
        print("  top by self time:")
        for row in prof["top_self"]:
            print(f"    {row['share']:>6.1%}  {row['function']}")
        print("  econash's own functions, top by cumulative time (what they call included):")
        for row in prof["top_econash_cumulative"]:
            print(f"    {row['share']:>6.1%}  {row['function']}")
    for name, ok in result["targets"].items():
        print(f"target {name}: {'met' if ok else 'NOT met'}")
    print(f"written: {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="server latency per call, seconds")
    parser.add_argument("--executors", type=int, default=3)
    parser.add_argument("--in-flight", type=numbers, default=[1, 4, 16, 64, 256], help="episodes in flight, comma-separated")
    parser.add_argument("--episodes-per-slot", type=int, default=8, help="episodes per in-flight slot")
    parser.add_argument("--profile", type=numbers, default=[64, 256], help="in-flight counts to profile ('' for none)")
    parser.add_argument("--profile-episodes-per-slot", type=int, default=2)
    parser.add_argument("--max-connections", type=int, default=None,
                        help="cap on connections (default: in flight x executors, so none waits)")
    parser.add_argument("--smoke", action="store_true", help="20 ms latency, 1 and 4 in flight, 2 episodes a slot")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.smoke:
        args.latency, args.in_flight, args.episodes_per_slot, args.profile = 0.02, [1, 4], 2, [4]
        args.profile_episodes_per_slot = 1

    with ServerProcess(args.latency) as server:
        rows = [measure(server, args.executors, args.latency, in_flight, max(8, in_flight * args.episodes_per_slot),
                        args.max_connections) for in_flight in args.in_flight]
        profiles = [profile(server, args.executors, in_flight, max(8, in_flight * args.profile_episodes_per_slot),
                            args.max_connections) for in_flight in args.profile]
    by_in_flight = {row["in_flight"]: row for row in rows}
    for row in rows:  # against one episode in flight, where that row was measured
        row["speedup"] = row["throughput_eps"] / by_in_flight[1]["throughput_eps"] if 1 in by_in_flight else None
    targets = {}
    if 1 in by_in_flight:
        targets["overhead_ratio_one_in_flight<=1.10"] = by_in_flight[1]["overhead_ratio"] <= 1.10
    if 1 in by_in_flight and 16 in by_in_flight:
        targets["speedup_16_in_flight>=12"] = by_in_flight[16]["speedup"] >= 12
    result = {
        "benchmark": "engine_overhead",
        "smoke": args.smoke,
        "latency_s": args.latency,
        "executors": args.executors,
        "server": "separate process",
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "rows": rows,
        "profiles": profiles,
        "targets": targets,
    }
    RESULTS.mkdir(exist_ok=True)
    out = args.out or RESULTS / f"engine_overhead{'_smoke' if args.smoke else ''}.json"
    out.write_text(json.dumps(result, indent=2))
    print_report(result, out)


if __name__ == "__main__":
    main()
