"""The executors' discrete action space: temperature x top_p x reasoning style.

Hosted APIs accept no embeddings, so sampling settings and a prompt style are the honest channel
from the learned policy to any model. Values are clipped to what each backend accepts.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from econash.types import Capabilities, SamplingParams

#: instruction added to the executor prompt for each reasoning style
STYLES: dict[str, str] = {
    "direct": "Reason step by step, then give the answer.",
    "plan": "First write a short numbered plan, then carry it out step by step.",
    "verify": "Solve it step by step, then check your result by substituting it back before you answer.",
}


@dataclass(frozen=True)
class Action:
    temperature: float
    top_p: float
    style: str

    @property
    def instruction(self) -> str:
        return STYLES.get(self.style, self.style)

    def sampling(self, max_tokens: int, capabilities: Capabilities | None = None, seed: int | None = None) -> SamplingParams:
        params = SamplingParams(temperature=self.temperature, top_p=self.top_p, max_tokens=max_tokens, seed=seed)
        return capabilities.clip(params) if capabilities is not None else params

    def label(self) -> str:
        return f"T={self.temperature:g} p={self.top_p:g} {self.style}"


class ActionGrid:
    """All combinations of the given temperatures, top_p values and styles, in a fixed order."""

    def __init__(self, temperatures: list[float], top_ps: list[float], styles: list[str]) -> None:
        if not temperatures or not top_ps or not styles:
            raise ValueError("the action grid needs at least one temperature, one top_p and one style")
        self.actions = [Action(t, p, s) for t, p, s in itertools.product(temperatures, top_ps, styles)]

    def __len__(self) -> int:
        return len(self.actions)

    def __getitem__(self, index: int) -> Action:
        return self.actions[index]

    def clipped(self, capabilities: Capabilities) -> list[Action]:
        """The grid as a backend will see it (temperature clipped, top_p 1 where unsupported)."""
        low, high = capabilities.temperature_range
        return [Action(min(max(a.temperature, low), high), a.top_p if capabilities.supports_top_p else 1.0, a.style)
                for a in self.actions]
