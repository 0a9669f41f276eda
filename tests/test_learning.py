"""The learning core: gradients reach every module, Q_tot is monotone, greedy actions agree, checkpoints are
exact, observations are scaled, failed executors are masked, targets follow softly, schedules fit the run."""

from __future__ import annotations

import itertools
import random

import pytest
import torch

from econash_plugins.methods.econash.actions import ActionGrid
from econash_plugins.methods.econash.buffer import ReplayBuffer, transition_scheme
from econash_plugins.methods.econash.learner import Learner, LearnerConfig
from econash_plugins.methods.econash.networks import BeliefMixer, HierarchicalMixer
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


def test_one_update_changes_every_parameter_of_every_group():
    learner = make_learner()
    fill(learner)
    before = {name: [p.detach().clone() for p in params] for name, params in parameter_groups(learner).items()}
    metrics = learner.update()
    assert metrics is not None and {"td", "local", "sd"} <= set(metrics)
    for name, params in parameter_groups(learner).items():
        unchanged = [i for i, (old, new) in enumerate(zip(before[name], params)) if torch.equal(old, new)]
        assert not unchanged, f"{name}: parameter tensors {unchanged} of {len(params)} did not change after one update"


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


def test_buffer_scheme_and_errors():
    buffer = ReplayBuffer(transition_scheme(2, 4, 3, 5), capacity=3)
    good = {"e_q": torch.zeros(4), "e_s": torch.zeros(2, 4), "h_base": torch.zeros(2, 3),
            "h_input": torch.zeros(2, 6), "actions": torch.tensor([1, 2]), "rewards": torch.zeros(2),
            "team": torch.tensor(1.0), "e_c": torch.zeros(2, 4), "model_ids": torch.zeros(2, dtype=torch.long),
            "e_s_next": torch.zeros(2, 4), "done": torch.tensor(1.0), "mask": torch.ones(2)}
    for _ in range(5):
        buffer.add(good)
    assert len(buffer) == 3  # a ring
    with pytest.raises(ValueError, match="shape"):
        buffer.add({**good, "actions": torch.tensor([1, 2, 3])})
    with pytest.raises(KeyError):
        buffer.add({k: v for k, v in good.items() if k != "team"})


def test_action_grid_clips_to_capabilities():
    grid = ActionGrid([0.2, 1.5], [0.9], ["steps", "plan"])
    assert len(grid) == 4
    clipped = grid.clipped(Capabilities(temperature_range=(0.0, 1.0), supports_top_p=False))
    assert {a.temperature for a in clipped} == {0.2, 1.0} and {a.top_p for a in clipped} == {1.0}


def test_heads_must_divide_dimensions():
    with pytest.raises(ValueError, match="divisible by heads"):  # the config refuses it, before any network
        LearnerConfig(belief_dim=30, heads=4)


def test_staggered_exploration_settles_executors_one_after_another():
    learner = make_learner(epsilon_start=1.0, epsilon_end=0.0, epsilon_decay_episodes=100, exploration_stagger=0.5)
    at_60 = [learner.exploration_value(60, i) for i in range(N)]
    assert at_60[0] == 0.0 and 0.0 < at_60[1] < at_60[2]  # horizons 50, 75, 100
    assert [learner.exploration_value(100, i) for i in range(N)] == [0.0] * N
    flat = make_learner(epsilon_decay_episodes=100, exploration_stagger=0.0)
    assert len({flat.exploration_value(60, i) for i in range(N)}) == 1


# ---------------------------------------------------------------- hierarchical mixing (multi topology)


def test_hierarchical_q_tot_is_monotone_and_its_greedy_joint_action_is_per_agent_greedy():
    torch.manual_seed(2)
    clusters = [[0, 2], [1, 3]]
    mixer = HierarchicalMixer(clusters, action_dim=8, group_dim=8, heads=2, feature_dim=8, mixing_dim=8)
    for _ in range(20):
        chosen = torch.randn(4, 4, requires_grad=True)
        q_tot, features = mixer(chosen, torch.randn(4, 4, 8), torch.randn(4, 2, 8), torch.randn(4, 8))
        (grad,) = torch.autograd.grad(q_tot.sum(), chosen)
        assert (grad >= 0).all() and features.shape == (4, 4, 8)
    table, a = torch.randn(3, 8), 3
    for _ in range(10):
        q_all = torch.randn(1, 4, a)
        prompt = BeliefMixer.prompt_embeddings(q_all, table)
        groups, group = torch.randn(1, 2, 8), torch.randn(1, 8)
        with torch.no_grad():
            values = {joint: float(mixer(q_all[0, torch.arange(4), torch.tensor(joint)].unsqueeze(0), prompt,
                                         groups, group)[0])
                      for joint in itertools.product(range(a), repeat=4)}
        assert list(max(values, key=values.get)) == q_all[0].argmax(dim=-1).tolist()


def test_hierarchical_features_come_back_in_executor_order():
    torch.manual_seed(3)
    mixer = HierarchicalMixer([[2], [0, 1]], action_dim=8, group_dim=8, heads=2, feature_dim=8, mixing_dim=8)
    chosen, prompt, groups = torch.randn(1, 3), torch.randn(1, 3, 8), torch.randn(1, 2, 8)
    _, features = mixer(chosen, prompt, groups, torch.randn(1, 8))
    _, first = mixer.cluster_mixers[0](chosen[:, [2]], prompt[:, [2]], groups[:, 0])
    _, second = mixer.cluster_mixers[1](chosen[:, [0, 1]], prompt[:, [0, 1]], groups[:, 1])
    assert torch.allclose(features[:, 2], first[:, 0]) and torch.allclose(features[:, :2], second)


def test_one_hierarchical_update_changes_every_parameter_group():
    learner = Learner(LearnerConfig(batch_size=8), n_agents=4, n_actions=A, embed_dim=D, clusters=[[0, 1], [2, 3]])
    rng = random.Random(0)
    for _ in range(16):
        actions = [rng.randrange(A) for _ in range(4)]
        learner.observe({"e_q": torch.randn(D), "e_s": torch.randn(4, D), **learner.snapshot(),
                         "actions": torch.tensor(actions), "rewards": torch.rand(4), "team": torch.tensor(rng.random()),
                         "e_c": torch.randn(4, D)})
    mixer = learner.mixer
    groups = {"cluster mixer 0": mixer.cluster_mixers[0], "cluster mixer 1": mixer.cluster_mixers[1],
              "global mixer": mixer.hyper_w1, "projection P": mixer.project, "encoder": learner.encoder,
              "belief networks": learner.beliefs}
    before = {name: [p.detach().clone() for p in m.parameters()] for name, m in groups.items()}
    learner.update()
    for name, module in groups.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[name], module.parameters())), f"{name} did not change"


# ---------------------------------------------------------------- multi-round episodes and target networks


def test_target_networks_hold_still_between_refreshes():
    learner = make_learner(target_update_interval=3, updates_per_step=1)
    fill(learner)
    frozen = [p.clone() for p in learner.targets["beliefs"].parameters()]
    learner.update()
    learner.update()
    assert all(torch.equal(a, b) for a, b in zip(frozen, learner.targets["beliefs"].parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(frozen, learner.beliefs.parameters()))
    learner.update()  # the third gradient step refreshes every target
    for name, module in learner.modules.items():
        assert all(torch.equal(a, b) for a, b in zip(module.state_dict().values(),
                                                     learner.targets[name].state_dict().values())), name


def test_two_round_episodes_learn_the_bootstrapped_values_and_greedy_actions():
    """Round 1 pays 0.2 when both executors take action 0; round 2 pays 1 when both take action 1.
    With gamma 0.9 the optimum is Q_tot(round 1, (0, 0)) = 0.2 + 0.9 * 1 = 1.1, reached only by
    bootstrapping through the target networks, with greedy (0, 0) then (1, 1)."""
    torch.manual_seed(0)
    n, a, d = 2, 2, 4
    learner = Learner(LearnerConfig(batch_size=32, gamma=0.9, lambda_local=0.0, lambda_sd=0.0, lr=3e-3,
                                    target_update_interval=20, updates_per_step=1, buffer_size=512),
                      n_agents=n, n_actions=a, embed_dim=d, seed=0)
    e_q, first, second = torch.ones(d), torch.tensor([1.0, 0, 0, 0]), torch.tensor([0, 1.0, 0, 0])
    rng = random.Random(0)
    for _ in range(256):
        joint1 = [rng.randrange(a) for _ in range(n)]
        joint2 = [rng.randrange(a) for _ in range(n)]
        common = {"e_q": e_q, **learner.snapshot(), "rewards": torch.zeros(n), "e_c": torch.ones(d)}
        learner.observe({**common, "e_s": first, "actions": torch.tensor(joint1),
                         "team": torch.tensor(0.2 if joint1 == [0, 0] else 0.0), "e_s_next": second, "done": 0.0})
        learner.observe({**common, "e_s": second, "actions": torch.tensor(joint2),
                         "team": torch.tensor(1.0 if joint2 == [1, 1] else 0.0), "done": 1.0})
    for _ in range(600):
        learner.update()

    def q_tot(e_s: torch.Tensor, joint: list[int]) -> float:
        batch = {"e_q": e_q[None], "e_s": e_s.expand(n, -1)[None], **{k: v[None] for k, v in learner.snapshot().items()},
                 "model_ids": learner.model_ids[None]}
        with torch.no_grad():
            h = learner.history(batch["h_input"], batch["h_base"])
            beliefs, q = learner.beliefs(batch["e_q"], batch["e_s"], h, learner.model_ids)
            chosen = q.gather(-1, torch.tensor(joint)[None, :, None]).squeeze(-1)
            return float(learner._mix(learner.modules, beliefs, q, chosen)[0])

    assert learner.act(e_q, first, explore=False, rng=rng, step=0)[0] == [0, 0]
    assert learner.act(e_q, second, explore=False, rng=rng, step=0)[0] == [1, 1]
    assert q_tot(second, [1, 1]) == pytest.approx(1.0, abs=0.1)
    assert q_tot(first, [0, 0]) == pytest.approx(1.1, abs=0.12)  # 0.2 now plus 0.9 x 1 later
    assert q_tot(first, [1, 0]) == pytest.approx(0.9, abs=0.12)


def test_checkpoints_hold_the_target_networks():
    learner = make_learner(target_update_interval=1)
    fill(learner)
    learner.update()
    clone = make_learner()
    clone.load_state_dict(learner.state_dict())
    for name in learner.targets:
        for a, b in zip(learner.targets[name].state_dict().values(), clone.targets[name].state_dict().values()):
            assert torch.equal(a, b)


def test_learning_rate_anneals_with_exploration():
    learner = make_learner(lr=1e-3, lr_end=1e-4, epsilon_decay_episodes=100, updates_per_step=1)
    fill(learner)
    assert learner.update()["lr"] == pytest.approx(1e-3)
    learner.episodes = 50
    learner.update()
    assert learner.optimizer.param_groups[0]["lr"] == pytest.approx(5.5e-4)
    learner.episodes = 400
    assert learner.update()["lr"] == pytest.approx(1e-4)  # stays at lr_end after the horizon
    constant = make_learner(lr=1e-3, lr_end=None)
    fill(constant)
    constant.episodes = 400
    assert constant.update()["lr"] == pytest.approx(1e-3)
