"""The EcoNash learner: acting with exploration, the replay buffer, and the update of docs/econash-method.md step 10.

One backward pass over ``L_TD + lambda_local * L_local + lambda_sd * L_SD`` and one optimiser over
every module, so gradients reach the history GRU, the belief networks (and action embeddings), the
belief encoder and the mixer. With ``mixer="none"`` the same belief networks learn independently
from their own rewards only (the ablation the mixer is measured against).

Transitions are rounds. The last round of an episode (every round of a single-round episode) has
``done = 1`` and its TD target is the team reward; an earlier round bootstraps:
``y = r + gamma * Q_tot_target(next)``, where the next round's joint action is the online networks'
greedy one (double Q-learning) valued by target networks: copies of every module that follow the
online ones by Polyak averaging (``target_tau`` per gradient step), or by a hard copy every
``target_update_interval`` steps when that is set. Soft updates make the targets' lag a fixed number
of steps whatever the run's length, so a short run does not bootstrap from its random initial
networks.

An executor whose call failed in a round (``mask`` 0) contributes nothing for its action: no
L_local or L_SD term, no gradient to its chosen value through Q_tot, and no step of its history.
Learning starts once the buffer holds ``learning_starts`` transitions (default: one batch), so the
first updates do not fit a handful of transitions over and over.
"""

from __future__ import annotations

import copy
import math
import random
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from econash_plugins.methods.econash.buffer import ReplayBuffer, transition_scheme
from econash_plugins.methods.econash.networks import BeliefEncoder, BeliefMixer, BeliefNetworks, HierarchicalMixer, HistoryCell
from econash_plugins.methods.econash.options import LearnerConfig


def linear_schedule(start: float, end: float, step: int, horizon: int) -> float:
    fraction = min(1.0, step / horizon)
    return start + fraction * (end - start)


def inverse_sqrt_schedule(start: float, end: float, step: int, horizon: int) -> float:
    """``end`` at the horizon, capped at ``start`` before it, and decaying to zero as step^-1/2 after:
    the exploration sum diverges (every action keeps being tried) while epsilon goes to zero."""
    return min(start, end * math.sqrt(horizon / (step + 1)))


class Learner:
    """Owns the networks, optimiser, buffer, carried history and exploration state."""

    #: the horizon used when neither epsilon_decay_episodes nor the run's train size is known
    FALLBACK_HORIZON = 200

    def __init__(self, config: LearnerConfig, *, n_agents: int, n_actions: int, embed_dim: int,
                 model_ids: list[int] | None = None, clusters: list[list[int]] | None = None, seed: int = 0,
                 factor_levels: list[tuple[int, ...]] | None = None, train_episodes: int | None = None,
                 expected_updates: int | None = None) -> None:
        self.config = config
        self.n_agents, self.n_actions, self.embed_dim = n_agents, n_actions, embed_dim
        if config.epsilon_decay_episodes is not None:
            self.horizon = config.epsilon_decay_episodes
        elif train_episodes:
            self.horizon = max(1, round(config.exploration_fraction * train_episodes))
        else:
            self.horizon = self.FALLBACK_HORIZON
        self.train_episodes = train_episodes
        if config.updates_per_step is not None:
            self.steps_per_update = config.updates_per_step
        else:
            wanted = -(-config.min_gradient_steps // expected_updates) if expected_updates else 0
            self.steps_per_update = max(4, wanted)
        if config.q_head == "joint" or factor_levels is None:
            factor_levels = None if config.q_head == "joint" else [(a,) for a in range(n_actions)]
        if config.torch_threads is not None:
            torch.set_num_threads(config.torch_threads)
        torch.manual_seed(seed)
        self.model_ids = torch.tensor(model_ids or [0] * n_agents, dtype=torch.long)
        n_models = int(self.model_ids.max().item()) + 1
        # More than one cluster (the multi topology) mixes hierarchically: per cluster, then globally.
        self.clusters = [list(c) for c in clusters] if clusters and len(clusters) > 1 else None
        self.history = HistoryCell(n_actions, config.history_dim)
        self.beliefs = BeliefNetworks(n_agents, n_actions, embed_dim, config.history_dim, id_dim=config.id_dim,
                                      hidden=config.hidden, belief_dim=config.belief_dim,
                                      action_dim=config.action_dim, n_models=n_models, share=config.share_params,
                                      factor_levels=factor_levels)
        self.encoder = BeliefEncoder(config.belief_dim, config.heads, config.group_dim)
        mixer_sizes = (config.action_dim, config.group_dim, config.heads, config.feature_dim, config.mixing_dim)
        self.mixer: BeliefMixer | HierarchicalMixer = (
            HierarchicalMixer(self.clusters, *mixer_sizes, commitment_dim=embed_dim) if self.clusters
            else BeliefMixer(*mixer_sizes, commitment_dim=embed_dim))
        self.modules = {"history": self.history, "beliefs": self.beliefs, "encoder": self.encoder, "mixer": self.mixer}
        # Target networks for bootstrapped TD targets of multi-round episodes; never trained directly.
        self.targets = {name: copy.deepcopy(m).requires_grad_(False) for name, m in self.modules.items()}
        params = [p for name, m in self.modules.items() if self._trained(name) for p in m.parameters()]
        self.optimizer = torch.optim.Adam(params, lr=config.lr, foreach=True)  # fewer tiny kernels on the CPU
        self.buffer = ReplayBuffer(transition_scheme(n_agents, embed_dim, config.history_dim, n_actions),
                                   config.buffer_size)
        self.rng = random.Random(seed)
        # The carried history: obs uses h = GRU(h_input, h_base); see advance_history.
        self.h_base = torch.zeros(n_agents, config.history_dim)
        self.h_input = torch.zeros(n_agents, n_actions + 1)
        self.episodes = 0
        self.updates = 0

    def _trained(self, name: str) -> bool:
        return self.config.mixer != "none" or name in ("history", "beliefs")

    # ------------------------------------------------------------ acting

    def exploration_value(self, step: int | None = None, agent: int = -1) -> float:
        """Epsilon (or the Boltzmann temperature) at a training step; agent -1 means the last executor."""
        c = self.config
        step = self.episodes if step is None else step
        agent = self.n_agents - 1 if agent < 0 else agent
        scale = 1.0 - c.exploration_stagger + c.exploration_stagger * agent / max(1, self.n_agents - 1)
        horizon = max(1, round(self.horizon * scale))
        schedule = linear_schedule if c.exploration_schedule == "linear" else inverse_sqrt_schedule
        if c.exploration == "epsilon":
            return schedule(c.epsilon_start, c.epsilon_end, step, horizon)
        return schedule(c.boltzmann_start, c.boltzmann_end, step, horizon)

    def learning_rate(self) -> float:
        c = self.config
        if c.lr_end is None:
            return c.lr
        return linear_schedule(c.lr, c.lr_end, self.episodes, self.horizon)

    @torch.no_grad()
    def q_values(self, e_q: Tensor, e_s: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Q values (N, A), beliefs (N, belief) and the history state used, for one observation."""
        h = self.history(self.h_input, self.h_base)
        beliefs, q = self.beliefs(e_q.unsqueeze(0), e_s.unsqueeze(0), h.unsqueeze(0), self.model_ids)
        return q[0], beliefs[0], h

    def act(self, e_q: Tensor, e_s: Tensor, *, explore: bool, rng: random.Random, step: int) -> tuple[list[int], Tensor]:
        """Each executor's action; greedy unless exploring. ``rng`` and ``step`` (the episode's index)
        come from the episode, so concurrent episodes explore the same way whatever order they finish in."""
        q, _, _ = self.q_values(e_q, e_s)
        if not explore:
            return [int(a) for a in q.argmax(dim=-1)], q
        self.episodes = max(self.episodes, step + 1)
        actions = []
        for i in range(self.n_agents):
            value = self.exploration_value(step, i)
            if self.config.exploration == "epsilon":
                actions.append(rng.randrange(self.n_actions) if rng.random() < value else int(q[i].argmax()))
            else:
                weights = torch.softmax(q[i] / value, dim=-1).tolist()
                actions.append(rng.choices(range(self.n_actions), weights=weights)[0])
        return actions, q

    def snapshot(self) -> dict[str, Tensor]:
        """The carried history an episode observes; stored with its transition for the GRU's gradient."""
        return {"h_base": self.h_base.clone(), "h_input": self.h_input.clone()}

    @torch.no_grad()
    def advance_history(self, actions: list[int], rewards: list[float], mask: list[float] | None = None) -> None:
        """One GRU step of each executor's carried history; executors with mask 0 (failed calls) keep theirs."""
        h_base = self.history(self.h_input, self.h_base)
        h_input = self.history.input_for(torch.tensor(actions), torch.tensor(rewards))
        keep = torch.tensor(mask if mask is not None else [1.0] * self.n_agents).unsqueeze(-1) > 0.5
        self.h_base = torch.where(keep, h_base, self.h_base)
        self.h_input = torch.where(keep, h_input, self.h_input)

    # ------------------------------------------------------------ learning

    def observe(self, transition: dict[str, Any]) -> None:
        """Store one round. ``e_s`` and ``e_c`` may be one vector shared by every executor (one
        cluster); ``e_s_next`` and ``done`` default to a last round."""
        row = dict(transition)
        for name in ("e_s", "e_c", "e_s_next"):
            if name in row and torch.as_tensor(row[name]).dim() == 1:
                row[name] = torch.as_tensor(row[name]).expand(self.n_agents, -1)
        row.setdefault("e_s_next", torch.zeros(self.n_agents, self.embed_dim))
        row.setdefault("done", 1.0)
        row.setdefault("mask", torch.ones(self.n_agents))
        self.buffer.add({**row, "model_ids": self.model_ids})

    def _mix(self, modules: dict[str, Any], beliefs: Tensor, q: Tensor, chosen: Tensor) -> tuple[Tensor, Tensor]:
        """Q_tot and the features F_i of a batch, through the given (online or target) modules."""
        encoder, mixer = modules["encoder"], modules["mixer"]
        prompt_embeddings = BeliefMixer.prompt_embeddings(q, modules["beliefs"].action_embedding.weight)
        if self.clusters is None:
            return mixer(chosen, prompt_embeddings, encoder(beliefs))
        cluster_groups = torch.stack([encoder(beliefs[:, members]) for members in self.clusters], dim=1)
        return mixer(chosen, prompt_embeddings, cluster_groups, encoder(beliefs))

    @torch.no_grad()
    def td_targets(self, batch: dict[str, Tensor]) -> Tensor:
        """y = team reward, plus gamma * Q_tot_target(next round) where the episode goes on."""
        y = batch["team"].clone()
        going_on = batch["done"] < 0.5
        if not bool(going_on.any()):
            return y
        rows = {k: v[going_on] for k, v in batch.items()}
        model_ids = rows["model_ids"][0]
        # The carried history does not advance within an episode, so the next round sees the same h.
        h_online = self.history(rows["h_input"], rows["h_base"])
        _, q_online = self.beliefs(rows["e_q"], rows["e_s_next"], h_online, model_ids)
        greedy = q_online.argmax(dim=-1, keepdim=True)  # double Q: online networks choose
        t = self.targets
        h_target = t["history"](rows["h_input"], rows["h_base"])
        beliefs, q = t["beliefs"](rows["e_q"], rows["e_s_next"], h_target, model_ids)
        q_next, _ = self._mix(t, beliefs, q, q.gather(-1, greedy).squeeze(-1))  # target networks value
        y[going_on] += self.config.gamma * q_next
        return y

    @torch.no_grad()
    def sync_targets(self, tau: float = 1.0) -> None:
        """Move every target module ``tau`` of the way to its online module (1: copy it)."""
        for name, module in self.modules.items():
            target = self.targets[name].state_dict()
            for key, value in module.state_dict().items():
                if tau >= 1.0 or not value.is_floating_point():
                    target[key].copy_(value)
                else:
                    target[key].lerp_(value, tau)

    def losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        h = self.history(batch["h_input"], batch["h_base"])
        beliefs, q = self.beliefs(batch["e_q"], batch["e_s"], h, batch["model_ids"][0])
        chosen = q.gather(-1, batch["actions"].unsqueeze(-1)).squeeze(-1)  # (B, N)
        mask = batch["mask"]  # 0 for an executor whose call failed: nothing is learned about its action
        local = (mask * (chosen - batch["rewards"]) ** 2).sum(dim=1).mean()
        if self.config.mixer == "none":
            return {"loss": local, "local": local}
        mixed = torch.where(mask > 0.5, chosen, chosen.detach())
        q_tot, features = self._mix(self.modules, beliefs, q, mixed)
        td = ((q_tot - self.td_targets(batch)) ** 2).mean()
        cos = F.cosine_similarity(self.mixer.project(features), batch["e_c"], dim=-1)
        sd = (mask * (1.0 - cos) ** 2).sum(dim=1).mean()
        loss = td + self.config.lambda_local * local + self.config.lambda_sd * sd
        return {"loss": loss, "td": td, "local": local, "sd": sd, "q_tot": q_tot.mean()}

    @property
    def learning_starts(self) -> int:
        if self.config.learning_starts is not None:
            return self.config.learning_starts
        starts = min(self.config.batch_size, self.buffer.capacity)
        return min(starts, max(1, self.train_episodes // 4)) if self.train_episodes else starts

    def update(self) -> dict[str, float] | None:
        """``steps_per_update`` gradient steps on sampled batches; None until the buffer holds
        ``learning_starts`` transitions."""
        if len(self.buffer) < self.learning_starts:
            return None
        metrics: dict[str, float] = {}
        lr = self.learning_rate()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        for _ in range(self.steps_per_update):
            batch = self.buffer.sample(min(self.config.batch_size, max(len(self.buffer), 1)), self.rng)
            losses = self.losses(batch)
            self.optimizer.zero_grad()
            losses["loss"].backward()
            norm = torch.nn.utils.clip_grad_norm_(
                [p for g in self.optimizer.param_groups for p in g["params"]], self.config.grad_clip)
            self.optimizer.step()
            self.updates += 1
            interval = self.config.target_update_interval
            if interval is None:
                self.sync_targets(self.config.target_tau)
            elif self.updates % interval == 0:
                self.sync_targets()
            metrics = {k: float(v.detach()) for k, v in losses.items()}
            metrics["grad_norm"] = float(norm)
        metrics["exploration"] = self.exploration_value()
        metrics["lr"] = lr
        return metrics

    # ------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        return {
            "modules": {name: copy.deepcopy(m.state_dict()) for name, m in self.modules.items()},
            "targets": {name: copy.deepcopy(m.state_dict()) for name, m in self.targets.items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "buffer": self.buffer.state_dict(),
            "rng": self.rng.getstate(),
            "torch_rng": torch.get_rng_state(),
            "h_base": self.h_base.clone(),
            "h_input": self.h_input.clone(),
            "episodes": self.episodes,
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, module in self.modules.items():
            module.load_state_dict(state["modules"][name])
            self.targets[name].load_state_dict(state["targets"][name])
        self.optimizer.load_state_dict(state["optimizer"])
        self.buffer.load_state_dict(state["buffer"])
        self.rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        self.h_base, self.h_input = state["h_base"].clone(), state["h_input"].clone()
        self.episodes, self.updates = state["episodes"], state["updates"]

