"""Regret of econash and reference learners on random instances of the coordination game.

The paper claims sublinear Bayesian regret where fixed, debate-like policies grow linearly. This
measures it the way docs/measuring.md ("Regret") asks:

* pseudo-regret of the behaviour policy, ``R(T) = sum_t V* - V(a_t)``: ``V`` the exact expected team
  value of the joint action actually played (exploration included), ``V*`` the enumerated optimum,
  while the learner itself only sees sampled rewards (benchmarks/_game.py);
* every seed plays its own game instance (noise levels drawn, labels shuffled), and every learner
  of a seed plays the same one;
* exploration decays to zero (``exploration_schedule: inverse_sqrt`` by default: epsilon
  ``min(1, 0.1 * sqrt(H / (t + 1)))``, 0.1 at the horizon H); ``--schedule linear`` keeps the
  learner's default, a floor at 0.1, under which regret is linear by construction;
* learners: ``econash`` (the real Learner, default config but the schedule), ``independent``
  (``mixer: none``), ``oracle`` (plays an optimal joint action except when exploring, with the
  same per-executor epsilon), ``bandit`` (Thompson sampling over the 216 joint actions with
  Beta(1, 1) priors; it has no epsilon, its posterior is its exploration), ``random`` (uniform);
  the learners and the bandit take in what they saw every 8 episodes (econash's
  ``update_interval``);
* ``alpha`` of ``R(T) ~ c T^alpha``: least squares of log R on log t at 40 log-spaced points of the
  tail ``t >= max(4 H, T / 2)`` only, per seed; the mean over seeds and its bootstrap 95% interval;
  and ``rate_alpha``, 1 + the slope of the log regret *per episode* over the same tail windows, of
  the seeds' mean curve with a bootstrap interval over seeds: the first is biased low by whatever
  was lost before the tail (a linear learner reads about 0.7 at T = 4,000), the second is not;
* the Nash gap of the greedy joint action (on held-out questions) at log-spaced checkpoints, since a
  weak equilibrium (three executors on one style) can have gap 0 far from the optimum.

    .venv/bin/python benchmarks/regret.py --publish        # 20 seeds x 4,000 episodes, 2 processes (~40 min)
    .venv/bin/python benchmarks/regret.py --smoke --out /tmp/regret.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _game import N_ACTIONS, N_AGENTS, GameInstance, random_game  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
LEARNERS = ("econash", "independent", "oracle", "bandit", "random")
EMBED_DIM = 16


@dataclass(frozen=True)
class Settings:
    episodes: int = 4000
    seeds: int = 20
    horizon: int = 500
    schedule: str = "inverse_sqrt"
    update_interval: int = 8
    held_out: int = 8
    points: int = 40

    @property
    def tail_start(self) -> int:
        return max(4 * self.horizon, self.episodes // 2)

    def checkpoints(self) -> list[int]:
        """Log-spaced episode counts (1 .. T) at which curves are recorded."""
        return sorted({max(1, round(self.episodes ** (k / (self.points - 1)))) for k in range(self.points)}
                      | {self.tail_start, self.episodes})

    def tail_points(self) -> list[int]:
        lo, hi = math.log(self.tail_start), math.log(self.episodes)
        return sorted({round(math.exp(lo + (hi - lo) * k / (self.points - 1))) for k in range(self.points)})


def fit_alpha(points: list[int], regret: list[float]) -> float:
    """Least-squares slope of log R(t) on log t over the given episode counts and regrets."""
    return _slope([math.log(t) for t, r in zip(points, regret) if r > 0], [math.log(r) for r in regret if r > 0])


def _slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys on xs; nan with fewer than two points."""
    if len(xs) < 2:
        return float("nan")
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def fit_rate_alpha(points: list[int], regret: list[float]) -> float:
    """The exponent read from the regret *rate* in the tail: 1 + the least-squares slope of the log of
    the regret per episode between consecutive points on the log of their geometric midpoint.

    Unlike fit_alpha this ignores what was lost before the tail. R(T) = a + c T (a linear learner
    with a big early loss) has a log-log slope c T / (a + c T) below 1 at any finite T, so fit_alpha
    reads such a learner as sublinear; its rate is constant, so this reads it as 1. Windows with no
    regret are left out (a log of zero); fewer than two usable windows give nan."""
    xs, ys = [], []
    for (t0, r0), (t1, r1) in zip(zip(points, regret), zip(points[1:], regret[1:])):
        if t1 > t0 and r1 > r0:
            xs.append(0.5 * (math.log(t0) + math.log(t1)))
            ys.append(math.log((r1 - r0) / (t1 - t0)))
    return 1 + _slope(xs, ys)


def rate_alpha_interval(points: list[int], curves: list[list[float]], draws: int = 2000,
                        seed: int = 0) -> tuple[float, float, float]:
    """fit_rate_alpha of the seeds' mean tail curve (one seed's rate is too noisy to fit alone), with a
    percentile bootstrap interval over seeds: each draw resamples the seeds and refits the mean."""
    rng = random.Random(seed)

    def of(sample: list[list[float]]) -> float:
        return fit_rate_alpha(points, [statistics.fmean(column) for column in zip(*sample)])

    fits = sorted(a for a in (of(rng.choices(curves, k=len(curves))) for _ in range(draws)) if not math.isnan(a))
    if not fits:
        return float("nan"), float("nan"), float("nan")
    return of(curves), fits[int(0.025 * (len(fits) - 1))], fits[int(0.975 * (len(fits) - 1))]


def make_learner(settings: Settings, mixer: str, seed: int) -> Any:
    from econash_plugins.methods.econash.actions import ActionGrid
    from econash_plugins.methods.econash.learner import Learner, LearnerConfig

    grid = ActionGrid([0.0, 1.0], [1.0], ["s0", "s1", "s2"])  # only its factor structure is used
    config = LearnerConfig(mixer=mixer, exploration_schedule=settings.schedule,
                           epsilon_decay_episodes=settings.horizon)
    return Learner(config, n_agents=N_AGENTS, n_actions=N_ACTIONS, embed_dim=EMBED_DIM, seed=seed,
                   factor_levels=grid.factor_levels, train_episodes=settings.episodes,
                   expected_updates=max(1, settings.episodes // settings.update_interval))


def play_network(game: GameInstance, settings: Settings, mixer: str, seed: int) -> tuple[list[float], dict[int, list]]:
    """The real Learner driven directly on sampled game rewards (as benchmarks/learning.py's bandit
    does): per-episode regret of the joint action played, and greedy joints on held-out questions."""
    import torch
    from torch.nn import functional as F

    learner = make_learner(settings, mixer, seed)
    rng = random.Random(f"{seed}:{mixer}:act")
    gen = torch.Generator().manual_seed(seed)
    strategy = torch.randn(EMBED_DIM, generator=gen)
    answers = {a: F.normalize(torch.randn(EMBED_DIM, generator=gen), dim=0) for a in [0, 1, 2, 3, 100, 101, 102]}
    held_out = [F.normalize(torch.randn(EMBED_DIM, generator=gen), dim=0) for _ in range(settings.held_out)]
    checkpoints, greedy = set(settings.checkpoints()), {}
    best, regret = game.optimum, []
    for step in range(settings.episodes):
        question = F.normalize(torch.randn(EMBED_DIM, generator=gen), dim=0)
        actions, _ = learner.act(question, strategy, explore=True, rng=rng, step=step)
        regret.append(best - game.team_value(actions))
        team, rewards, committed = game.sample(actions, rng)
        learner.observe({"e_q": question, "e_s": strategy, **learner.snapshot(), "actions": torch.tensor(actions),
                         "rewards": torch.tensor(rewards), "team": torch.tensor(team), "e_c": answers[committed]})
        learner.advance_history(actions, rewards)
        if step % settings.update_interval == settings.update_interval - 1:
            learner.update()
        if step + 1 in checkpoints:
            greedy[step + 1] = [learner.act(q, strategy, explore=False, rng=rng, step=step)[0] for q in held_out]
    return regret, greedy


def play_oracle(game: GameInstance, settings: Settings, seed: int) -> tuple[list[float], dict[int, list]]:
    """An optimal joint action, except that each executor explores exactly as econash's would."""
    schedule = make_learner(settings, "belief", seed)  # for its exploration_value only
    rng = random.Random(f"{seed}:oracle")
    target = rng.choice(game.optimal_joints())
    best, regret = game.optimum, []
    for step in range(settings.episodes):
        actions = [rng.randrange(N_ACTIONS) if rng.random() < schedule.exploration_value(step, i) else target[i]
                   for i in range(N_AGENTS)]
        regret.append(best - game.team_value(actions))
    return regret, {t: [list(target)] for t in settings.checkpoints()}


def play_random(game: GameInstance, settings: Settings, seed: int) -> tuple[list[float], dict[int, list]]:
    rng = random.Random(f"{seed}:random")
    best = game.optimum
    regret = [best - game.team_value([rng.randrange(N_ACTIONS) for _ in range(N_AGENTS)])
              for _ in range(settings.episodes)]
    return regret, {}


def play_bandit(game: GameInstance, settings: Settings, seed: int) -> tuple[list[float], dict[int, list]]:
    """Thompson sampling over joint actions (Beta(1, 1) priors on the team reward), the posterior
    updated every update_interval episodes; greedy = the highest posterior mean."""
    import numpy as np

    joints = list(game.values)
    rng = random.Random(f"{seed}:bandit")
    draws = np.random.default_rng(seed)
    wins, losses = np.ones(len(joints)), np.ones(len(joints))
    pending: list[tuple[int, float]] = []
    checkpoints, greedy = set(settings.checkpoints()), {}
    best, regret = game.optimum, []
    for step in range(settings.episodes):
        arm = int(np.argmax(draws.beta(wins, losses)))
        regret.append(best - game.values[joints[arm]])
        pending.append((arm, game.sample(joints[arm], rng)[0]))
        if step % settings.update_interval == settings.update_interval - 1:
            for played, team in pending:
                wins[played] += team
                losses[played] += 1 - team
            pending.clear()
        if step + 1 in checkpoints:
            greedy[step + 1] = [list(joints[int(np.argmax(wins / (wins + losses)))])]
    return regret, greedy


def run_seed(job: tuple[int, Settings, tuple[str, ...]]) -> dict[str, Any]:
    """Every learner on the seed's game instance: curves at the checkpoints and the tail alpha."""
    seed, settings, learners = job
    game = random_game(seed)
    points, tail = settings.checkpoints(), settings.tail_points()
    out: dict[str, Any] = {"seed": seed, "game": {"noise": game.noise, "fail": game.fail, "optimum": game.optimum},
                           "learners": {}}
    for name in learners:
        started = time.perf_counter()
        if name in ("econash", "independent"):
            regret, greedy = play_network(game, settings, "belief" if name == "econash" else "none", seed)
        else:
            regret, greedy = {"oracle": play_oracle, "random": play_random, "bandit": play_bandit}[name](
                game, settings, seed)
        cumulative = list(_accumulate(regret))
        tail_curve = [cumulative[t - 1] for t in tail]
        row: dict[str, Any] = {"alpha": fit_alpha(tail, tail_curve), "tail_curve": tail_curve,
                               "curve": [cumulative[t - 1] for t in points], "seconds": time.perf_counter() - started}
        if greedy:
            row["nash_gap"] = [statistics.fmean(game.nash_gap(j) for j in greedy[t]) for t in points]
            row["greedy_regret"] = [statistics.fmean(game.optimum - game.team_value(j) for j in greedy[t])
                                    for t in points]
        out["learners"][name] = row
    return out


def _accumulate(values: list[float]) -> Any:
    total = 0.0
    for v in values:
        total += v
        yield total


def summarise(runs: list[dict[str, Any]], settings: Settings, learners: tuple[str, ...]) -> dict[str, Any]:
    from econash.stats import bootstrap_mean_interval

    points = settings.checkpoints()
    summary: dict[str, Any] = {}
    for name in learners:
        rows = [run["learners"][name] for run in runs]
        alphas = [r["alpha"] for r in rows]
        finals = [r["curve"][-1] for r in rows]
        mean_curve = [statistics.fmean(r["curve"][k] for r in rows) for k in range(len(points))]
        band = [bootstrap_mean_interval([r["curve"][k] for r in rows], draws=2000) for k in range(len(points))]
        rate_alpha, rate_low, rate_high = rate_alpha_interval(settings.tail_points(), [r["tail_curve"] for r in rows])
        entry: dict[str, Any] = {
            "alpha": statistics.fmean(alphas), "alpha_ci": list(bootstrap_mean_interval(alphas)),
            # the offset-free reading (fit_rate_alpha): the exponent of the tail's regret per episode
            "rate_alpha": rate_alpha, "rate_alpha_ci": [rate_low, rate_high],
            "alpha_per_seed": alphas,
            # the fit on the seeds' mean curve, over the same tail points
            "alpha_of_mean_curve": fit_alpha(settings.tail_points(), [statistics.fmean(column) for column in
                                                                      zip(*(r["tail_curve"] for r in rows))]),
            "final_regret": statistics.fmean(finals), "final_regret_ci": list(bootstrap_mean_interval(finals)),
            "curve": {"t": points, "mean": mean_curve, "low": [b[0] for b in band], "high": [b[1] for b in band]},
            "seconds_per_seed": statistics.fmean(r["seconds"] for r in rows),
        }
        if "nash_gap" in rows[0]:
            gaps = [r["nash_gap"][-1] for r in rows]
            entry["nash_gap"] = {"t": points, "mean": [statistics.fmean(r["nash_gap"][k] for r in rows)
                                                       for k in range(len(points))]}
            entry["greedy_regret"] = {"t": points, "mean": [statistics.fmean(r["greedy_regret"][k] for r in rows)
                                                            for k in range(len(points))]}
            entry["final_nash_gap"] = statistics.fmean(gaps)
            entry["final_nash_gap_ci"] = list(bootstrap_mean_interval(gaps))
            entry["final_greedy_regret"] = statistics.fmean(r["greedy_regret"][-1] for r in rows)
            entry["seeds_greedy_optimal"] = sum(r["greedy_regret"][-1] < 1e-9 for r in rows)
        summary[name] = entry
    return summary


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result["settings"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    colours = {"econash": "C0", "independent": "C1", "oracle": "C2", "bandit": "C3", "random": "C7"}
    for name, entry in result["learners"].items():
        c = entry["curve"]
        label = f"{name} (alpha {entry['alpha']:.2f} [{entry['alpha_ci'][0]:.2f}, {entry['alpha_ci'][1]:.2f}])"
        left.plot(c["t"], c["mean"], color=colours.get(name), label=label)
        left.fill_between(c["t"], c["low"], c["high"], color=colours.get(name), alpha=0.2)
        if "nash_gap" in entry:
            right.plot(entry["nash_gap"]["t"], entry["nash_gap"]["mean"], color=colours.get(name), label=f"{name}: Nash gap")
            right.plot(entry["greedy_regret"]["t"], entry["greedy_regret"]["mean"], color=colours.get(name), ls="--",
                       label=f"{name}: V* - V(greedy)")
    left.axvspan(s["tail_start"], s["episodes"], color="0.9", zorder=0, label="tail (fit window)")
    left.set(xscale="log", yscale="log", xlabel="episodes T", ylabel="cumulative pseudo-regret R(T)",
             title=f"{s['seeds']} seeds, {s['schedule']} exploration, horizon {s['horizon']}; 95% bootstrap band")
    left.legend(fontsize=7, loc="upper left")
    right.set(xscale="log", xlabel="episodes", ylabel="mean over seeds",
              title="greedy joint action on held-out questions")
    right.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_table(result: dict[str, Any]) -> None:
    s = result["settings"]
    print(f"regret on the coordination game: {s['seeds']} seeds x {s['episodes']} episodes, {s['schedule']} "
          f"exploration (horizon {s['horizon']}), tail t >= {s['tail_start']}")
    print(f"{'learner':>12} {'alpha [95% CI]':>22} {'rate alpha [95% CI]':>22} {'R(T) [95% CI]':>24} "
          f"{'Nash gap (greedy)':>18} {'greedy optimal':>15}")
    for name, e in result["learners"].items():
        alpha = f"{e['alpha']:.3f} [{e['alpha_ci'][0]:.3f}, {e['alpha_ci'][1]:.3f}]"
        rate = f"{e['rate_alpha']:.3f} [{e['rate_alpha_ci'][0]:.3f}, {e['rate_alpha_ci'][1]:.3f}]"
        final = f"{e['final_regret']:.1f} [{e['final_regret_ci'][0]:.1f}, {e['final_regret_ci'][1]:.1f}]"
        gap = f"{e['final_nash_gap']:.3f}" if "final_nash_gap" in e else "-"
        optimal = f"{e['seeds_greedy_optimal']}/{s['seeds']}" if "seeds_greedy_optimal" in e else "-"
        print(f"{name:>12} {alpha:>22} {rate:>22} {final:>24} {gap:>18} {optimal:>15}")
    target = result["target"]
    print(f"target (econash alpha < 0.8, upper bound < 0.9): {'met' if target['met'] else 'NOT met'}; "
          f"on the rate exponent: {'met' if target['rate_met'] else 'NOT met'}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=Settings.episodes)
    parser.add_argument("--seeds", type=int, default=Settings.seeds)
    parser.add_argument("--horizon", type=int, default=Settings.horizon, help="exploration horizon H")
    parser.add_argument("--schedule", choices=["inverse_sqrt", "linear"], default=Settings.schedule)
    parser.add_argument("--learners", default=",".join(LEARNERS))
    parser.add_argument("--workers", type=int, default=2,
                        help="processes, one seed each at a time (at most the machine's cores); results do not depend on it")
    parser.add_argument("--smoke", action="store_true", help="2 seeds, 240 episodes, horizon 30")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--publish", action="store_true", help="also write docs/results/regret.json and regret-loglog.png")
    args = parser.parse_args(argv)
    if args.smoke:
        args.seeds, args.episodes, args.horizon = 2, 240, 30
    settings = Settings(episodes=args.episodes, seeds=args.seeds, horizon=args.horizon, schedule=args.schedule)
    learners = tuple(name for name in args.learners.split(",") if name)
    unknown = set(learners) - set(LEARNERS)
    if unknown:
        parser.error(f"unknown learners {sorted(unknown)}; choose from {', '.join(LEARNERS)}")
    started = time.perf_counter()
    jobs = [(seed, settings, learners) for seed in range(settings.seeds)]
    workers = max(1, min(os.cpu_count() or 1, args.workers, settings.seeds))
    if workers == 1:
        runs = [run_seed(job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            runs = list(pool.map(run_seed, jobs))
    summary = summarise(runs, settings, learners)
    econash = summary.get("econash")
    result: dict[str, Any] = {
        "benchmark": "regret",
        "settings": {**asdict(settings), "tail_start": settings.tail_start, "fit_points": settings.points,
                     "bandit": "Thompson sampling over joint actions, Beta(1, 1) priors; no epsilon",
                     "update_interval": settings.update_interval},
        "learners": summary,
        "target": {"econash_alpha_below": 0.8, "econash_alpha_upper_below": 0.9,
                   "met": bool(econash and econash["alpha"] < 0.8 and econash["alpha_ci"][1] < 0.9),
                   # the same bounds on the offset-free rate exponent
                   "rate_met": bool(econash and econash["rate_alpha"] < 0.8 and econash["rate_alpha_ci"][1] < 0.9)},
        "instances": [{"seed": run["seed"], **run["game"]} for run in runs],
        "per_seed": [{"seed": run["seed"], **{name: {"alpha": row["alpha"], "final_regret": row["curve"][-1],
                                                     "final_nash_gap": row.get("nash_gap", [None])[-1]}
                                              for name, row in run["learners"].items()}} for run in runs],
        "seconds": time.perf_counter() - started,
        "python": sys.version.split()[0],
    }
    out = args.out or RESULTS / f"regret{'_smoke' if args.smoke else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print_table(result)
    print(f"written: {out}")
    if args.publish:
        docs = ROOT / "docs" / "results"
        (docs / "regret.json").write_text(json.dumps(result, indent=2))
        plot(result, docs / "regret-loglog.png")
        print(f"written: {docs / 'regret.json'}, {docs / 'regret-loglog.png'}")
    elif not args.smoke:
        plot(result, out.with_suffix(".png"))
    return result


if __name__ == "__main__":
    main()
