"""The executors' discrete action space: temperature x top_p x reasoning style x completion budget.

Hosted APIs accept no embeddings, so sampling settings, a prompt style and a completion budget are
the honest channel from the learned policy to any model. Values are clipped to what each backend
accepts. An action is a combination of one level per *factor*; the grid records, for every action,
the level it takes in each factor, so a factored Q head (one utility per factor, summed) can learn
every factor from every sample.

Styles are names here; the method that uses the grid turns a name into its prompt instruction.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from econash.types import Capabilities, SamplingParams

#: the factors of an action, in grid order
FACTORS = ("temperature", "top_p", "style", "max_tokens")


@dataclass(frozen=True)
class Action:
    temperature: float
    top_p: float
    style: str
    #: the executor's completion budget; None leaves the method's executor cap in charge
    max_tokens: int | None = None

    def sampling(self, max_tokens: int, capabilities: Capabilities | None = None, seed: int | None = None) -> SamplingParams:
        """Sampling settings for this action; its own budget, when it has one, replaces ``max_tokens``."""
        params = SamplingParams(temperature=self.temperature, top_p=self.top_p,
                                max_tokens=self.max_tokens or max_tokens, seed=seed)
        return capabilities.clip(params) if capabilities is not None else params

    def label(self) -> str:
        budget = f" {self.max_tokens}tok" if self.max_tokens is not None else ""
        return f"T={self.temperature:g} p={self.top_p:g} {self.style}{budget}"


class ActionGrid:
    """All combinations of the given temperatures, top_p values, styles and budgets, in a fixed order."""

    def __init__(self, temperatures: list[float], top_ps: list[float], styles: list[str],
                 budgets: list[int] | None = None) -> None:
        if not temperatures or not top_ps or not styles or budgets == []:
            raise ValueError("the action grid needs at least one temperature, one top_p and one style")
        self.levels: dict[str, list] = {"temperature": list(temperatures), "top_p": list(top_ps),
                                        "style": list(styles), "max_tokens": list(budgets) if budgets else [None]}
        for name, values in self.levels.items():
            if len(set(values)) != len(values):
                raise ValueError(f"the action grid's {name} values repeat: {values}")
        combos = list(itertools.product(*(range(len(v)) for v in self.levels.values())))
        self.factor_levels: list[tuple[int, ...]] = combos
        self.actions = [Action(*(values[i] for values, i in zip(self.levels.values(), combo))) for combo in combos]

    def __len__(self) -> int:
        return len(self.actions)

    def __getitem__(self, index: int) -> Action:
        return self.actions[index]

    @property
    def factor_sizes(self) -> list[int]:
        return [len(values) for values in self.levels.values()]

    def varied_factors(self) -> dict[str, list]:
        """The factors with more than one level: what a policy actually chooses."""
        return {name: values for name, values in self.levels.items() if len(values) > 1}

    def clipped(self, capabilities: Capabilities) -> list[Action]:
        """The grid as a backend will see it (temperature clipped, top_p 1 where unsupported)."""
        low, high = capabilities.temperature_range
        return [Action(min(max(a.temperature, low), high), a.top_p if capabilities.supports_top_p else 1.0, a.style,
                       a.max_tokens) for a in self.actions]
