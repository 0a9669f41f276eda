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
from econash.task import Split
from econash.types import Problem, Score, StrictModel
from econash_plugins.tasks.answers import IgnoresPromptEchoes, cut_off, last_box, last_boxed, marker_spans, verdict

TYPES = ("Algebra", "Counting & Probability", "Geometry", "Intermediate Algebra", "Number Theory",
         "Prealgebra", "Precalculus")
# Besides train.jsonl/test.jsonl: MATH-500 (math500_test.jsonl, or test.jsonl in a MATH-500 folder),
# a test set, and the original release's folders, MATH/<split>/<subject>/<n>.json.
SPEC = DataSpec("math", official_test=("math500_test.jsonl",), folders=("MATH", "MATH-500"), record_folders=True,
                hub=HubSource("EleutherAI/hendrycks_math",
                              configs=("algebra", "counting_and_probability", "geometry", "intermediate_algebra",
                                       "number_theory", "prealgebra", "precalculus")))


def _level(value: Any) -> int | None:
    found = re.search(r"\d+", str(value))
    return int(found.group()) if found else None  # a few records say "Level ?"


def _key(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower().replace("&", "and"))


_TYPE_NAMES = {_key(name): name for name in TYPES}


def _type(record: Record, path: str) -> str | None:
    """MATH's type name, so the `types` filter works whatever the source: MATH's 'type', MATH-500's
    'subject' ("Precalculus") or the subject folder of the path ("counting_and_probability")."""
    raw = record.fields.get("type") or record.fields.get("subject")
    if not raw and path.count("/") >= 1:
        raw = path.split("/")[-2]
    return _TYPE_NAMES.get(_key(str(raw)), str(raw)) if raw else None


def build(record: Record) -> Problem:
    answer = record.fields.get("answer")  # MATH-500 states the answer; MATH leaves it in the solution
    gold = str(answer).strip() if answer is not None and str(answer).strip() else last_boxed(
        str(record.get("solution")))
    if gold is None:
        raise record.error("has no \\boxed{...} answer in its 'solution'")
    unique = str(record.fields.get("unique_id") or record.name)  # MATH/test/geometry/12.json: "test/geometry/12.json"
    ident = unique.removesuffix(".json").replace("/", "-") if unique else f"{record.source}-{record.index}"
    return Problem(id=f"math-{ident}", question=str(record.get("problem")).strip(), gold=gold,
                   metadata={"level": _level(record.fields.get("level")), "type": _type(record, unique)})


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
                                     "dependency; install it with: pip install 'math-verify>=0.8'.") from None
    # math-verify times out with signal.alarm, which only works in the main thread.
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    try:
        expected = parse(f"\\boxed{{{gold}}}", parsing_timeout=timeout)
        given = parse(f"\\boxed{{{answer}}}", parsing_timeout=timeout)
        return bool(expected and given and verify(expected, given, timeout_seconds=timeout))
    except Exception:  # a grader failure must not end a run: the answer is simply not confirmed
        return False


# The answer line of Minerva-style MATH outputs, which many models trained on MATH write.
# It starts a sentence; without $...$ its answer runs to ". I hope it is correct" or the line end, with no
# sentence end inside (so "the final answer is a common one. It is ..." in prose is not one).
_MINERVA = re.compile(r"(?:^|(?<=[.!?:*])|(?<=[.!?:*]\s))\s*The final answer is:?\s*(?:\$\$?(?P<math>[^$]+?)\$\$?"
                      r"|(?P<plain>(?:[^\n$.]|\.(?!\s))*?)(?=\.?\s*I hope it is correct|\.?[ \t]*(?:\n|$)))",
                      re.IGNORECASE | re.MULTILINE)
_MATH_SPAN = re.compile(r"\$\$?(?P<a>[^$]+?)\$\$?|\\\((?P<b>.+?)\\\)|\\\[(?P<c>.+?)\\\]")


def _last_minerva(text: str) -> tuple[int, int, str] | None:
    """The last "The final answer is $X$" (or X to ". I hope it is correct" or the line end) as (start, end, X);
    an X that is blank or holds a box is left to the box."""
    found = list(_MINERVA.finditer(text))
    if not found:
        return None
    match = found[-1]
    answer = match.group("math") if match.group("math") is not None else match.group("plain")
    if not answer.strip() or "\\boxed" in answer or "\\fbox" in answer:
        return None
    return match.start(), match.end(), answer


def _answer_place(span: str) -> str:
    """The answer in the text after "The answer is": its leading $...$ (or \\(...\\)), else the text up to
    the end of the sentence, so "$5$ because 2 + 3 = 5" gives "5"."""
    found = _MATH_SPAN.match(span)
    if found:
        return next(group for group in found.groups() if group is not None)
    return re.split(r"\.?\s+I hope it is correct|\.(?=\s|$)", span, maxsplit=1)[0]


class MathTask(IgnoresPromptEchoes):
    """Hendrycks MATH competition problems; \\boxed{} answers checked for equivalence with math-verify."""

    name = "math"

    class Options(StrictModel):
        test_fraction: float = Field(0.2, gt=0.0, le=1.0, description=(
            "The share of the questions held out as the test split when the data has a train file only; a "
            "test file is used whole."))
        levels: list[int] | None = Field(None, description="Only problems of these difficulty levels (1 to 5); null: all.")
        types: list[str] | None = Field(None, description=(
            "Only problems of these subjects (Algebra, Number Theory, ...; any case); null: all."))

    def __init__(self, options: Options, data: Path | None = None) -> None:
        self.data, self.test_fraction = data, options.test_fraction
        levels, types = options.levels, options.types
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
        """The final answer: the last \\boxed{} or Minerva line ("The final answer is $X$. I hope it is
        correct."), whichever comes last; else what follows the last "The answer is". None when empty,
        when the last box is cut off, or when the reply only echoes the prompt."""
        text = self.own_words(text, problem)
        if cut_off(text):
            return None
        box, minerva = last_box(text), _last_minerva(text)
        if minerva is not None and (box is None or box[0] < minerva[0]):
            answer: str | None = minerva[2]
        elif box is not None:
            answer = box[2]
        else:
            spans = marker_spans(text)
            answer = _answer_place(spans[-1]) if spans else None
        answer = clean(answer) if answer else ""
        return answer or None

    def score(self, answer: Any | None, problem: Problem) -> Score:
        return verdict(isinstance(answer, str) and equivalent(str(problem.gold), answer))


@hookimpl
def register_tasks(register: Callable[..., None]) -> None:
    register("math", MathTask)
