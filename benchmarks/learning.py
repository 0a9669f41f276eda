"""Learning benchmarks.

1. ``updates``: learner update time and peak memory for N = 3, 6 and 12 executors at batch 32 on
   the CPU (target: at most 50 ms per update for N = 3), and for the multi topology's hierarchical
   mixer (N = 6 in 2 clusters, N = 12 in 4). Peak memory is the growth of the
   process's peak resident set while updating (ru_maxrss), and the size of the parameters,
   optimiser state and replay buffer.
2. ``bandit``: how many gradient steps a short run needs. A Bernoulli bandit shaped like the local
   model's temperature effect (docs/econash-method.md), trained for 40, 100 and 160 episodes with 4
   steps per update or with ``min_gradient_steps`` in all; the share of executors whose greedy
   temperature is the best one.
3. ``heads``: factored against joint Q heads on a bandit whose six actions (the default grid) are
   right at the local model's measured executor accuracies, after 48 to 384 episodes: the greedy
   executors' accuracy over the best action's, with a bootstrap 95% interval over seeds.
4. ``policy``: with a real model (default: the local SmolLM2 backend, any --backend/--model/--task),
   trained, untrained, best and worst fixed action (chosen on a dev slice) and greedy chain of
   thought on the same test questions, with Wilson intervals, amortised tokens, McNemar's test of
   trained against untrained and a learning curve (benchmarks/_policy.py says how).

Writes benchmarks/results/learning_<part>.json and prints a table.

    .venv/bin/python benchmarks/learning.py updates
    .venv/bin/python benchmarks/learning.py bandit
    .venv/bin/python benchmarks/learning.py heads
    .venv/bin/python benchmarks/learning.py policy --publish      # arith, 192 episodes, 100 test questions
    .venv/bin/python benchmarks/learning.py policy --task gsm8k --data ../shared/data --model PATH.gguf
    .venv/bin/python benchmarks/learning.py updates --smoke   # (and policy --smoke): checks the script runs
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

RESULTS = Path(__file__).resolve().parent / "results"


def bench_updates(repeats: int, sizes: tuple[tuple[int, int], ...]) -> dict:
    import torch

    from econash_plugins.methods.econash.learner import Learner, LearnerConfig

    rows = []
    # single topology at N = 3, 6, 12; then the multi topology's hierarchical mixer (clusters of 3)
    for n, k in sizes:
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        clusters = [list(range(c * n // k, (c + 1) * n // k)) for c in range(k)]
        learner = Learner(LearnerConfig(batch_size=32, updates_per_step=1), n_agents=n, n_actions=18, embed_dim=384,
                          clusters=clusters, seed=0)  # one gradient step on one batch of 32
        rng = random.Random(0)
        for _ in range(256):
            snap = learner.snapshot()
            actions = [rng.randrange(18) for _ in range(n)]
            rewards = [rng.random() for _ in range(n)]
            learner.observe({"e_q": torch.randn(384), "e_s": torch.randn(384), **snap,
                             "actions": torch.tensor(actions), "rewards": torch.tensor(rewards),
                             "team": torch.tensor(rng.random()), "e_c": torch.randn(384)})
            learner.advance_history(actions, rewards)
        for _ in range(5):
            learner.update()  # warm up
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            learner.update()
            times.append(time.perf_counter() - started)
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        params = sum(p.numel() * p.element_size() for m in learner.modules.values() for p in m.parameters())
        optimiser = sum(t.numel() * t.element_size() for s in learner.optimizer.state.values()
                        for t in s.values() if torch.is_tensor(t))
        buffer = sum(t.numel() * t.element_size() for t in learner.buffer.data.values())
        rows.append({"executors": n, "clusters": k, "batch": 32, "median_ms": statistics.median(times) * 1000,
                     "p90_ms": sorted(times)[int(0.9 * len(times))] * 1000,
                     "parameters_mb": params / 1e6, "optimiser_mb": optimiser / 1e6, "buffer_mb": buffer / 1e6,
                     "peak_rss_growth_mb": (rss_after - rss_before) / 1024})
    return {"benchmark": "learning_updates", "torch_threads": torch.get_num_threads(), "rows": rows,
            "target_n3_le_50ms": rows[0]["median_ms"] <= 50}


def print_updates(result: dict) -> None:
    print(f"{'executors':>9} {'clusters':>8} {'median ms':>9} {'p90 ms':>7} {'params MB':>9} {'optim MB':>8} {'buffer MB':>9} "
          f"{'peak RSS +MB':>12}")
    for r in result["rows"]:
        print(f"{r['executors']:>9} {r['clusters']:>8} {r['median_ms']:>9.2f} {r['p90_ms']:>7.2f} "
              f"{r['parameters_mb']:>9.2f} {r['optimiser_mb']:>8.2f} {r['buffer_mb']:>9.2f} {r['peak_rss_growth_mb']:>12.1f}")
    print(f"target N=3 <= 50 ms: {'met' if result['target_n3_le_50ms'] else 'NOT met'}")


def _bandit_greedy(grid, success: Callable[[Any], float], config: Any, episodes: int, seed: int,
                   update_interval: int = 8, held_out: int = 20) -> list[list[int]]:
    """Three executors learn a Bernoulli bandit over ``grid`` (an answer is right with probability
    ``success(action)``, team reward the best executor's) through the real learner; returns their
    greedy actions on ``held_out`` new questions."""
    import torch
    from torch.nn import functional as F

    from econash_plugins.methods.econash.learner import Learner

    n, dim = 3, 16
    learner = Learner(config, n_agents=n, n_actions=len(grid), embed_dim=dim, seed=seed,
                      factor_levels=grid.factor_levels, train_episodes=episodes,
                      expected_updates=max(1, episodes // update_interval))
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    questions = [F.normalize(torch.randn(dim, generator=gen), dim=0) for _ in range(episodes + held_out)]
    strategy = torch.randn(dim, generator=gen)
    for step in range(episodes):
        actions, _ = learner.act(questions[step], strategy, explore=True, rng=rng, step=step)
        rewards = [float(rng.random() < success(grid[a])) for a in actions]
        learner.observe({"e_q": questions[step], "e_s": strategy, **learner.snapshot(),
                         "actions": torch.tensor(actions), "rewards": torch.tensor(rewards),
                         "team": torch.tensor(max(rewards)), "e_c": strategy})
        learner.advance_history(actions, rewards)
        if step % update_interval == update_interval - 1:
            learner.update()
    return [learner.act(q, strategy, explore=False, rng=rng, step=episodes)[0] for q in questions[episodes:]]


def bandit_share(total_steps: int | None, episodes: int, seed: int) -> float:
    """3 temperatures x 2 styles; an answer is right with probability 0.65, 0.5 or 0.4 by temperature
    (the shape of the local model's effect), whatever the style. Returns the share of (executor,
    held-out question) pairs whose greedy temperature is the best one."""
    from econash_plugins.methods.econash.actions import ActionGrid
    from econash_plugins.methods.econash.learner import LearnerConfig

    grid = ActionGrid([0.0, 0.5, 1.0], [1.0], ["short", "steps"])
    config = LearnerConfig(lambda_sd=0.0, **({"min_gradient_steps": total_steps} if total_steps is not None
                                              else {"updates_per_step": 4}))
    rates = {0.0: 0.65, 0.5: 0.5, 1.0: 0.4}
    greedy = _bandit_greedy(grid, lambda action: rates[action.temperature], config, episodes, seed)
    return statistics.mean(grid[a].temperature == 0.0 for joint in greedy for a in joint)


def bench_bandit(seeds: int, episodes: list[int], totals: list[int | None]) -> dict:
    rows = []
    for total in totals:
        shares = [statistics.mean(bandit_share(total, e, s) for s in range(seeds)) for e in episodes]
        rows.append({"min_gradient_steps": total, "episodes": episodes, "best_temperature_share": shares})
    return {"benchmark": "learning_bandit", "seeds": seeds, "update_interval": 8, "rows": rows}


def print_bandit(result: dict) -> None:
    episodes = result["rows"][0]["episodes"]
    print(f"share of executors whose greedy temperature is the best, {result['seeds']} seeds, an update every "
          f"{result['update_interval']} episodes")
    print(f"{'gradient steps':>22} " + " ".join(f"{e:>6} ep" for e in episodes))
    for r in result["rows"]:
        label = "4 per update" if r["min_gradient_steps"] is None else f"{r['min_gradient_steps']} in all (min 4/upd)"
        print(f"{label:>22} " + " ".join(f"{v:>9.2f}" for v in r["best_temperature_share"]))


#: Executor accuracy of each action of the default grid on the local model (SmolLM2-135M, arith
#: level 0, 72 answers each), measured by benchmarks/calibrate.py: docs/econash-method.md's table.
LOCAL_MODEL_EXECUTOR_ACCURACY = {(0.0, "short"): 0.667, (0.0, "steps"): 0.583, (0.0, "verify"): 0.667,
                                 (1.0, "short"): 0.444, (1.0, "steps"): 0.431, (1.0, "verify"): 0.278}


def heads_value(q_head: str, episodes: int, seed: int) -> float:
    """The default grid with each action right at the local model's measured rate; returns the mean
    rate of the executors' greedy actions on held-out questions over the best rate (1.0: every
    executor settled on a best action)."""
    from econash_plugins.methods.econash.actions import ActionGrid
    from econash_plugins.methods.econash.learner import LearnerConfig

    grid = ActionGrid([0.0, 1.0], [1.0], ["short", "steps", "verify"])
    rates = LOCAL_MODEL_EXECUTOR_ACCURACY
    greedy = _bandit_greedy(grid, lambda action: rates[(action.temperature, action.style)],
                            LearnerConfig(q_head=q_head), episodes, seed)
    return statistics.mean(rates[(grid[a].temperature, grid[a].style)] for joint in greedy for a in joint) / max(
        rates.values())


def bench_heads(seeds: int, episodes: list[int]) -> dict:
    from econash.stats import bootstrap_mean_interval

    rows = []
    for q_head in ("factored", "joint"):
        values = [[heads_value(q_head, e, s) for s in range(seeds)] for e in episodes]
        rows.append({"q_head": q_head, "episodes": episodes, "relative_value": [statistics.mean(v) for v in values],
                     "ci95": [list(bootstrap_mean_interval(v)) for v in values]})
    worst = min(LOCAL_MODEL_EXECUTOR_ACCURACY.values()) / max(LOCAL_MODEL_EXECUTOR_ACCURACY.values())
    uniform = statistics.mean(LOCAL_MODEL_EXECUTOR_ACCURACY.values()) / max(LOCAL_MODEL_EXECUTOR_ACCURACY.values())
    return {"benchmark": "learning_heads", "seeds": seeds, "update_interval": 8, "rows": rows,
            "random_policy": round(uniform, 4), "worst_action": round(worst, 4)}


def print_heads(result: dict) -> None:
    episodes = result["rows"][0]["episodes"]
    print(f"greedy executors' accuracy / best action's, local model's measured rates, {result['seeds']} seeds "
          f"(random policy {result['random_policy']:.2f}, worst action {result['worst_action']:.2f})")
    print(f"{'Q head':>9} " + " ".join(f"{e:>17} ep" for e in episodes))
    for r in result["rows"]:
        cells = [f"{v:.3f} [{lo:.2f}, {hi:.2f}]" for v, (lo, hi) in zip(r["relative_value"], r["ci95"])]
        print(f"{r['q_head']:>9} " + " ".join(f"{c:>20}" for c in cells))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="part", required=True)
    updates = sub.add_parser("updates")
    updates.add_argument("--repeats", type=int, default=50)
    updates.add_argument("--smoke", action="store_true", help="two repeats at N = 3 only")
    bandit = sub.add_parser("bandit")
    bandit.add_argument("--seeds", type=int, default=8)
    bandit.add_argument("--smoke", action="store_true", help="one seed, 16 episodes")
    heads = sub.add_parser("heads")
    heads.add_argument("--seeds", type=int, default=10)
    heads.add_argument("--smoke", action="store_true", help="one seed, 16 episodes")
    policy = sub.add_parser("policy")
    policy.add_argument("--task", default="arith")
    policy.add_argument("--data", default=None)
    policy.add_argument("--backend", default="local")
    policy.add_argument("--model", default=None)
    policy.add_argument("--embedder", default=None)
    policy.add_argument("--train-size", type=int, default=192)
    policy.add_argument("--test-size", type=int, default=100)
    policy.add_argument("--dev-size", type=int, default=24, help="train-split questions after the training ones")
    policy.add_argument("--dev-every", type=int, default=4, help="learner updates between dev scores")
    policy.add_argument("--seed", type=int, default=0)
    policy.add_argument("--smoke", action="store_true", help="the fake backend, 8 episodes, 2 questions")
    policy.add_argument("--out-dir", default=None, help="where the runs go (default runs/learning-policy-TASK); "
                        "running again reuses the finished steps")
    policy.add_argument("--publish", action="store_true",
                        help="also write docs/results/learning-policy.json and learning-curve.png")
    parser.add_argument("--out", type=Path, default=None, help="the JSON file to write")
    args = parser.parse_args(argv)

    if args.part == "updates":
        sizes = ((3, 1),) if args.smoke else ((3, 1), (6, 1), (12, 1), (6, 2), (12, 4))
        result = bench_updates(2 if args.smoke else args.repeats, sizes)
        printer = print_updates
    elif args.part == "bandit":
        if args.smoke:
            result = bench_bandit(1, [16], [None, 300])
        else:
            result = bench_bandit(args.seeds, [40, 100, 160], [None, 200, 300, 400, 800])
        printer = print_bandit
    elif args.part == "heads":
        result = bench_heads(1, [16]) if args.smoke else bench_heads(args.seeds, [48, 96, 192, 384])
        printer = print_heads
    else:
        from _policy import bench_policy, print_policy

        if args.smoke:
            args.backend, args.embedder, args.train_size, args.test_size, args.dev_size, args.dev_every = (
                "fake", "hashing", 16, 2, 2, 1)
        args.out_dir = args.out_dir or f"runs/learning-policy-{args.task}{'-smoke' if args.smoke else ''}"
        result = bench_policy(args)
        printer = print_policy
    result["python"] = sys.version.split()[0]
    RESULTS.mkdir(exist_ok=True)
    name = f"learning_policy_{args.task}" if args.part == "policy" else f"learning_{args.part}"
    out = args.out or RESULTS / f"{name}{'_smoke' if args.smoke else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    printer(result)
    print(f"written: {out}")
    return result


if __name__ == "__main__":
    main()
