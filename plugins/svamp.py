"""The `svamp` task: SVAMP, one-step arithmetic word problems with small variations."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from pydantic import Field

from econash.data import DataSpec, HubSource, Record, load_problems
from econash.hookspecs import hookimpl
from econash.task import Split
from econash.types import Problem, StrictModel
from econash_plugins._answers import NumericAnswers

SPEC = DataSpec("svamp", hub=HubSource("ChilleD/SVAMP"))


def build(record: Record) -> Problem:
    try:
        gold = float(record.get("Answer", "answer"))
    except (TypeError, ValueError):
        raise record.error("has an 'Answer' that is not a number") from None
    body, question = str(record.get("Body", "body")).strip(), str(record.get("Question", "question")).strip()
    ident = record.fields.get("ID") or f"{record.source}-{record.index}"
    return Problem(id=f"svamp-{ident}", question=f"{body} {question}", gold=gold,
                   metadata={"type": record.fields.get("Type"), "equation": record.fields.get("Equation")})


class SVAMPTask(NumericAnswers):
    """SVAMP arithmetic word problems (svamp/train.jsonl, test.jsonl or the hub); the prompt is Body + Question."""

    name = "svamp"

    class Options(StrictModel):
        test_fraction: float = Field(0.2, gt=0.0, le=1.0)

    def __init__(self, data: Path | None = None, test_fraction: float = 0.2) -> None:
        self.data, self.test_fraction = data, test_fraction

    def load(self, split: Split, size: int | None, seed: int) -> list[Problem]:
        return load_problems(SPEC, self.data, split, size, seed, build=build, test_fraction=self.test_fraction)


@hookimpl
def register_tasks(register: Callable[..., None]) -> None:
    register("svamp", SVAMPTask)
