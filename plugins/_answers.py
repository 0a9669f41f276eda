"""Answer extraction and comparison shared by the first-party tasks.

The rule throughout: an unparseable answer is wrong, never right. Extractors return None instead
of guessing, and a None answer scores 0.

Numbers are read as written: commas group thousands (1,234), currency signs are dropped ($12.50,
€5), units after a number are ignored (12 apples), and a percentage is its number ("25%" -> 25,
as GSM8K writes percentage answers). Fractions (3/4, \\frac{3}{4}) and scientific notation (2.5e3,
2.5 \\times 10^{3}) become their value.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from econash.task import Task
from econash.types import Problem, Score

# ---------------------------------------------------------------- \boxed{...}

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*(\{)|\\boxed[ \t]+([^\s${}]+)")


def last_boxed(text: str) -> str | None:
    """The content of the last closed ``\\boxed{...}`` or ``\\fbox{...}`` (nested braces kept), or None.

    ``\\boxed 5`` without braces (a few MATH solutions write it so) gives ``5``.
    """
    for match in reversed(list(_BOXED.finditer(text))):
        if match.group(2) is not None:
            return match.group(2)
        depth, i = 1, match.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            return text[match.end():i - 1].strip()
    return None  # no box, or only unclosed ones: a cut-off answer is no answer


# ---------------------------------------------------------------- "The answer is ..."

_MARKER = re.compile(
    r"(?:\banswer\b\**\s*(?:is\b|would be\b|should be\b|will be\b|=|:)|####)[\s:*]*", re.IGNORECASE)


def marker_spans(text: str) -> list[str]:
    """The text after each answer marker ("The answer is", "Answer:", "Final answer:", "####") to the end
    of its line, in order of appearance."""
    spans = []
    for match in _MARKER.finditer(text):
        rest = text[match.end():]
        spans.append(rest.split("\n", 1)[0].strip())
    return spans


# ---------------------------------------------------------------- numbers

_DIGITS = r"(?:\d{1,3}(?:,\d{3})+(?![\d])|\d+)(?:\.\d+)?|\.\d+"
_NUMBER = re.compile(
    r"(?P<neg>(?<![\w)\]}])[-−]\s?)?"
    r"(?:\\?\$|€|£|¥|₹)?\s?"
    r"(?:\\[dt]?frac\s*\{\s*(?P<fn>-?(?:" + _DIGITS + r"))\s*\}\s*\{\s*(?P<fd>" + _DIGITS + r")\s*\}"
    r"|\\[dt]?frac(?P<sn>\d)(?P<sd>\d)"
    r"|(?<![\w.])(?P<num>" + _DIGITS + r")(?P<exp>[eE][-+]?\d+)?"
    r"(?:\s*/\s*(?P<den>\d+(?:\.\d+)?)(?!\d|\.\d))?"
    r"(?:\s*(?:\\times|×|\\cdot|\*|x)\s*10\s*\^\s*\{?\s*(?P<pow>[-+−]?\d+)\s*\}?)?)"
)


def _normalise(text: str) -> str:
    # LaTeX digit grouping (1{,}234, 10,\!000) and unicode minus must not split a number.
    return text.replace("{,}", ",").replace("\\!", "").replace("−", "-")


def _value(match: re.Match[str]) -> float | None:
    def num(token: str) -> float:
        return float(token.replace(",", ""))

    try:
        if match.group("fn") is not None:
            value = num(match.group("fn")) / num(match.group("fd"))
        elif match.group("sn") is not None:
            value = num(match.group("sn")) / num(match.group("sd"))
        else:
            value = num(match.group("num") + (match.group("exp") or ""))
            if match.group("den") is not None:
                value /= num(match.group("den"))
            if match.group("pow") is not None:
                value *= 10.0 ** int(match.group("pow").replace("−", "-"))
    except (ZeroDivisionError, OverflowError, ValueError):
        return None
    if not math.isfinite(value):
        return None
    return -value if match.group("neg") else value


def numbers_in(text: str) -> list[float | None]:
    """Every number in ``text``, in order (None for one that has no value, such as 1/0)."""
    return [_value(m) for m in _NUMBER.finditer(_normalise(text))]


def parse_number(text: str) -> float | None:
    """The value of text that holds exactly one number ("$1,234.50", "12 apples", "\\frac{3}{4}", "25%");
    None when it holds none or several ("2x+3")."""
    found = numbers_in(text)
    return found[0] if len(found) == 1 else None


def extract_number(text: str) -> float | None:
    """The final numeric answer of model output.

    The last ``\\boxed{}`` decides when there is one (it must hold exactly one number); else the last
    answer marker that is followed by a number on its line; else the last number in the text.
    """
    text = _normalise(text)
    boxed = last_boxed(text)
    if boxed is not None:
        return parse_number(boxed)
    for span in reversed(marker_spans(text)):
        found = numbers_in(span)
        if found:
            return found[0]
    found = numbers_in(text)
    return found[-1] if found else None


def _decimals(value: float) -> int:
    try:
        exponent = Decimal(repr(value)).normalize().as_tuple().exponent
    except InvalidOperation:
        return 0
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def numbers_match(answer: Any, gold: Any, rel_tol: float = 1e-12, abs_tol: float = 1e-9) -> bool:
    """Whether a numeric answer equals the gold within a relative and absolute tolerance.

    The tolerance absorbs float noise only (an off-by-one on 9,435,680,550 stays wrong). An answer
    written with two or more decimals also counts when the gold rounds to it (16.67 for 16.666...).
    """
    try:
        a, g = float(answer), float(gold)
    except (TypeError, ValueError):
        return False
    if not (math.isfinite(a) and math.isfinite(g)):
        return False
    if math.isclose(a, g, rel_tol=rel_tol, abs_tol=abs_tol):
        return True
    places = _decimals(a)
    return places >= 2 and math.isclose(round(g, places), a, rel_tol=rel_tol, abs_tol=10.0 ** -(places + 3))


# ---------------------------------------------------------------- yes / no

_POLARITY = {"yes": True, "true": True, "no": False, "false": False}
_TOKEN = re.compile(r"\b(yes|no|true|false)\b", re.IGNORECASE)
_SENTENCE_START = re.compile(r"(?:^|[\n.!?:;\"'(*])[\s*\"'(]*$")


def _decisive(text: str, match: re.Match[str]) -> bool:
    """Whether a yes/no/true/false token answers, rather than being a word ("no doubt", "true that")."""
    word = match.group(1).lower()
    after = text[match.end():]
    return (word == "yes" or not re.match(r"\s+[A-Za-z]", after)
            or bool(_SENTENCE_START.search(text[:match.start()])))


def _polarity(text: str) -> bool | None | str:
    """True/False, None when the text holds no answer word, "ambiguous" when it holds both kinds."""
    tokens = [m for m in _TOKEN.finditer(text) if _decisive(text, m)]
    if not tokens:
        return None
    values = {_POLARITY[m.group(1).lower()] for m in tokens}
    if len(values) == 1:
        return values.pop()
    first = tokens[0]
    # "No, ... yes ..." answers with its first word; "yes or no" does not answer.
    if not text[:first.start()].strip(" *\"'(:") and re.match(r"[\s*\"')]*(?:[,.!;:]|$)", text[first.end():]):
        return _POLARITY[first.group(1).lower()]
    return "ambiguous"


def extract_yes_no(text: str) -> bool | None:
    """A yes/no answer: the last ``\\boxed{}``, else the last answer marker, else the last line, else the
    last decisive yes/no/true/false in the text. Both answers in one place ("yes or no") give None."""
    boxed = last_boxed(text)
    if boxed is not None:
        value = _polarity(re.sub(r"\\text\{([^{}]*)\}", r"\1", boxed))
        return value if isinstance(value, bool) else None
    places = [*reversed(marker_spans(text))]
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if lines:
        places.append(lines[-1])
    for place in places:
        value = _polarity(place)
        if value == "ambiguous":
            return None
        if value is not None:
            return value
    tokens = [m for m in _TOKEN.finditer(text) if _decisive(text, m)]
    return _POLARITY[tokens[-1].group(1).lower()] if tokens else None


# ---------------------------------------------------------------- shared task behaviour


def verdict(correct: bool) -> Score:
    return Score(correct=correct, score=1.0 if correct else 0.0)


class NumericAnswers(Task):
    """Answer format, extraction and grading for tasks whose gold answer is a number."""

    def answer_format(self, problem: Problem) -> str:
        return "End with 'The answer is N.' where N is a number."

    def extract_answer(self, text: str, problem: Problem) -> float | None:
        return extract_number(text)

    def score(self, answer: Any | None, problem: Problem) -> Score:
        return verdict(answer is not None and numbers_match(answer, problem.gold))
