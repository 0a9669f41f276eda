"""The `gsm8k` task: grade-school math word problems (GSM8K) with integer answers."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from pydantic import Field

from econash.data import DataSpec, HubSource, Record, load_problems
from econash.hookspecs import hookimpl
from econash.task import Split
from econash.types import Problem, StrictModel
from econash_plugins._answers import NumericAnswers, parse_number

SPEC = DataSpec("gsm8k", hub=HubSource("openai/gsm8k", configs=("main",)))


def gold_of(solution: str) -> int | float | None:
    """The number after the final ``#### `` of a GSM8K solution (commas allowed: "#### 1,080")."""
    parts = solution.rsplit("####", 1)
    value = parse_number(parts[1]) if len(parts) == 2 else None
    return int(value) if value is not None and value.is_integer() else value


def build(record: Record) -> Problem:
    gold = gold_of(str(record.get("answer")))
    if gold is None:
        raise record.error("has no number after its final '####'")
    return Problem(id=f"gsm8k-{record.source}-{record.index}", question=str(record.get("question")).strip(),
                   gold=gold, metadata={"solution": record.get("answer")})


class GSM8KTask(NumericAnswers):
    """GSM8K grade-school math word problems; integer answers (gsm8k/train.jsonl, test.jsonl or the hub)."""

    name = "gsm8k"

    class Options(StrictModel):
        test_fraction: float = Field(0.2, gt=0.0, le=1.0)

    def __init__(self, data: Path | None = None, test_fraction: float = 0.2) -> None:
        self.data, self.test_fraction = data, test_fraction

    def load(self, split: Split, size: int | None, seed: int) -> list[Problem]:
        return load_problems(SPEC, self.data, split, size, seed, build=build, test_fraction=self.test_fraction)


@hookimpl
def register_tasks(register: Callable[..., None]) -> None:
    register("gsm8k", GSM8KTask)
