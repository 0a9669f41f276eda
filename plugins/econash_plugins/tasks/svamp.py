"""The `svamp` task: SVAMP, one-step arithmetic word problems with small variations."""

from __future__ import annotations

from typing import Callable


from econash.data import DataSpec, HubSource, Record
from econash.hookspecs import hookimpl
from econash.types import Problem
from econash_plugins.tasks.file_task import FileTask
from econash_plugins.tasks.answers import NumericAnswers

# SVAMP.json is the original release: its 1,000 problems are a test set in the literature.
SPEC = DataSpec("svamp", hub=HubSource("ChilleD/SVAMP"), official_test=("SVAMP.json",))


def build(record: Record) -> Problem:
    try:
        gold = float(record.get("Answer", "answer"))
    except (TypeError, ValueError):
        raise record.error("has an 'Answer' that is not a number") from None
    body, question = str(record.get("Body", "body")).strip(), str(record.get("Question", "question")).strip()
    ident = record.fields.get("ID") or f"{record.source}-{record.index}"
    return Problem(id=f"svamp-{ident}", question=f"{body} {question}", gold=gold,
                   metadata={"type": record.fields.get("Type"), "equation": record.fields.get("Equation")})


class SVAMPTask(FileTask, NumericAnswers):
    """SVAMP arithmetic word problems (svamp/train.jsonl, test.jsonl or the hub); the prompt is Body + Question.

    The original release file SVAMP.json is read as the test set, as in the literature.
    """

    name = "svamp"

    spec = SPEC
    build = staticmethod(build)


@hookimpl
def register_tasks(register: Callable[..., None]) -> None:
    register("svamp", SVAMPTask)
