"""A replay buffer whose tensors are allocated from a declared scheme (as in pymarl).

The scheme names every field of a transition with its shape and dtype, so the learner and the
buffer agree on what a transition is, and a checkpoint holds the buffer exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class Field:
    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32


def transition_scheme(n_agents: int, embed_dim: int, history_dim: int, n_actions: int) -> dict[str, Field]:
    """One round of an EcoNash episode (a single-round episode is one transition with done = 1).

    Strategy and commitment embeddings are per executor: in the ``multi`` topology each executor
    follows its cluster's strategy and is compared with its cluster's commitment.
    """
    return {
        "e_q": Field((embed_dim,)),  # question embedding
        "e_s": Field((n_agents, embed_dim)),  # strategy embedding each executor observed
        "h_base": Field((n_agents, history_dim)),  # history state before the last GRU step
        "h_input": Field((n_agents, n_actions + 1)),  # the last (action, reward) fed to that step
        "actions": Field((n_agents,), torch.long),
        "rewards": Field((n_agents,)),  # r_i
        "team": Field(()),  # team reward of this round
        "e_c": Field((n_agents, embed_dim)),  # commitment embedding each executor is compared with (L_SD)
        "model_ids": Field((n_agents,), torch.long),
        "e_s_next": Field((n_agents, embed_dim)),  # the next round's strategy embeddings (unused when done)
        "done": Field(()),  # 1 on an episode's last round: no bootstrap from the next round
        "mask": Field((n_agents,)),  # 0 for an executor whose call failed this round
    }


class ReplayBuffer:
    """A ring buffer of transitions; sampling draws indices with the caller's seeded RNG."""

    def __init__(self, scheme: dict[str, Field], capacity: int = 256) -> None:
        if capacity < 1:
            raise ValueError("replay buffer capacity must be at least 1")
        self.scheme = scheme
        self.capacity = capacity
        self.data = {name: torch.zeros((capacity, *f.shape), dtype=f.dtype) for name, f in scheme.items()}
        self.size = 0
        self.next = 0

    def __len__(self) -> int:
        return self.size

    def add(self, transition: dict[str, Any]) -> None:
        missing = set(self.scheme) - set(transition)
        if missing:
            raise KeyError(f"transition lacks fields {sorted(missing)}")
        for name, field in self.scheme.items():
            value = torch.as_tensor(transition[name], dtype=field.dtype)
            if tuple(value.shape) != field.shape:
                raise ValueError(f"field {name} has shape {tuple(value.shape)}, the scheme says {field.shape}")
            self.data[name][self.next] = value
        self.next = (self.next + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: random.Random) -> dict[str, Tensor]:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        indices = torch.tensor([rng.randrange(self.size) for _ in range(batch_size)], dtype=torch.long)
        return {name: tensor[indices] for name, tensor in self.data.items()}

    def state_dict(self) -> dict[str, Any]:
        return {"data": {k: v.clone() for k, v in self.data.items()}, "size": self.size, "next": self.next,
                "capacity": self.capacity}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["capacity"] != self.capacity:
            raise ValueError(f"checkpoint buffer capacity {state['capacity']} differs from {self.capacity}")
        self.data = {k: v.clone() for k, v in state["data"].items()}
        self.size, self.next = state["size"], state["next"]
