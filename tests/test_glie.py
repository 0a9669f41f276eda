"""The learner's exploration schedules: the default keeps its floor, ``inverse_sqrt`` decays to zero.

Regret can only be sublinear if exploration goes to zero (greedy in the limit), while the sum of
the exploration rates diverges (every action keeps being tried): GLIE. The linear default stops at
``epsilon_end``, which makes any learner's regret linear; benchmarks/regret.py needs the other one.
"""

from __future__ import annotations

import math
import random

import pytest
import torch

from econash_plugins.methods.econash.learner import Learner, LearnerConfig, inverse_sqrt_schedule


def learner(**options) -> Learner:
    return Learner(LearnerConfig(epsilon_decay_episodes=100, **options), n_agents=3, n_actions=6, embed_dim=8, seed=0)


def test_the_default_schedule_is_linear_with_a_floor():
    default = learner()
    assert LearnerConfig().exploration_schedule == "linear"
    assert default.exploration_value(0) == pytest.approx(1.0)
    assert default.exploration_value(50) == pytest.approx(0.55)
    assert default.exploration_value(100) == pytest.approx(0.1)
    assert default.exploration_value(10**6) == pytest.approx(0.1)  # the floor: never greedy


def test_inverse_sqrt_decays_to_zero_monotonically():
    glie = learner(exploration_schedule="inverse_sqrt")
    values = [glie.exploration_value(t) for t in range(0, 20_000, 7)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert values[0] == pytest.approx(1.0)  # capped at epsilon_start
    assert glie.exploration_value(99) == pytest.approx(0.1)  # epsilon_end at the horizon
    assert glie.exploration_value(10**6) < 0.002 and glie.exploration_value(10**10) < 1e-5
    # t^-1/2: a hundred times the steps, a tenth of the epsilon
    assert glie.exploration_value(9_999) == pytest.approx(glie.exploration_value(99) / 10)
    # ... and its sum diverges like sqrt(T): every action keeps being tried
    partial = sum(inverse_sqrt_schedule(1.0, 0.1, t, 100) for t in range(40_000))
    assert partial > 0.9 * 2 * 0.1 * math.sqrt(100 * 40_000)


def test_inverse_sqrt_applies_to_boltzmann_and_the_stagger():
    glie = learner(exploration_schedule="inverse_sqrt", exploration="boltzmann", exploration_stagger=0.5)
    assert glie.exploration_value(10**6, agent=0) < glie.exploration_value(10**6, agent=2) < 0.01


def test_acting_becomes_greedy():
    glie = learner(exploration_schedule="inverse_sqrt")
    e_q, e_s = torch.ones(8), torch.zeros(8)
    greedy, _ = glie.act(e_q, e_s, explore=False, rng=random.Random(0), step=0)
    rng = random.Random(1)
    late = [glie.act(e_q, e_s, explore=True, rng=rng, step=10**8)[0] for _ in range(200)]
    assert all(actions == greedy for actions in late)
    linear = learner()
    rng = random.Random(1)
    floor = [linear.act(e_q, e_s, explore=True, rng=rng, step=10**8)[0] for _ in range(200)]
    assert sum(actions != greedy for actions in floor) > 20  # 1 - (1 - 0.1 * 5/6)^3: about 23%


def test_unknown_schedules_are_refused():
    with pytest.raises(ValueError):
        LearnerConfig(exploration_schedule="constant")
