"""The learned parts of EcoNash (docs/econash-method.md steps 2, 3, 6 and 9).

Shapes: B batch, N executors, A actions, D text-embedding size.

* ``HistoryCell``: a GRU over each executor's past (action, reward), carried across episodes.
* ``BeliefNetworks``: per executor (or shared, with the identity input telling them apart), the
  observation ``[e_q, e_s, h_i, id_i]`` gives a belief state ``b_i`` and ``Q_i(b_i, a)`` for every
  action. ``action_embedding`` holds the learned prompt embedding ``e_i`` of each action.
* ``BeliefEncoder``: multi-head self-attention over the beliefs, a feed-forward block and mean
  pooling give the group representation ``E``.
* ``BeliefMixer``: self-attention over the prompt embeddings gives ``w_i``; ``F_i = MLP([w_i; E])``;
  hypernetworks turn ``F_i`` and ``E`` into mixing weights made non-negative with ``abs``, so
  ``Q_tot`` is monotone in every ``Q_i`` and the joint greedy action is each executor's own greedy
  action.

The observation's four parts are scaled to comparable norms before the first layer: the text
embeddings and the identity embedding to unit length, the history state (each entry in (-1, 1))
divided by the square root of its size. Raw, the identity embedding (norm about 4-6) swamps the
unit-norm question and strategy embeddings, and an untrained executor then takes about one fixed
action whatever the question.

``Q_i`` is either a joint head (one output per action) or a factored head: one utility per level
of each action factor (temperature, top_p, style, budget) and ``Q_i(a)`` the sum of the utilities
of the levels ``a`` takes, so every sample teaches every factor it touched.

The prompt embedding ``e_i`` the mixer reads is the learned embedding of the executor's greedy
action (argmax of its detached Q values), not of the executed action. That keeps the mixing
weights a function of the state alone: were they a function of the joint action, Q_tot would no
longer be monotone across joint actions and the joint greedy action could differ from the
per-agent greedy actions, which is the property decentralised execution relies on. (A softmax
over Q values that lie in about [0, 1] is nearly uniform, so it would hand the mixer almost the
same input whatever the beliefs.)

* ``HierarchicalMixer`` (the ``multi`` topology): one ``BeliefMixer`` per cluster gives the
  cluster's value from its executors' values, and a global monotone mixer conditioned on the whole
  team's ``E`` mixes the cluster values into ``Q_tot``. A composition of monotone maps is
  monotone, so the greedy property holds for the hierarchy too.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def mlp(sizes: list[int], activate_last: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or activate_last:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class HistoryCell(nn.Module):
    """One GRU step over an executor's last (action one-hot, reward) pair; shared by all executors."""

    def __init__(self, n_actions: int, hidden: int) -> None:
        super().__init__()
        self.n_actions = n_actions
        self.hidden = hidden
        self.cell = nn.GRUCell(n_actions + 1, hidden)

    def input_for(self, actions: Tensor, rewards: Tensor) -> Tensor:
        """(…, ) actions and rewards -> (…, A + 1) GRU inputs."""
        return torch.cat([F.one_hot(actions, self.n_actions).float(), rewards.unsqueeze(-1).float()], dim=-1)

    def forward(self, inputs: Tensor, state: Tensor) -> Tensor:
        shape = state.shape
        return self.cell(inputs.reshape(-1, inputs.shape[-1]), state.reshape(-1, self.hidden)).reshape(shape)


def factor_table(factor_levels: list[tuple[int, ...]]) -> Tensor:
    """The (A, sum of factor sizes) 0/1 matrix that sums each action's factor utilities."""
    if not factor_levels:
        raise ValueError("factor_levels needs one entry per action")
    sizes = [max(levels[f] for levels in factor_levels) + 1 for f in range(len(factor_levels[0]))]
    offsets = [sum(sizes[:f]) for f in range(len(sizes))]
    table = torch.zeros(len(factor_levels), sum(sizes))
    for a, levels in enumerate(factor_levels):
        for f, level in enumerate(levels):
            table[a, offsets[f] + level] = 1.0
    return table


class BeliefNetworks(nn.Module):
    """Belief network per executor: observation -> belief state b_i -> Q_i over all actions.

    ``factor_levels`` (one tuple of factor-level indices per action) makes the Q head factored.
    """

    def __init__(self, n_agents: int, n_actions: int, embed_dim: int, history_dim: int, *, id_dim: int = 16,
                 hidden: int = 64, belief_dim: int = 32, action_dim: int = 32, n_models: int = 1,
                 share: bool = False, factor_levels: list[tuple[int, ...]] | None = None) -> None:
        super().__init__()
        self.n_agents, self.n_actions, self.share = n_agents, n_actions, share
        self.identity = nn.Embedding(n_agents, id_dim)
        self.model_identity = nn.Embedding(max(1, n_models), id_dim)
        self.history_scale = history_dim ** -0.5
        obs_dim = 2 * embed_dim + history_dim + id_dim
        copies = 1 if share else n_agents
        self.factored = factor_levels is not None
        if factor_levels is not None:
            if len(factor_levels) != n_actions:
                raise ValueError(f"{len(factor_levels)} factor-level tuples for {n_actions} actions")
            self.register_buffer("factor_table", factor_table(factor_levels), persistent=False)
            outputs = self.factor_table.shape[1]
        else:
            outputs = n_actions
        self.encoders = nn.ModuleList(mlp([obs_dim, hidden, belief_dim]) for _ in range(copies))
        self.q_heads = nn.ModuleList(mlp([belief_dim, hidden, outputs]) for _ in range(copies))
        self.action_embedding = nn.Embedding(n_actions, action_dim)

    def forward(self, e_q: Tensor, e_s: Tensor, history: Tensor, model_ids: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """e_q: (B, D); e_s: (B, D), or (B, N, D) when executors follow different strategies (one per
        cluster); history: (B, N, H). Returns beliefs (B, N, belief) and Q values (B, N, A)."""
        batch = e_q.shape[0]
        agents = torch.arange(self.n_agents, device=e_q.device)
        identity = self.identity(agents)
        if model_ids is not None:
            identity = identity + self.model_identity(model_ids)
        if e_s.dim() == 2:
            e_s = e_s.unsqueeze(1).expand(-1, self.n_agents, -1)
        e_q, e_s, identity = F.normalize(e_q, dim=-1), F.normalize(e_s, dim=-1), F.normalize(identity, dim=-1)
        history = history * self.history_scale
        beliefs, qs = [], []
        for i in range(self.n_agents):
            k = 0 if self.share else i
            obs = torch.cat([e_q, e_s[:, i], history[:, i], identity[i].expand(batch, -1)], dim=-1)
            b = torch.tanh(self.encoders[k](obs))
            beliefs.append(b)
            out = self.q_heads[k](b)
            qs.append(out @ self.factor_table.T if self.factored else out)
        return torch.stack(beliefs, dim=1), torch.stack(qs, dim=1)


class BeliefEncoder(nn.Module):
    """Self-attention over the executors' beliefs, feed-forward, mean pooling -> E (B, out_dim)."""

    def __init__(self, belief_dim: int = 32, heads: int = 4, out_dim: int = 32) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(belief_dim, heads, batch_first=True)
        self.norm1 = nn.LayerNorm(belief_dim)
        self.feed_forward = mlp([belief_dim, 2 * belief_dim, belief_dim])
        self.norm2 = nn.LayerNorm(belief_dim)
        self.out = nn.Linear(belief_dim, out_dim)

    def forward(self, beliefs: Tensor) -> Tensor:
        attended, _ = self.attention(beliefs, beliefs, beliefs, need_weights=False)
        x = self.norm1(beliefs + attended)
        x = self.norm2(x + self.feed_forward(x))
        return self.out(x.mean(dim=1))


class BeliefMixer(nn.Module):
    """Q_tot from the chosen-action values, monotone in each (non-negative hypernetwork weights)."""

    def __init__(self, action_dim: int = 32, group_dim: int = 32, heads: int = 4, feature_dim: int = 32,
                 mixing_dim: int = 32, commitment_dim: int | None = None) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(action_dim, heads, batch_first=True)
        self.features = mlp([action_dim + group_dim, feature_dim, feature_dim])
        self.hyper_w1 = nn.Linear(feature_dim, mixing_dim)
        self.hyper_b1 = nn.Linear(group_dim, mixing_dim)
        self.hyper_w2 = nn.Linear(group_dim, mixing_dim)
        self.hyper_b2 = mlp([group_dim, mixing_dim, 1])
        # P in L_SD: projects F_i into the text-embedding space of the commitment.
        self.project = nn.Linear(feature_dim, commitment_dim) if commitment_dim else None

    @staticmethod
    def prompt_embeddings(q_all: Tensor, action_table: Tensor) -> Tensor:
        """Each executor's greedy-action embedding: table[argmax Q_i] -> (B, N, d). Q is only read
        (argmax), so the embedding depends on the state and the table gets the gradient."""
        return action_table[q_all.detach().argmax(dim=-1)]

    def forward(self, chosen_q: Tensor, prompt_embeddings: Tensor, group: Tensor) -> tuple[Tensor, Tensor]:
        """chosen_q (B, N), prompt embeddings (B, N, action_dim), E (B, group_dim) -> Q_tot (B,), F (B, N, feature)."""
        w, _ = self.attention(prompt_embeddings, prompt_embeddings, prompt_embeddings, need_weights=False)
        n = chosen_q.shape[1]
        features = self.features(torch.cat([w, group.unsqueeze(1).expand(-1, n, -1)], dim=-1))
        w1 = torch.abs(self.hyper_w1(features))  # (B, N, M), non-negative
        hidden = F.elu((w1 * chosen_q.unsqueeze(-1)).sum(dim=1) + self.hyper_b1(group))
        w2 = torch.abs(self.hyper_w2(group))  # (B, M), non-negative
        q_tot = (hidden * w2).sum(dim=-1) + self.hyper_b2(group).squeeze(-1)
        return q_tot, features


class HierarchicalMixer(nn.Module):
    """A mixer per cluster, then a global mixer over the cluster values; monotone end to end."""

    def __init__(self, clusters: list[list[int]], action_dim: int = 32, group_dim: int = 32, heads: int = 4,
                 feature_dim: int = 32, mixing_dim: int = 32, commitment_dim: int | None = None) -> None:
        super().__init__()
        self.clusters = [list(c) for c in clusters]
        order = [i for cluster in self.clusters for i in cluster]
        if sorted(order) != list(range(len(order))):
            raise ValueError(f"clusters {clusters} must partition the executors 0..N-1")
        self.register_buffer("inverse", torch.argsort(torch.tensor(order)), persistent=False)
        self.cluster_mixers = nn.ModuleList(
            BeliefMixer(action_dim, group_dim, heads, feature_dim, mixing_dim) for _ in self.clusters)
        k = len(self.clusters)
        self.hyper_w1 = nn.Linear(group_dim, k * mixing_dim)
        self.hyper_b1 = nn.Linear(group_dim, mixing_dim)
        self.hyper_w2 = nn.Linear(group_dim, mixing_dim)
        self.hyper_b2 = mlp([group_dim, mixing_dim, 1])
        self.project = nn.Linear(feature_dim, commitment_dim) if commitment_dim else None

    def forward(self, chosen_q: Tensor, prompt_embeddings: Tensor, cluster_groups: Tensor,
                group: Tensor) -> tuple[Tensor, Tensor]:
        """chosen_q (B, N), prompt embeddings (B, N, d), E per cluster (B, K, g), E of the team (B, g)
        -> Q_tot (B,), F (B, N, feature) in executor order."""
        values, features = [], []
        for k, (members, mixer) in enumerate(zip(self.clusters, self.cluster_mixers)):
            value, feature = mixer(chosen_q[:, members], prompt_embeddings[:, members], cluster_groups[:, k])
            values.append(value)
            features.append(feature)
        cluster_q = torch.stack(values, dim=1)  # (B, K)
        batch, k = cluster_q.shape
        w1 = torch.abs(self.hyper_w1(group)).view(batch, k, -1)  # non-negative
        hidden = F.elu((w1 * cluster_q.unsqueeze(-1)).sum(dim=1) + self.hyper_b1(group))
        w2 = torch.abs(self.hyper_w2(group))
        q_tot = (hidden * w2).sum(dim=-1) + self.hyper_b2(group).squeeze(-1)
        return q_tot, torch.cat(features, dim=1)[:, self.inverse]
