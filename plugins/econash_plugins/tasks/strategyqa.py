"""The `strategyqa` task: StrategyQA, yes/no questions that need implicit multi-step reasoning."""

from __future__ import annotations

from typing import Any, Callable


from econash.data import DataSpec, HubSource, Record
from econash.hookspecs import hookimpl
from econash.types import Problem, Score
from econash_plugins.tasks.file_task import FileTask
from econash_plugins.tasks.answers import IgnoresPromptEchoes, extract_yes_no, verdict

# The official release's strategyqa_test.json has no answers (its grading was a leaderboard), so
# it is refused rather than graded against nothing; strategyqa_train.json is split like train.jsonl.
SPEC = DataSpec("strategyqa", hub=HubSource("ChilleD/StrategyQA"), official_train=("strategyqa_train.json",),
                unlabelled=("strategyqa_test.json",))
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


class StrategyQATask(FileTask, IgnoresPromptEchoes):
    """StrategyQA yes/no questions needing implicit multi-step reasoning (strategyqa/train.jsonl or the hub).

    The official release file strategyqa_train.json is read too, and split like train.jsonl.
    """

    name = "strategyqa"

    spec = SPEC
    build = staticmethod(build)

    def answer_format(self, problem: Problem) -> str:
        return "End with 'The answer is yes.' or 'The answer is no.'"

    def extract_answer(self, text: str, problem: Problem) -> bool | None:
        # without the echo: the instruction's own "'The answer is no.'" is no answer
        return extract_yes_no(self.own_words(text, problem))

    def score(self, answer: Any | None, problem: Problem) -> Score:
        return verdict(isinstance(answer, bool) and answer == problem.gold)


@hookimpl
def register_tasks(register: Callable[..., None]) -> None:
    register("strategyqa", StrategyQATask)
