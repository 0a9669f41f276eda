"""The `gsm_hard` task: GSM-Hard, GSM8K problems with large, machine-made numbers and float answers."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from pydantic import Field

from econash.data import DataSpec, HubSource, Record, load_problems
from econash.hookspecs import hookimpl
from econash.task import Split
from econash.types import Problem, StrictModel
from econash_plugins._answers import NumericAnswers

# The local copy is a 200-problem dev file and the hub has one split, so both are split by
# test_fraction; a folder that also holds test.jsonl uses it for test and dev.jsonl for train.
SPEC = DataSpec("gsm_hard", train_files=("dev.jsonl", "train.jsonl", "dev.json", "train.json"),
                hub=HubSource("reasoning-machines/gsm-hard", splits={"train": "train"}))


def build(record: Record) -> Problem:
    try:
        gold = float(record.get("target"))
    except (TypeError, ValueError):
        raise record.error("has a 'target' that is not a number") from None
    return Problem(id=f"gsm_hard-{record.source}-{record.index}", question=str(record.get("input")).strip(),
                   gold=gold)


class GSMHardTask(NumericAnswers):
    """GSM-Hard: GSM8K with large numbers; float answers compared with a tolerance (gsm_hard/dev.jsonl or the hub)."""

    name = "gsm_hard"

    class Options(StrictModel):
        # Half of the small dev file is held out, so evaluation has 100 questions, not 40.
        test_fraction: float = Field(0.5, gt=0.0, le=1.0)

    def __init__(self, data: Path | None = None, test_fraction: float = 0.5) -> None:
        self.data, self.test_fraction = data, test_fraction

    def load(self, split: Split, size: int | None, seed: int) -> list[Problem]:
        return load_problems(SPEC, self.data, split, size, seed, build=build, test_fraction=self.test_fraction)


@hookimpl
def register_tasks(register: Callable[..., None]) -> None:
    register("gsm_hard", GSMHardTask)
