"""The learning core: gradients reach every module, Q_tot is monotone, greedy actions agree, checkpoints are exact."""

from __future__ import annotations

import itertools
import random

import pytest
import torch

from econash.errors import ConfigError
from econash.learning.actions import ActionGrid
from econash.learning.buffer import ReplayBuffer, transition_scheme
from econash.learning.learner import EarlyStopping, Learner, LearnerConfig
from econash.learning.networks import BeliefMixer
from econash.types import Capabilities

N, A, D = 3, 6, 16


def make_learner(**overrides) -> Learner:
    return Learner(LearnerConfig(batch_size=8, **overrides), n_agents=N, n_actions=A, embed_dim=D, seed=0)


def fill(learner: Learner, count: int = 16, seed: int = 0) -> None:
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(count):
        snap = learner.snapshot()
        actions = [rng.randrange(A) for _ in range(N)]
        rewards = [rng.random() for _ in range(N)]
        learner.observe({"e_q": torch.randn(D, generator=gen), "e_s": torch.randn(D, generator=gen), **snap,
                         "actions": torch.tensor(actions), "rewards": torch.tensor(rewards),
                         "team": torch.tensor(rng.random()), "e_c": torch.randn(D, generator=gen)})
        learner.advance_history(actions, rewards)


def parameter_groups(learner: Learner) -> dict[str, list[torch.Tensor]]:
    b = learner.beliefs
    return {
        "history GRU": list(learner.history.parameters()),
        "belief encoders": list(b.encoders.parameters()),
        "Q heads": list(b.q_heads.parameters()),
        "identity embeddings": list(b.identity.parameters()),
        "action embeddings": list(b.action_embedding.parameters()),
        "belief encoder (E)": list(learner.encoder.parameters()),
        "mixer": list(learner.mixer.parameters()),
    }


def test_one_update_changes_every_parameter_group():
    learner = make_learner()
    fill(learner)
    before = {name: [p.detach().clone() for p in params] for name, params in parameter_groups(learner).items()}
    metrics = learner.update()
    assert metrics is not None and {"td", "local", "sd"} <= set(metrics)
    for name, params in parameter_groups(learner).items():
        changed = any(not torch.equal(old, new) for old, new in zip(before[name], params))
        assert changed, f"{name} did not change after one update"


@pytest.mark.parametrize("loss_name", ["local", "sd", "td"])
def test_each_loss_reaches_the_belief_networks(loss_name):
    learner = make_learner()
    fill(learner)
    batch = learner.buffer.sample(8, random.Random(0))
    learner.optimizer.zero_grad()
    learner.losses(batch)[loss_name].backward()
    grads = [p.grad for p in learner.beliefs.encoders.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads), f"L_{loss_name} gives the belief networks no gradient"
    gru = [p.grad for p in learner.history.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in gru), f"L_{loss_name} gives the history GRU no gradient"


def test_sd_loss_reaches_action_embeddings_through_the_mixer():
    learner = make_learner()
    fill(learner)
    learner.optimizer.zero_grad()
    learner.losses(learner.buffer.sample(8, random.Random(1)))["sd"].backward()
    assert learner.beliefs.action_embedding.weight.grad.abs().sum() > 0


def test_independent_learners_train_without_the_mixer():
    learner = make_learner(mixer="none")
    fill(learner)
    mixer_before = [p.clone() for p in learner.mixer.parameters()]
    metrics = learner.update()
    assert set(metrics) >= {"loss", "local"} and "td" not in metrics
    assert all(torch.equal(a, b) for a, b in zip(mixer_before, learner.mixer.parameters()))


def test_q_tot_is_monotone_in_every_q_i():
    torch.manual_seed(0)
    mixer = BeliefMixer(action_dim=16, group_dim=8, heads=4, feature_dim=8, mixing_dim=8)
    for _ in range(50):
        chosen = torch.randn(5, 4, requires_grad=True)
        prompt = torch.randn(5, 4, 16)
        group = torch.randn(5, 8)
        q_tot, _ = mixer(chosen, prompt, group)
        (grad,) = torch.autograd.grad(q_tot.sum(), chosen)
        assert (grad >= 0).all(), grad.min()


def test_joint_greedy_action_equals_per_agent_greedy_actions():
    torch.manual_seed(1)
    n, a = 3, 4
    mixer = BeliefMixer(action_dim=8, group_dim=8, heads=2, feature_dim=8, mixing_dim=8)
    table = torch.randn(a, 8)
    for _ in range(30):
        q_all = torch.randn(1, n, a)
        group = torch.randn(1, 8)
        prompt = BeliefMixer.prompt_embeddings(q_all, table)  # a function of the state only
        best, best_joint = -float("inf"), None
        for joint in itertools.product(range(a), repeat=n):
            chosen = q_all[0, torch.arange(n), torch.tensor(joint)].unsqueeze(0)
            with torch.no_grad():
                value = float(mixer(chosen, prompt, group)[0])
            if value > best:
                best, best_joint = value, joint
        assert list(best_joint) == q_all[0].argmax(dim=-1).tolist()


def test_checkpoint_round_trip_is_exact():
    learner = make_learner()
    fill(learner, 20)
    learner.update()
    state = learner.state_dict()
    e_q, e_s = torch.randn(D), torch.randn(D)
    q_before, _, _ = learner.q_values(e_q, e_s)
    # Carry on: the original and a restored copy must stay identical, sampling and all.
    restored = make_learner()
    restored.load_state_dict(state)
    q_after, _, _ = restored.q_values(e_q, e_s)
    assert torch.equal(q_before, q_after)
    assert learner.act(e_q, e_s, explore=False, rng=random.Random(0), step=0)[0] == \
        restored.act(e_q, e_s, explore=False, rng=random.Random(0), step=0)[0]
    fill(learner, 4, seed=5)
    fill(restored, 4, seed=5)
    m1, m2 = learner.update(), restored.update()
    assert m1 == m2
    for p1, p2 in zip(learner.mixer.parameters(), restored.mixer.parameters()):
        assert torch.equal(p1, p2)


def test_exploration_schedules():
    learner = make_learner(epsilon_start=1.0, epsilon_end=0.0, epsilon_decay_episodes=10)
    e_q, e_s = torch.randn(D), torch.randn(D)
    greedy = learner.act(e_q, e_s, explore=False, rng=random.Random(0), step=0)[0]
    late = learner.act(e_q, e_s, explore=True, rng=random.Random(0), step=100)[0]
    assert late == greedy  # epsilon reached 0
    early = {tuple(learner.act(e_q, e_s, explore=True, rng=random.Random(s), step=0)[0]) for s in range(20)}
    assert len(early) > 5  # epsilon 1: random
    boltzmann = make_learner(exploration="boltzmann")
    picks = {tuple(boltzmann.act(e_q, e_s, explore=True, rng=random.Random(s), step=0)[0]) for s in range(20)}
    assert len(picks) > 1


def test_early_stopping():
    stopper = EarlyStopping(window=4, min_delta=0.01, patience=3)
    stopper.record([0.5] * 4)
    assert not stopper.step()  # first average sets the best
    assert [stopper.step() for _ in range(3)] == [False, False, True]
    stopper = EarlyStopping(window=2, min_delta=0.01, patience=2)
    for value in (0.1, 0.2, 0.3, 0.4):
        stopper.record([value, value])
        assert not stopper.step()  # improving


def test_buffer_scheme_and_errors():
    buffer = ReplayBuffer(transition_scheme(2, 4, 3, 5), capacity=3)
    good = {"e_q": torch.zeros(4), "e_s": torch.zeros(4), "h_base": torch.zeros(2, 3), "h_input": torch.zeros(2, 6),
            "actions": torch.tensor([1, 2]), "rewards": torch.zeros(2), "team": torch.tensor(1.0),
            "e_c": torch.zeros(4), "model_ids": torch.zeros(2, dtype=torch.long)}
    for _ in range(5):
        buffer.add(good)
    assert len(buffer) == 3  # a ring
    with pytest.raises(ValueError, match="shape"):
        buffer.add({**good, "actions": torch.tensor([1, 2, 3])})
    with pytest.raises(KeyError):
        buffer.add({k: v for k, v in good.items() if k != "team"})


def test_action_grid_clips_to_capabilities():
    grid = ActionGrid([0.2, 1.5], [0.9], ["direct", "plan"])
    assert len(grid) == 4
    clipped = grid.clipped(Capabilities(temperature_range=(0.0, 1.0), supports_top_p=False))
    assert {a.temperature for a in clipped} == {0.2, 1.0} and {a.top_p for a in clipped} == {1.0}


def test_heads_must_divide_dimensions():
    with pytest.raises(ConfigError, match="divisible by heads"):
        Learner(LearnerConfig(belief_dim=30, heads=4), n_agents=2, n_actions=2, embed_dim=4)


def test_staggered_exploration_settles_executors_one_after_another():
    learner = make_learner(epsilon_start=1.0, epsilon_end=0.0, epsilon_decay_episodes=100, exploration_stagger=0.5)
    at_60 = [learner.exploration_value(60, i) for i in range(N)]
    assert at_60[0] == 0.0 and 0.0 < at_60[1] < at_60[2]  # horizons 50, 75, 100
    assert [learner.exploration_value(100, i) for i in range(N)] == [0.0] * N
    flat = make_learner(epsilon_decay_episodes=100, exploration_stagger=0.0)
    assert len({flat.exploration_value(60, i) for i in range(N)}) == 1
