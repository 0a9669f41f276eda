"""The `gsm8k` task: grade-school math word problems (GSM8K) with integer answers."""

from __future__ import annotations

from typing import Callable


from econash.data import DataSpec, HubSource, Record
from econash.hookspecs import hookimpl
from econash.types import Problem
from econash_plugins.tasks.file_task import FileTask
from econash_plugins.tasks.answers import NumericAnswers, parse_number

# openai/grade-school-math keeps train.jsonl and test.jsonl in grade_school_math/data/.
SPEC = DataSpec("gsm8k", hub=HubSource("openai/gsm8k", configs=("main",)), folders=("grade_school_math/data",))


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


class GSM8KTask(FileTask, NumericAnswers):
    """GSM8K grade-school math word problems; integer answers (gsm8k/train.jsonl, test.jsonl or the hub)."""

    name = "gsm8k"

    spec = SPEC
    build = staticmethod(build)


@hookimpl
def register_tasks(register: Callable[..., None]) -> None:
    register("gsm8k", GSM8KTask)
