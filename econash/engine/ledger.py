"""Token and cost accounting: a ledger by phase, role, agent and model, and a user price table.

Prices come only from a table the user supplies (YAML: model -> prompt and completion dollars per
million tokens); econash ships none, because prices change and differ between providers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from econash.errors import ConfigError
from econash.types import CallRecord, RoleUsage, StrictModel, Usage


class ModelPrice(StrictModel):
    """Dollars per million tokens."""

    prompt: float = Field(ge=0.0)
    completion: float = Field(ge=0.0)


class PriceTable(StrictModel):
    models: dict[str, ModelPrice] = Field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> PriceTable:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"Price table '{path}' does not exist; check the path given to --prices.") from None
        except yaml.YAMLError:
            raise ConfigError(f"Price table '{path}' is not valid YAML; fix its syntax.") from None
        except UnicodeDecodeError:
            raise ConfigError(f"Price table '{path}' is not a text file; --prices takes a YAML file.") from None
        except OSError as exc:
            raise ConfigError(f"Price table '{path}' cannot be read ({exc.strerror}); check the path given to "
                              "--prices.") from None
        if isinstance(data, dict) and "models" not in data:
            data = {"models": data}
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"])
            raise ConfigError(
                f"Price table '{path}' has a bad entry at '{where}' ({error['msg']}); write each model as "
                "MODEL: {prompt: DOLLARS_PER_MILLION, completion: DOLLARS_PER_MILLION}."
            ) from None

    def price(self, model: str) -> ModelPrice | None:
        return self.models.get(model)

    def cost(self, model: str, usage: Usage) -> float | None:
        price = self.price(model)
        if price is None:
            return None
        return (usage.prompt_tokens * price.prompt + usage.completion_tokens * price.completion) / 1e6


class CostLimitReached(Exception):
    """Raised instead of starting a call that could take spending past the cost limit."""


@dataclass
class Ledger:
    """Tokens, calls and cost of one phase, with a breakdown by role, agent and model."""

    usage: Usage = field(default_factory=Usage)
    calls: int = 0
    cached_calls: int = 0
    retries: int = 0
    cost: float = 0.0
    by_role: dict[str, RoleUsage] = field(default_factory=dict)
    by_agent: dict[str, RoleUsage] = field(default_factory=dict)
    by_model: dict[str, RoleUsage] = field(default_factory=dict)

    def add(self, call: CallRecord, cost: float | None = None) -> None:
        self.usage = self.usage + call.usage
        self.calls += 1
        self.cached_calls += int(call.cached)
        self.retries += call.retries
        if cost is not None and not call.cached:
            self.cost += cost
        agent = f"{call.role}:{call.agent}" if call.agent is not None else call.role
        for table, key in ((self.by_role, call.role), (self.by_agent, agent), (self.by_model, call.model)):
            table.setdefault(key, RoleUsage()).add(call.usage, truncated=int(call.truncated))

    def to_dict(self) -> dict[str, Any]:
        return {
            "usage": self.usage.model_dump(),
            "calls": self.calls,
            "cached_calls": self.cached_calls,
            "retries": self.retries,
            "cost": self.cost,
            "by_role": {k: v.model_dump() for k, v in self.by_role.items()},
            "by_agent": {k: v.model_dump() for k, v in self.by_agent.items()},
            "by_model": {k: v.model_dump() for k, v in self.by_model.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ledger:
        return cls(
            usage=Usage(**data["usage"]),
            calls=data["calls"],
            cached_calls=data.get("cached_calls", 0),
            retries=data.get("retries", 0),
            cost=data.get("cost", 0.0),
            by_role={k: RoleUsage(**v) for k, v in data.get("by_role", {}).items()},
            by_agent={k: RoleUsage(**v) for k, v in data.get("by_agent", {}).items()},
            by_model={k: RoleUsage(**v) for k, v in data.get("by_model", {}).items()},
        )
