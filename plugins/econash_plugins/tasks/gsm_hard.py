"""The `gsm_hard` task: GSM-Hard, GSM8K problems with large, machine-made numbers and float answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from pydantic import Field

from econash.data import DataSpec, HubSource, Record, load_problems
from econash.hookspecs import hookimpl
from econash.task import Split
from econash.types import Problem, Score, StrictModel
from econash_plugins.tasks.answers import NumericAnswers, numbers_match, verdict

PAL_TOLERANCE = 1e-3  # PAL's evaluation (reasoning-machines/pal): right when abs(answer - target) < 1e-3


def values_match(answer: Any, gold: Any) -> bool:
    """GSM-Hard's rule: PAL's absolute tolerance, or the gold rounded to the reply's own decimals.

    Targets are floats computed by running code (12.3049, 16.666...), so a model that rounds is not
    wrong. Right when abs(answer - gold) < 1e-3, as PAL checks; or when the reply was written with at
    least two decimals (counted as written: "12.30" has two), is not zero, and equals the gold rounded
    to that many decimals ("12.30" for 12.3049, "12.31" for 12.3051, "16.67" for 50/3). The rule
    depends on the values and the reply's written precision, never on how many decimals the stored
    target has; "0.00" carries no digit of the gold, so it counts only within the tolerance (it is
    right for 0.0004, wrong for 0.0017).
    """
    return numbers_match(answer, gold, abs_tol=PAL_TOLERANCE)


# The local copy is a 200-problem dev file and the hub has one split, so both are split by
# test_fraction. PAL's release file gsmhardv2.jsonl is the whole benchmark, a test set: beside
# dev.jsonl (or alone) it is the test split, and dev.jsonl trains only on questions not in it.
SPEC = DataSpec("gsm_hard", train_files=("dev.jsonl", "train.jsonl", "dev.json", "train.json"),
                official_test=("gsmhardv2.jsonl",),
                hub=HubSource("reasoning-machines/gsm-hard", splits={"train": "train"}))


def build(record: Record) -> Problem:
    try:
        gold = float(record.get("target"))
    except (TypeError, ValueError):
        raise record.error("has a 'target' that is not a number") from None
    return Problem(id=f"gsm_hard-{record.source}-{record.index}", question=str(record.get("input")).strip(),
                   gold=gold)


class GSMHardTask(NumericAnswers):
    """GSM-Hard: GSM8K with large numbers; float answers compared with a tolerance (gsm_hard/dev.jsonl or the hub).

    Answers are read like GSM8K's and compared by :func:`values_match`: PAL's tolerance (1e-3) or the
    target rounded to the decimals the reply wrote.
    """

    name = "gsm_hard"

    class Options(StrictModel):
        test_fraction: float = Field(0.5, gt=0.0, le=1.0, description=(
            "The share of the questions held out as the test split when the data has a train file only; a "
            "test file is used whole. Half of the 200-problem dev file, so "
            "evaluation has 100 questions, not 40."))

    def __init__(self, options: Options, data: Path | None = None) -> None:
        self.data, self.test_fraction = data, options.test_fraction

    def load(self, split: Split, size: int | None, seed: int) -> list[Problem]:
        return load_problems(SPEC, self.data, split, size, seed, build=build, test_fraction=self.test_fraction)

    def score(self, answer: Any | None, problem: Problem) -> Score:
        return verdict(answer is not None and values_match(answer, problem.gold))


@hookimpl
def register_tasks(register: Callable[..., None]) -> None:
    register("gsm_hard", GSMHardTask)
