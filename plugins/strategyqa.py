"""The `strategyqa` task: StrategyQA, yes/no questions that need implicit multi-step reasoning."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from pydantic import Field

from econash.data import DataSpec, HubSource, Record, load_problems
from econash.hookspecs import hookimpl
from econash.task import Split, Task
from econash.types import Problem, Score, StrictModel
from econash_plugins._answers import extract_yes_no, verdict

SPEC = DataSpec("strategyqa", hub=HubSource("ChilleD/StrategyQA"))
_BOOLEAN = {"true": True, "yes": True, "false": False, "no": False}


def build(record: Record) -> Problem:
    answer = record.get("answer")
    gold = answer if isinstance(answer, bool) else _BOOLEAN.get(str(answer).strip().lower())
    if gold is None:
        raise record.error("has an 'answer' that is neither true nor false")
    ident = record.fields.get("qid") or f"{record.source}-{record.index}"
    metadata = {key: record.fields[key] for key in ("term", "facts", "decomposition") if key in record.fields}
    return Problem(id=f"strategyqa-{ident}", question=str(record.get("question")).strip(), gold=gold,
                   metadata=metadata)


class StrategyQATask(Task):
    """StrategyQA yes/no questions needing implicit multi-step reasoning (strategyqa/train.jsonl or the hub)."""

    name = "strategyqa"

    class Options(StrictModel):
        test_fraction: float = Field(0.2, gt=0.0, le=1.0)

    def __init__(self, data: Path | None = None, test_fraction: float = 0.2) -> None:
        self.data, self.test_fraction = data, test_fraction

    def load(self, split: Split, size: int | None, seed: int) -> list[Problem]:
        return load_problems(SPEC, self.data, split, size, seed, build=build, test_fraction=self.test_fraction)

    def answer_format(self, problem: Problem) -> str:
        return "End with 'The answer is yes.' or 'The answer is no.'"

    def extract_answer(self, text: str, problem: Problem) -> bool | None:
        return extract_yes_no(text)

    def score(self, answer: Any | None, problem: Problem) -> Score:
        return verdict(isinstance(answer, bool) and answer == problem.gold)


@hookimpl
def register_tasks(register: Callable[..., None]) -> None:
    register("strategyqa", StrategyQATask)
