"""The `travelplanner` task: TravelPlanner in sole-planning mode, scored like the official evaluator.

The model gets the query and its reference information and returns a day-by-day plan; the plan
is checked against the reference database with the 8 commonsense and 5 hard constraints of
docs/travelplanner.md. A plan's score is the share of applicable constraints it meets (the
method's reward); it is correct when it passes them all (the final pass rate).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from pydantic import Field

from econash.errors import DataError
from econash.hookspecs import hookimpl
from econash.task import Split, Task
from econash.types import Problem, Score, StrictModel
from econash_plugins.tasks.travelplanner.database import Database
from econash_plugins.tasks.travelplanner.dataset import Source, default_database, find_source, split_indices
from econash_plugins.tasks.travelplanner.metrics import aggregate, evaluate
from econash_plugins.tasks.travelplanner.parse import extract_plan
from econash_plugins.tasks.travelplanner.reference import format_reference

# The fields of a query the scorer reads; they are the problem's gold.
GOLD_FIELDS = ("org", "dest", "days", "visiting_city_number", "people_number", "local_constraint", "budget", "level")

ANSWER_FORMAT = """\
Give the final plan for all {days} days as JSON in a ```json code block at the end of your reply: \
a list with one object per day, in order, each with the keys "day", "current_city", \
"transportation", "breakfast", "attraction", "lunch", "dinner" and "accommodation", all strings, \
"-" where there is nothing. current_city is "from A to B" on a day you travel and "B" otherwise. \
Write a flight as "Flight Number: F123, from A to B, Departure Time: HH:MM, Arrival Time: HH:MM", \
and driving as "Self-driving, from A to B, duration: ..., distance: ..., cost: ..." (or "Taxi, ..."). \
Write each meal and the accommodation as "Name, City" and the attractions as "Name, City;Name, City;" \
with every attraction followed by ";". Copy every name exactly from the reference information. \
(The text format "Day 1:" followed by lines "Current City: ...", "Transportation: ...", \
"Breakfast: ...", "Attraction: ...", "Lunch: ...", "Dinner: ...", "Accommodation: ..." is accepted too.)"""

_DATABASES: dict[Path, Database] = {}


def open_database(path: Path) -> Database:
    """One Database per folder per process, so tables load once however many tasks are built."""
    path = Path(path).expanduser().resolve()
    if path not in _DATABASES:
        _DATABASES[path] = Database(path)
    return _DATABASES[path]


class TravelPlannerTask(Task):
    """TravelPlanner sole-planning trips, scored by the official constraints (travelplanner/train.jsonl or the hub)."""

    name = "travelplanner"
    headline_metric = "final_pass_rate"
    # A whole itinerary in the official plan format runs to a thousand tokens and more; the run's
    # 256-token default would cut every plan (`-B generation.max_tokens=N` still decides).
    default_max_tokens = 3000

    class Options(StrictModel):
        database: Path | None = Field(None, description=(
            "The folder of TravelPlanner's reference database (flights, restaurants, ...) the plans are checked "
            "against; null: ECONASH_DATA_DIR/travelplanner/database or beside --data."))

    def __init__(self, options: Options, data: Path | None = None) -> None:
        self.data = data
        folder = options.database.expanduser() if options.database is not None else default_database(data)
        if folder is None or not folder.is_dir():
            where = f" (looked in {folder})" if folder is not None else ""
            raise DataError(f"The TravelPlanner reference database folder was not found{where}; pass "
                            "-B task_options.database=PATH or put it at ECONASH_DATA_DIR/travelplanner/database.")
        self.database = open_database(folder)
        self._source: Source | None = None

    def source(self) -> Source:
        if self._source is None:
            self._source = find_source(self.data)
        return self._source

    def load(self, split: Split, size: int | None, seed: int) -> list[Problem]:
        source = self.source()
        name, order = split_indices(source, split, seed)
        records = source.splits[name]
        chosen = order if size is None else order[:size]  # at most what the split holds
        return [self._problem(records[i], f"travelplanner-{name}-{i}") for i in chosen]

    @staticmethod
    def _problem(record: dict[str, Any], problem_id: str) -> Problem:
        reference = record.get("reference_information") or []
        question = record["query"].strip()
        if reference:
            question += "\n\nReference information (use only these options):\n\n" + format_reference(reference)
        annotated = record.get("annotated_plan")
        metadata = {"level": record.get("level"), "days": record["days"], "date": record.get("date")}
        if isinstance(annotated, list) and len(annotated) == 2:
            metadata["annotated_plan"] = annotated[1]
        return Problem(id=problem_id, question=question, gold={k: record.get(k) for k in GOLD_FIELDS},
                       metadata=metadata)

    def answer_format(self, problem: Problem) -> str:
        return ANSWER_FORMAT.format(days=problem.gold["days"])

    def extract_answer(self, text: str, problem: Problem) -> Any | None:
        return extract_plan(text)

    def grade_text(self, text: str, problem: Problem) -> tuple[Any | None, Score]:
        # Unlike the default, an unparsable reply is still scored: it is an undelivered plan,
        # and its query still counts in the hard micro denominator.
        answer = self.extract_answer(text, problem)
        return answer, self.score(answer, problem)

    def score(self, answer: Any | None, problem: Problem) -> Score:
        return evaluate(answer, problem.gold, self.database)

    def aggregate(self, scores: list[Score]) -> dict[str, float]:
        return aggregate(scores)


@hookimpl
def register_tasks(register: Callable[..., None]) -> None:
    register("travelplanner", TravelPlannerTask)
