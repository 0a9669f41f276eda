"""benchmarks/regret.py runs in its smoke mode and writes the fields docs/results/regret.json promises;
the game instances it draws keep the properties the measurement relies on."""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from _game import fixed_game, random_game  # noqa: E402
from coordination_game import team_value  # noqa: E402

LEARNERS = {"econash", "independent", "random", "oracle", "bandit"}


def test_the_fixed_instance_is_the_tests_game():
    game = fixed_game()
    assert all(game.team_value(joint) == pytest.approx(team_value(joint)) for joint in game.values)
    assert game.optimum == 1.0


def test_random_instances_have_one_optimum_up_to_relabelling():
    for seed in range(5):
        game = random_game(seed)
        quiet = game.quiet_temperature()
        teams = {tuple(quiet * 3 + s for s in perm) for perm in itertools.permutations(range(3))}
        assert set(game.optimal_joints()) == teams
        assert all(game.nash_gap(joint) == 0 for joint in teams)
        same_style = (quiet * 3,) * 3
        assert game.nash_gap(same_style) == 0 and game.team_value(same_style) < game.optimum - 0.1  # weak equilibrium
        assert game.nash_gap((quiet * 3, quiet * 3, quiet * 3 + 1)) > 0.1
    assert random_game(0).noise != random_game(1).noise


def test_sampled_rewards_average_to_the_exact_value():
    game, rng = random_game(3), random.Random(0)
    for joint in [game.optimal_joints()[0], (0, 0, 0), (5, 4, 1)]:
        mean = sum(game.sample(joint, rng)[0] for _ in range(4000)) / 4000
        assert mean == pytest.approx(game.team_value(joint), abs=0.03)


def test_regret_benchmark_smoke(tmp_path):
    out = tmp_path / "regret.json"
    result = subprocess.run([sys.executable, "benchmarks/regret.py", "--smoke", "--out", str(out)],
                            capture_output=True, text=True, cwd=REPO, timeout=400)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert set(report["learners"]) == LEARNERS
    for name, entry in report["learners"].items():
        low, high = entry["alpha_ci"]
        assert low <= entry["alpha"] <= high, name
        assert len(entry["rate_alpha_ci"]) == 2 and "rate_alpha" in entry
        assert len(entry["alpha_per_seed"]) == 2
        curve = entry["curve"]
        assert curve["t"][-1] == report["settings"]["episodes"] == 240
        assert all(a <= b + 1e-9 for a, b in zip(curve["mean"], curve["mean"][1:])), name  # cumulative
        assert entry["final_regret"] == pytest.approx(curve["mean"][-1])
    assert report["learners"]["oracle"]["final_nash_gap"] == 0
    assert "final_nash_gap" not in report["learners"]["random"]
    # a uniformly random team loses a constant expected value every episode: linear regret
    assert 0.8 <= report["learners"]["random"]["alpha"] <= 1.2
    assert report["learners"]["oracle"]["final_regret"] < report["learners"]["random"]["final_regret"]
    assert report["settings"]["schedule"] == "inverse_sqrt" and report["settings"]["tail_start"] == 120
    assert "alpha [95% CI]" in result.stdout


def test_the_rate_exponent_is_not_fooled_by_early_losses():
    from regret import fit_alpha, fit_rate_alpha

    points = [round(2000 * 2 ** (k / 10)) for k in range(11)]  # 2,000 to 4,000
    linear_after_a_big_start = [300 + 0.1 * t for t in points]  # constant loss per episode in the tail
    assert fit_alpha(points, linear_after_a_big_start) < 0.9  # the log-log slope reads it as sublinear
    assert fit_rate_alpha(points, linear_after_a_big_start) == pytest.approx(1.0, abs=1e-9)
    square_root = [5 * t ** 0.5 for t in points]
    assert fit_rate_alpha(points, square_root) == pytest.approx(0.5, abs=0.01)
    assert fit_rate_alpha(points, [7.0] * len(points)) != fit_rate_alpha(points, [7.0] * len(points))  # nan: no regret
