"""What makes the default learner able to learn: scaled observations, greedy-action prompt embeddings,
factored Q heads, failed executors masked out, soft target updates, learning_starts, and schedules
that follow the run's length; and a fast learning test on a bandit whose answer is known."""

from __future__ import annotations

import random

import pytest
import torch
from torch.nn import functional as F

from econash_plugins.methods.econash.actions import ActionGrid
from econash_plugins.methods.econash.learner import Learner, LearnerConfig
from econash_plugins.methods.econash.networks import BeliefMixer

N, D = 3, 16
GRID = ActionGrid([0.0, 0.5, 1.0], [1.0], ["short", "steps"])  # 6 actions, factors of 3 and 2 levels


def make(**overrides) -> Learner:
    config = {"batch_size": 8, **overrides}
    return Learner(LearnerConfig(**config), n_agents=N, n_actions=len(GRID), embed_dim=D, seed=0,
                   factor_levels=GRID.factor_levels)


def observe(learner: Learner, count: int, *, mask: list[float] | None = None, seed: int = 0) -> None:
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(count):
        actions = [rng.randrange(len(GRID)) for _ in range(N)]
        row = {"e_q": torch.randn(D, generator=gen), "e_s": torch.randn(D, generator=gen), **learner.snapshot(),
               "actions": torch.tensor(actions), "rewards": torch.rand(N, generator=gen),
               "team": torch.tensor(rng.random()), "e_c": torch.randn(D, generator=gen)}
        if mask is not None:
            row["mask"] = torch.tensor(mask)
        learner.observe(row)


# ---------------------------------------------------------------- observations and belief channels


def test_observation_parts_have_comparable_norms():
    """The identity embedding (norm about 4 at init) must not swamp unit-norm question embeddings."""
    learner = make()
    seen: list[torch.Tensor] = []
    first_layer = learner.beliefs.encoders[0][0]
    handle = first_layer.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    h = torch.tanh(torch.randn(N, learner.config.history_dim) * 3)  # a saturated history state
    with torch.no_grad():
        learner.beliefs(torch.randn(1, D) * 5, torch.randn(1, D) * 5, h.unsqueeze(0), learner.model_ids)
    handle.remove()
    obs = seen[0][0]
    parts = torch.split(obs, [D, D, learner.config.history_dim, learner.config.id_dim])
    norms = [float(part.norm()) for part in parts]
    assert norms[0] == pytest.approx(1.0, abs=1e-4) and norms[1] == pytest.approx(1.0, abs=1e-4)
    assert norms[3] == pytest.approx(1.0, abs=1e-4), f"identity part has norm {norms[3]}"
    assert norms[2] <= 1.0 + 1e-4


def test_prompt_embeddings_are_the_greedy_actions_embeddings():
    table = torch.randn(4, 8)
    q = torch.tensor([[[0.2, 0.9, 0.1, 0.3], [0.6, 0.5, 0.4, 0.45]]])  # values in [0, 1], as rewards give
    embeddings = BeliefMixer.prompt_embeddings(q, table)
    assert torch.equal(embeddings[0, 0], table[1]) and torch.equal(embeddings[0, 1], table[0])
    # Two executors with different greedy actions hand the mixer different inputs (a softmax over
    # such values would hand it two nearly equal averages of the table).
    assert float(F.cosine_similarity(embeddings[0, 0], embeddings[0, 1], dim=0)) < 0.9


def test_confidence_weights_tell_executors_apart():
    from econash_plugins.methods.econash.method import EcoNashOptions, _softmax

    weights = _softmax([0.9, 0.5, 0.1], EcoNashOptions().confidence_temperature)
    assert max(weights) > 0.9 and min(weights) < 0.05  # at temperature 1 they would read 0.45 .. 0.20


# ---------------------------------------------------------------- factored Q heads


def test_factored_q_is_a_sum_of_factor_utilities():
    learner = make()
    q, _, _ = learner.q_values(torch.randn(D), torch.randn(D))
    index = {GRID[a].label(): a for a in range(len(GRID))}

    def value(agent: int, t: float, style: str) -> float:
        return float(q[agent, index[f"T={t:g} p=1 {style}"]])

    for agent in range(N):  # additivity: swapping one factor changes Q by the same amount everywhere
        assert value(agent, 0.0, "short") + value(agent, 1.0, "steps") == pytest.approx(
            value(agent, 0.0, "steps") + value(agent, 1.0, "short"), abs=1e-5)
    joint = make(q_head="joint")
    qj, _, _ = joint.q_values(torch.randn(D), torch.randn(D))
    a = [index[k] for k in ("T=0 p=1 short", "T=1 p=1 steps", "T=0 p=1 steps", "T=1 p=1 short")]
    assert float(qj[0, a[0]] + qj[0, a[1]] - qj[0, a[2]] - qj[0, a[3]]) != pytest.approx(0.0, abs=1e-4)


def bandit_greedy_temperatures(q_head: str, episodes: int, seed: int) -> list[float]:
    """Executors whose reward depends on the temperature only (0.9 at T=0, 0.5 at 0.5, 0.1 at 1.0, plus
    noise); the styles are noise. Returns each executor's greedy temperature after training."""
    learner = Learner(LearnerConfig(batch_size=16, q_head=q_head, lambda_sd=0.0), n_agents=N,
                      n_actions=len(GRID), embed_dim=D, seed=seed, factor_levels=GRID.factor_levels,
                      train_episodes=episodes)
    rng = random.Random(seed)
    e_q, e_s = torch.randn(D), torch.randn(D)
    pay = {0.0: 0.9, 0.5: 0.5, 1.0: 0.1}
    for step in range(episodes):
        actions, _ = learner.act(e_q, e_s, explore=True, rng=rng, step=step)
        rewards = [min(1.0, max(0.0, pay[GRID[a].temperature] + rng.uniform(-0.3, 0.3))) for a in actions]
        learner.observe({"e_q": e_q, "e_s": e_s, **learner.snapshot(), "actions": torch.tensor(actions),
                         "rewards": torch.tensor(rewards), "team": torch.tensor(sum(rewards) / N),
                         "e_c": e_s})
        if step % 4 == 3:
            learner.update()
    greedy, _ = learner.act(e_q, e_s, explore=False, rng=rng, step=episodes)
    return [GRID[a].temperature for a in greedy]


def test_the_default_learner_learns_a_bandit_fast():
    """Fast learning test (default suite): 80 episodes find the best temperature for every executor."""
    for seed in range(3):
        assert bandit_greedy_temperatures("factored", 80, seed) == [0.0] * N, f"seed {seed}"


# ---------------------------------------------------------------- failed executors


def test_a_failed_executors_action_is_not_learned():
    learner = make()
    observe(learner, 16, mask=[0.0, 1.0, 1.0])  # executor 0 failed in every transition
    batch = learner.buffer.sample(8, random.Random(0))
    losses = learner.losses(batch)
    learner.optimizer.zero_grad()
    losses["loss"].backward()
    head0 = [p.grad for p in learner.beliefs.q_heads[0].parameters()]
    head1 = [p.grad for p in learner.beliefs.q_heads[1].parameters()]
    assert all(g is None or float(g.abs().sum()) == 0.0 for g in head0), "executor 0's Q head was trained"
    assert any(g is not None and float(g.abs().sum()) > 0 for g in head1)


def test_a_failed_executor_keeps_its_history():
    learner = make()
    learner.advance_history([1, 2, 3], [1.0, 1.0, 1.0])
    before = learner.snapshot()
    learner.advance_history([0, 0, 0], [0.0, 0.0, 0.0], mask=[1.0, 0.0, 1.0])
    after = learner.snapshot()
    assert torch.equal(before["h_base"][1], after["h_base"][1]) and torch.equal(before["h_input"][1], after["h_input"][1])
    assert not torch.equal(before["h_input"][0], after["h_input"][0])


# ---------------------------------------------------------------- targets, learning_starts, schedules


def test_targets_follow_softly_so_short_runs_do_not_bootstrap_from_random_networks():
    learner = make(updates_per_step=1)
    observe(learner, 16)
    initial = [p.clone() for p in learner.targets["beliefs"].parameters()]
    for _ in range(10):  # a short run: ten gradient steps
        learner.update()
    online = [p.detach() for p in learner.beliefs.parameters()]
    target = list(learner.targets["beliefs"].parameters())
    moved = sum(float((t - i).norm()) for t, i in zip(target, initial))
    gap_now = sum(float((o - t).norm()) for o, t in zip(online, target))
    gap_initial = sum(float((o - i).norm()) for o, i in zip(online, initial))
    assert moved > 0 and gap_now < gap_initial


def test_no_update_before_the_buffer_holds_a_batch():
    learner = make(batch_size=8)
    observe(learner, 7)
    assert learner.update() is None and learner.updates == 0
    observe(learner, 1, seed=1)
    assert learner.update() is not None


def test_exploration_and_learning_rate_horizons_follow_the_train_size():
    for episodes in (40, 1000):
        learner = Learner(LearnerConfig(), n_agents=N, n_actions=len(GRID), embed_dim=D, train_episodes=episodes)
        assert learner.horizon == round(0.6 * episodes)
        assert learner.exploration_value(learner.horizon) == pytest.approx(learner.config.epsilon_end)
        assert learner.exploration_value(learner.horizon // 2) > learner.config.epsilon_end + 0.3
    fixed = Learner(LearnerConfig(epsilon_decay_episodes=77), n_agents=N, n_actions=4, embed_dim=D, train_episodes=1000)
    assert fixed.horizon == 77


def test_short_runs_take_enough_gradient_steps():
    def steps(**kwargs) -> int:
        config = LearnerConfig(**{k: v for k, v in kwargs.items() if k == "updates_per_step"})
        return Learner(config, n_agents=N, n_actions=4, embed_dim=D,
                       expected_updates=kwargs.get("expected_updates")).steps_per_update

    assert steps(expected_updates=2) == 150 and steps(expected_updates=20) == 15  # 300 steps in all
    assert steps(expected_updates=187) == 4 and steps() == 4  # long runs, or an unknown length: 4
    assert steps(expected_updates=2, updates_per_step=3) == 3
