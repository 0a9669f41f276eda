"""The loading part shared by first-party tasks read through econash.data.load_problems."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from econash.data import DataSpec, Record, load_problems
from econash.task import Split, Task
from econash.types import Problem, StrictModel


class FileTask(Task):
    """Subclasses set ``spec`` (where the data lives) and ``build`` (one record -> one Problem)."""

    spec: ClassVar[DataSpec]

    class Options(StrictModel):
        test_fraction: float = Field(0.2, gt=0.0, le=1.0, description=(
            "The share of the questions held out as the test split when the data has a train file only; a "
            "test file is used whole."))

    def __init__(self, options: Options, data: Path | None = None) -> None:
        self.data, self.test_fraction = data, options.test_fraction

    @staticmethod
    def build(record: Record) -> Problem:
        raise NotImplementedError

    def load(self, split: Split, size: int | None, seed: int) -> list[Problem]:
        return load_problems(self.spec, self.data, split, size, seed, build=self.build,
                             test_fraction=self.test_fraction)
