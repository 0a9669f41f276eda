"""The `math` task: competition mathematics (Hendrycks MATH), answers compared by mathematical equivalence."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any, Callable

from pydantic import Field

from econash.data import DataSpec, HubSource, Record, load_problems
from econash.errors import ConfigError, MissingDependencyError
from econash.hookspecs import hookimpl
from econash.task import Split, Task
from econash.types import Problem, Score, StrictModel
from econash_plugins._answers import last_boxed, marker_spans, verdict

TYPES = ("Algebra", "Counting & Probability", "Geometry", "Intermediate Algebra", "Number Theory",
         "Prealgebra", "Precalculus")
SPEC = DataSpec("math", hub=HubSource(
    "EleutherAI/hendrycks_math",
    configs=("algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
             "prealgebra", "precalculus")))


def _level(value: Any) -> int | None:
    found = re.search(r"\d+", str(value))
    return int(found.group()) if found else None  # a few records say "Level ?"


def build(record: Record) -> Problem:
    gold = last_boxed(str(record.get("solution")))
    if gold is None:
        raise record.error("has no \\boxed{...} answer in its 'solution'")
    unique = record.fields.get("unique_id")
    ident = str(unique).removesuffix(".json").replace("/", "-") if unique else f"{record.source}-{record.index}"
    return Problem(id=f"math-{ident}", question=str(record.get("problem")).strip(), gold=gold,
                   metadata={"level": _level(record.fields.get("level")), "type": record.fields.get("type")})


_SPACING = re.compile(r"\\[,!;: ]|\\left|\\right|(?<=\W)\s+|\s+(?=\W)")


def clean(answer: str) -> str:
    """The answer without surrounding space, $ signs or a trailing period."""
    return answer.strip().strip("$").strip().rstrip(".").strip()


def normalise(answer: str) -> str:
    """A canonical string for equality only (it can break LaTeX such as "\\pi r"): no spacing, \\dfrac as \\frac."""
    text = re.sub(r"\s+", " ", _SPACING.sub("", clean(answer)))
    return text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")


def equivalent(gold: str, answer: str, *, shortcut: bool = True) -> bool:
    """Whether two LaTeX answers are mathematically equal (fractions, decimals, radicals, intervals, sets, text).

    Identical answers (after :func:`normalise`) need no algebra (``shortcut=False`` asks math-verify
    anyway); otherwise math-verify decides, and an answer it cannot parse, or an error inside it,
    counts as wrong.
    """
    if shortcut and normalise(gold) == normalise(answer):
        return True
    try:
        from math_verify import parse, verify
    except ImportError:
        raise MissingDependencyError("Grading the math task needs the 'math-verify' package, an econash "
                                     "dependency; install it with: pip install 'math-verify>=0.7'.") from None
    # math-verify times out with signal.alarm, which only works in the main thread.
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    try:
        expected = parse(f"\\boxed{{{gold}}}", parsing_timeout=timeout)
        given = parse(f"\\boxed{{{answer}}}", parsing_timeout=timeout)
        return bool(expected and given and verify(expected, given, timeout_seconds=timeout))
    except Exception:  # a grader failure must not end a run: the answer is simply not confirmed
        return False


class MathTask(Task):
    """Hendrycks MATH competition problems; \\boxed{} answers checked for equivalence with math-verify."""

    name = "math"

    class Options(StrictModel):
        test_fraction: float = Field(0.2, gt=0.0, le=1.0)
        levels: list[int] | None = None
        types: list[str] | None = None

    def __init__(self, data: Path | None = None, test_fraction: float = 0.2, levels: list[int] | None = None,
                 types: list[str] | None = None) -> None:
        self.data, self.test_fraction = data, test_fraction
        if levels is not None and not set(levels) <= {1, 2, 3, 4, 5}:
            raise ConfigError(f"math levels must be between 1 and 5, not {levels}; "
                              f"use e.g. -B 'task_options.levels=[1,2]'.")
        known = {t.lower(): t for t in TYPES}
        unknown = [t for t in types or [] if t.lower() not in known]
        if unknown:
            raise ConfigError(f"Unknown math type '{unknown[0]}'; choose from: {', '.join(TYPES)}.")
        self.levels = set(levels) if levels is not None else None
        self.types = {known[t.lower()] for t in types} if types is not None else None

    def _keep(self, problem: Problem) -> bool:
        # Two MATH train solutions end in an empty \boxed{} (the answer was lost in the source):
        # no answer could be graded right, so they are left out.
        if not problem.gold:
            return False
        return ((self.levels is None or problem.metadata["level"] in self.levels)
                and (self.types is None or problem.metadata["type"] in self.types))

    def load(self, split: Split, size: int | None, seed: int) -> list[Problem]:
        return load_problems(SPEC, self.data, split, size, seed, build=build, keep=self._keep,
                             test_fraction=self.test_fraction)

    def answer_format(self, problem: Problem) -> str:
        return "End with your final answer in LaTeX as \\boxed{ANSWER}, for example \\boxed{\\frac{3}{4}}."

    def extract_answer(self, text: str, problem: Problem) -> str | None:
        """The last \\boxed{} of the text, else what follows the last "The answer is"; None when empty."""
        answer = last_boxed(text)
        if answer is None:
            spans = marker_spans(text)
            answer = spans[-1] if spans else None
        answer = clean(answer) if answer else ""
        return answer or None

    def score(self, answer: Any | None, problem: Problem) -> Score:
        return verdict(isinstance(answer, str) and equivalent(str(problem.gold), answer))


@hookimpl
def register_tasks(register: Callable[..., None]) -> None:
    register("math", MathTask)
