"""Token and cost accounting: a ledger by phase, role, agent and model, a user price table, and
what a run has spent in all its sessions.

Prices come only from a table the user supplies (YAML: model -> prompt and completion dollars per
million tokens); econash ships none, because prices change and differ between providers. A call
whose model has no price has an unknown cost, and so has every total it is part of: never $0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import Field, ValidationError

from econash.call_types import CallRecord, Usage
from econash.errors import ConfigError
from econash.run_records import RoleUsage
from econash.strict_model import StrictModel


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

    def missing(self, models: Iterable[str]) -> list[str]:
        """The models without an entry, each once, in the order given."""
        return [model for model in dict.fromkeys(models) if model not in self.models]

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
    #: dollars of the priced calls; ``unpriced_calls`` says whether that is all of them
    cost: float = 0.0
    unpriced_calls: int = 0
    by_role: dict[str, RoleUsage] = field(default_factory=dict)
    by_agent: dict[str, RoleUsage] = field(default_factory=dict)
    by_model: dict[str, RoleUsage] = field(default_factory=dict)

    def add(self, call: CallRecord) -> None:
        """Count one call, at the cost the engine priced it (``call.cost``)."""
        self.usage = self.usage + call.usage
        self.calls += 1
        self.cached_calls += int(call.cached)
        self.retries += call.retries
        if not call.cached:
            if call.cost is None:
                self.unpriced_calls += 1
            else:
                self.cost += call.cost
        agent = f"{call.role}:{call.agent}" if call.agent is not None else call.role
        for table, key in ((self.by_role, call.role), (self.by_agent, agent), (self.by_model, call.model)):
            table.setdefault(key, RoleUsage()).add(call.usage, truncated=int(call.truncated))

    @property
    def known_cost(self) -> float | None:
        """The dollars of every call counted, or None when one of them had no price."""
        return None if self.unpriced_calls else self.cost

    def to_dict(self) -> dict[str, Any]:
        return {
            "usage": self.usage.model_dump(),
            "calls": self.calls,
            "cached_calls": self.cached_calls,
            "retries": self.retries,
            "cost": self.cost,
            "unpriced_calls": self.unpriced_calls,
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
            unpriced_calls=data.get("unpriced_calls", 0),
            by_role={k: RoleUsage(**v) for k, v in data.get("by_role", {}).items()},
            by_agent={k: RoleUsage(**v) for k, v in data.get("by_agent", {}).items()},
            by_model={k: RoleUsage(**v) for k, v in data.get("by_model", {}).items()},
        )


@dataclass
class Spending:
    """Dollars a run has spent, by phase, over all its sessions: what ``--cost-limit`` is held to.

    It is rebuilt from the ``llm_call`` lines of events.jsonl, one per call the run made, in every
    session. That file is the only record that keeps the calls whose work was thrown away: a
    training batch cut by a kill or the limit (the checkpoint before it is where training resumes,
    so its calls are made, and paid for, again), an evaluation question cut before its results line,
    a dev evaluation cut short. Each such call is counted once each time it was made, because each
    time it was paid for; checkpoint ledgers and results lines count only the work that was kept.
    """

    known: dict[str, float] = field(default_factory=dict)
    unpriced: dict[str, int] = field(default_factory=dict)
    #: the models of the calls without a price
    unpriced_models: set[str] = field(default_factory=set)

    def add(self, phase: str, cost: float | None, model: str = "") -> None:
        """Count one call that was not answered from the cache (a cached reply costs nothing)."""
        self.known[phase] = self.known.get(phase, 0.0) + (cost or 0.0)
        if cost is None:
            self.unpriced[phase] = self.unpriced.get(phase, 0) + 1
            self.unpriced_models.add(model)

    @classmethod
    def from_events(cls, events: Iterable[dict[str, Any]], prices: PriceTable | None = None) -> Spending:
        """What the ``llm_call`` lines of events.jsonl record: each call's ``cost``, priced when it
        was made. A call recorded without one (its model had no price then) is priced from ``prices``
        by the model that answered, if the table has it now; otherwise its cost is unknown."""
        spending = cls()
        for event in events:
            if event.get("type") != "llm_call" or event.get("cached"):
                continue
            model, cost = str(event.get("model")), event.get("cost")
            if cost is None and prices is not None and isinstance(event.get("usage"), dict):
                cost = prices.cost(model, Usage(**event["usage"]))
            spending.add(str(event.get("phase")), cost, model)
        return spending

    def cost(self, phase: str) -> float | None:
        return None if self.unpriced.get(phase) else self.known.get(phase, 0.0)

    @property
    def known_total(self) -> float:
        """The dollars of the priced calls (the cost limit is checked against it; with a limit
        every model of the run has a price, so it is the whole)."""
        return sum(self.known.values())

    @property
    def unpriced_calls(self) -> int:
        return sum(self.unpriced.values())

    @property
    def total(self) -> float | None:
        return None if self.unpriced_calls else self.known_total

    def to_dict(self) -> dict[str, float | None]:
        """Per phase that made a call, then ``total``: summary.json's ``costs``."""
        return {**{phase: self.cost(phase) for phase in self.known}, "total": self.total}
