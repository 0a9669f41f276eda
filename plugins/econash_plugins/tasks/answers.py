"""Answer extraction and comparison shared by the first-party tasks (docs/grading.md states the rules).

The rule throughout: an unparseable or ambiguous answer is wrong, never right. Extractors return
None instead of guessing, and a None answer scores 0. So the task's own prompt text is removed from
a reply before it is read (an echoed "'The answer is yes.' or 'The answer is no.'" is no "no"); a
cut-off last box is no answer; and a final answer place that names two different values ("18 or
25", "18-25", "18 / 25") is no answer, while a negated value is no candidate ("not 18; it is 25" is
25) and working after the answer is no second value ("18 (since 6*3 = 18)" is 18).

Numbers are read as written: commas group thousands (1,234), currency signs are dropped ($12.50,
€5), units after a number are ignored (12 apples, 12 m^2, 12 \\text{ cm}^{3}, 90^\\circ), and a
percentage is its number ("25%" -> 25, as GSM8K writes percentage answers). Fractions (3/4,
\\frac{3}{4}) and scientific notation (2.5e3, 2.5 \\times 10^{3}) become their value. A number
remembers how many decimals it was written with (:class:`Reading`), for rounding rules.
"""

from __future__ import annotations

import functools
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from econash.task import Task
from econash.types import Problem, Score

# ---------------------------------------------------------------- \boxed{...}

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*(\{)|\\boxed[ \t]+([^\s${}]+)")


def _boxes(text: str) -> list[tuple[int, int, str | None]]:
    """Every box as (start, end, content), content None for a box whose brace never closes."""
    closing, opened = {}, []  # each "{" -> its "}", in one pass (a reply may hold thousands of braces)
    for brace in re.finditer(r"[{}]", text):
        if brace.group() == "{":
            opened.append(brace.start())
        elif opened:
            closing[opened.pop()] = brace.start()
    found: list[tuple[int, int, str | None]] = []
    for match in _BOXED.finditer(text):
        if match.group(2) is not None:
            found.append((match.start(), match.end(), match.group(2)))
            continue
        close = closing.get(match.end() - 1)
        found.append((match.start(), len(text) if close is None else close + 1,
                      None if close is None else text[match.end():close].strip()))
    return found


def last_box(text: str) -> tuple[int, int, str] | None:
    """The last closed box as (start, end, content); the innermost of nested boxes starts last."""
    closed = [(s, e, c) for s, e, c in _boxes(text) if c is not None]
    return closed[-1] if closed else None


def last_boxed(text: str) -> str | None:
    """The content of the last closed ``\\boxed{...}`` or ``\\fbox{...}`` (nested braces kept), or None.

    ``\\boxed 5`` without braces (a few MATH solutions write it so) gives ``5``.
    """
    box = last_box(text)
    return box[2] if box else None


def cut_off(text: str) -> bool:
    """Whether the text's last box never closes: the reply stopped inside its answer, so it has none.
    Extractors check this first, or they would grade an earlier box, a marker or a partial "\\boxed{12"."""
    boxes = _boxes(text)
    return bool(boxes) and boxes[-1][2] is None


# ---------------------------------------------------------------- the prompt's own text


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\\$'\"‘“])")
_QUOTES = "'\"‘’“”`"


def _fold(text: str) -> tuple[str, list[int]]:
    """``text`` lowercased, without whitespace and with one kind of quote mark, and where each of its
    characters stands in ``text``: a copy is found whatever its spacing, case or quotes."""
    chars, where = [], []
    for i, ch in enumerate(text):
        if not ch.isspace():
            low = "'" if ch in _QUOTES else ch.lower()
            chars.append(low if len(low) == 1 else ch)
            where.append(i)
    return "".join(chars), where


@functools.lru_cache(maxsize=4096)
def _echo_fragments(instruction: str, question: str) -> tuple[str, ...]:
    fragments = {instruction.strip(), question.strip()}
    for source, is_instruction in ((instruction, True), (question, False)):
        for sentence in _SENTENCE_END.split(source):
            fragments.add(sentence.strip())
            template = re.search(rf"[{_QUOTES}\\]", sentence)
            if is_instruction and template:
                # the instruction's template on its own: "'The answer is yes.' or 'The answer is no.'",
                # "\boxed{ANSWER}, for example \boxed{\frac{3}{4}}." and each of its clauses
                tail = sentence[template.start():].strip()
                fragments.update([tail, *(c.strip() for c in tail.split(", ") if re.search(rf"[{_QUOTES}\\]", c))])
    # a short sentence ("Find x.") could be the reply's own words; the whole instruction never is
    kept = {_fold(f)[0] for f in fragments if len(f) >= 12 or (f and f == instruction.strip())} - {""}
    return tuple(sorted(kept, key=len, reverse=True))  # the longest first: a whole echo before its parts


def without_echoes(text: str, instruction: str, question: str = "") -> str:
    """``text`` without any copy of the task's instruction, its sentences and quoted template, or of
    the question and its sentences: words the task put in the prompt are never the model's answer."""
    folded, where = _fold(text)
    spans: list[tuple[int, int]] = []
    for fragment in _echo_fragments(instruction, question):
        at = folded.find(fragment)
        while at >= 0:
            spans.append((where[at], where[at + len(fragment) - 1] + 1))
            at = folded.find(fragment, at + len(fragment))
    if not spans:
        return text
    pieces, done = [], 0
    for start, end in sorted(spans):
        if end > done:
            pieces.append(text[done:max(start, done)])
            done = end
    return "\n".join(pieces + [text[done:]])


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


class Reading(float):
    """A number read from text that remembers how many decimals were written: "12.30" has 2 places,
    though the float 12.3 has 1. Rounding rules need the written precision; fractions have 0."""

    places: int

    def __new__(cls, value: float, places: int = 0) -> Reading:
        reading = super().__new__(cls, value)
        reading.places = places
        return reading


_DIGITS = r"(?:\d{1,3}(?:,\d{3})+(?![\d])|\d+)(?:\.\d+)?|\.\d+"
_NUMBER = re.compile(
    r"(?P<neg>(?<![\w)\]}])[-−]\s?)?"
    r"(?:\\?\$|€|£|¥|₹)?\s?"
    r"(?:\\[dt]?frac\s*\{\s*(?P<fn>-?(?:" + _DIGITS + r"))\s*\}\s*\{\s*(?P<fd>" + _DIGITS + r")\s*\}"
    r"|\\[dt]?frac(?P<sn>\d)(?P<sd>\d)"
    r"|(?<![\w.])(?P<num>" + _DIGITS + r")(?P<exp>[eE][-+]?\d+)?"
    r"(?:(?P<slash>\s*/\s*)(?P<den>\d+(?:\.\d+)?)(?!\d|\.\d))?"
    r"(?:\s*(?:\\times|×|\\cdot|\*|x)\s*10\s*\^\s*\{?\s*(?P<pow>[-+−]?\d+)\s*\}?)?)"
)
# A unit with an exponent after a number is no second number: \text{ m}^2, \mathrm{cm}^{3}, 12 m^2, 90^\circ.
# A bare unit needs a space before it, so the variable in "3m^2" or "2x^2" is not taken for one.
_UNIT_POWER = re.compile(
    r"\\(?:text|mbox|mathrm|textrm|rm)\s*\{[^{}]*\}\s*\^\s*(?:\{[^{}]*\}|\\circ|\d)"
    r"|(?<=\d)(?=(?:\s|\\[,;: ]|~)+(?:[kcmd]?m|in|ft|yd|mi|inch(?:es)?|feet|foot|yards?|miles?|units?"
    r"|(?:centi|milli|kilo)?met(?:er|re)s?)\s*\^)(?:\s|\\[,;: ]|~)+\w+\s*\^\s*\{?\s*[23]\s*\}?(?!\w)"
    r"|\^\s*\{?\s*\\circ\s*\}?")


def _normalise(text: str) -> str:
    # LaTeX digit grouping (1{,}234, 10,\!000), unicode minus and units with exponents must not split a number.
    return _UNIT_POWER.sub(" ", text.replace("{,}", ",").replace("\\!", "").replace("−", "-"))


def _value(match: re.Match[str]) -> Reading | None:
    def num(token: str) -> float:
        return float(token.replace(",", ""))

    places = 0
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
            if not (match.group("exp") or match.group("den") or match.group("pow")) and "." in match.group("num"):
                places = len(match.group("num").rsplit(".", 1)[1])
    except (ZeroDivisionError, OverflowError, ValueError):
        return None
    if not math.isfinite(value):
        return None
    return Reading(-value if match.group("neg") else value, places)


def numbers_in(text: str) -> list[Reading | None]:
    """Every number in ``text``, in order (None for one that has no value, such as 1/0)."""
    return [_value(m) for m in _NUMBER.finditer(_normalise(text))]


def parse_number(text: str) -> Reading | None:
    """The value of text that holds exactly one number ("$1,234.50", "12 apples", "\\frac{3}{4}", "25%");
    None when it holds none or several ("2x+3")."""
    found = numbers_in(text)
    return found[0] if len(found) == 1 else None


_NEGATED = re.compile(r"(?:\bnot|n't|\bnever|\brather than|\binstead of|\bno longer)\s*(?:equal to|exactly|just)?"
                      r"[\s*$\\(]*$", re.IGNORECASE)
# What may stand between two values that offers them as alternatives: "18 or 25", "18 apples and/or 25",
# "$18$ or $25$", "18, maybe 25", "18-25", "18 / 25".
_HEDGE = re.compile(
    r"[\s*$,.]*(?:[A-Za-z%]+(?![A-Za-z%])\.?\s*){0,3}?[\s*$,(]*"
    r"(?:(?:or|and\s*/\s*or|and|vs\.?|versus|maybe|perhaps|possibly|probably|alternatively)(?![A-Za-z])|[/~–—-])"
    r"[\s*$,(]*(?:(?:maybe|perhaps|possibly|probably|even|else|rather|alternatively|potentially|either)\s*)*"
    r"[\s*$(\\]*", re.IGNORECASE)
_CUE = (r"\(\s*(?!(?:or|and/or|maybe|perhaps|possibly|alternatively)\b)|\[|;|:(?=\s)|\s(?:—|--)\s"
        r"|\b(?:because|since|as|which|where|when|while|given|so|thus|hence|therefore|i\.e\.|e\.g\.|that is|"
        r"namely|meaning|after|if|per|out of)(?![A-Za-z])")
_PLACE_END = re.compile(r"(?P<stop>[.!?](?=[\s*)\"'$]|$))|" + _CUE, re.IGNORECASE)
_SECOND_THOUGHT = re.compile(r"[\s*]*(?:or|alternatively|maybe|perhaps|possibly|otherwise)(?![A-Za-z])", re.IGNORECASE)
_AFTER_BOX_END = re.compile(r"[.!?](?=[\s*)\"'$]|$)|=|" + _CUE, re.IGNORECASE)


def _negated(text: str, match: re.Match[str]) -> bool:
    return bool(_NEGATED.search(text[max(0, match.start() - 48):match.start()]))  # the words just before


def _spaced_slash(match: re.Match[str]) -> bool:
    """"18 / 25" is an alternative as often as a fraction; "18/25" is a fraction."""
    return bool(match.group("slash")) and match.group("slash") != match.group("slash").strip()


def _differ(a: float | None, b: float | None) -> bool:
    return a is None or b is None or not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _names_other(value: float, text: str) -> bool:
    """Whether ``text`` names a value other than ``value`` (negated ones aside)."""
    return any(_differ(value, _value(m)) for m in _NUMBER.finditer(text) if not _negated(text, m))


def _one_value(part: str) -> Reading | None:
    """The value that ``part`` names; None when it names none, several different ones or a spaced "18 / 25"."""
    found = [m for m in _NUMBER.finditer(part) if not _negated(part, m)]
    if not found or any(_spaced_slash(m) for m in found):
        return None
    value = _value(found[0])
    return None if value is None or _names_other(value, part) else value


def _read_place(span: str) -> Reading | None:
    """The value of the text after an answer marker: its place runs to the end of the sentence that
    holds its first number, or to working (a cue) after its first candidate."""
    numbers = list(_NUMBER.finditer(span))
    candidates = [m for m in numbers if not _negated(span, m)]
    end = len(span)
    for stop in _PLACE_END.finditer(span, numbers[0].end()):
        if stop.group("stop") or (candidates and stop.start() >= candidates[0].end()):
            end = stop.start()
            break
    parts = span[:end].split("=")
    # "6 × 3 = 18" states its value last, "18 = 6 × 3" first; "12 inches = 1 foot" states two
    last, first = _one_value(parts[-1]), _one_value(parts[0])
    value = last if len(parts) == 1 or first is None else first if last is None or not _differ(first, last) else None
    rest = span[end + 1:]  # "18. Or maybe 25." offers a second value in the next sentence
    return None if value is None or (_SECOND_THOUGHT.match(rest) and _names_other(value, rest)) else value


def _read_box(text: str, start: int, end: int, content: str) -> Reading | None:
    """The value of the last box, None when it is not one number or a different value is offered with it
    on its line ("\\boxed{18} or 25", "either 18 or \\boxed{25}", "\\boxed{18}. Or maybe 25.")."""
    value = parse_number(content)
    if value is None:
        return None
    line_end = text.find("\n", end) % (len(text) + 1)  # -1 (the last line) becomes len(text)
    after, before = (re.sub(r"\\(?:boxed|fbox)\s*\{([^{}]*)\}", r"\1", part)
                     for part in (text[end:line_end], text[text.rfind("\n", 0, start) + 1:start]))
    stop = _AFTER_BOX_END.search(after)
    place, rest = (after[:stop.start()], after[stop.end():]) if stop else (after, "")
    following = next(_NUMBER.finditer(place), None)
    if following and not _negated(place, following) and _HEDGE.fullmatch(place[:following.start()]) \
            and _differ(value, _value(following)):
        return None
    if stop and stop.group() in ".!?" and _SECOND_THOUGHT.match(rest) and _names_other(value, rest):
        return None
    preceding = list(_NUMBER.finditer(before))
    if preceding and _HEDGE.fullmatch(before[preceding[-1].end():]) and _differ(value, _value(preceding[-1])):
        return None
    return value


def _read_last(text: str) -> Reading | None:
    """With no box and no marker: the last number of the last sentence that has one, unless it is
    negated ("it is not 18.") or offered with another ("either 18 or 25")."""
    for sentence in reversed(re.split(r"(?<=[.!?])\s+|\n", text)):
        if not _NUMBER.search(sentence):
            continue
        candidates = [m for m in _NUMBER.finditer(sentence) if not _negated(sentence, m)]
        if not candidates or _spaced_slash(candidates[-1]) or (
                len(candidates) > 1 and _HEDGE.fullmatch(sentence[candidates[-2].end():candidates[-1].start()])
                and _differ(_value(candidates[-2]), _value(candidates[-1]))):
            return None
        return _value(candidates[-1])
    return None


def extract_number(text: str) -> Reading | None:
    """The final numeric answer of model output.

    The last ``\\boxed{}`` decides when there is one (it must hold exactly one number, and a cut-off
    last box means no answer); else the last answer marker that is followed by a number on its line;
    else the last number in the text. Hedged or negated answers are None (see the module docstring).
    """
    text = _normalise(text)
    if cut_off(text):
        return None
    box = last_box(text)
    if box is not None:
        return _read_box(text, *box)
    for span in reversed(marker_spans(text)):
        if _NUMBER.search(span):
            return _read_place(span)
    return _read_last(text)


def decimals_written(value: float) -> int:
    """Decimals a number was written with: a :class:`Reading` knows; a plain float has its shortest repr's."""
    if isinstance(value, Reading):
        return value.places
    try:
        exponent = Decimal(repr(float(value))).normalize().as_tuple().exponent
    except InvalidOperation:
        return 0
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def numbers_match(answer: Any, gold: Any, rel_tol: float = 1e-12, abs_tol: float = 1e-9) -> bool:
    """Whether a numeric answer equals the gold within a relative and absolute tolerance.

    The default tolerance absorbs float noise only (9,435,680,550 off by one stays wrong). A non-zero
    answer written with 2+ decimals also counts when the gold rounds to it (16.67 for 16.666...).
    """
    try:
        a, g = float(answer), float(gold)
    except (TypeError, ValueError):
        return False
    if not (math.isfinite(a) and math.isfinite(g)):
        return False
    if math.isclose(a, g, rel_tol=rel_tol, abs_tol=abs_tol):
        return True
    places = decimals_written(answer)
    return places >= 2 and a != 0 and math.isclose(round(g, places), a, rel_tol=1e-12, abs_tol=10.0 ** -(places + 3))


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
    last decisive yes/no/true/false in the text. Both answers in one place ("yes or no") and a cut-off
    last box give None."""
    if cut_off(text):
        return None
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


class IgnoresPromptEchoes(Task):
    """Reads a reply without the text the task itself put in the prompt (its answer format and the
    question): a model that only repeats its instructions has not answered, whatever they contain."""

    def own_words(self, text: str, problem: Problem) -> str:
        return without_echoes(text, self.answer_format(problem), problem.question)


class NumericAnswers(IgnoresPromptEchoes):
    """Answer format, extraction and grading for tasks whose gold answer is a number."""

    def answer_format(self, problem: Problem) -> str:
        return "End with 'The answer is N.' where N is a number."

    def extract_answer(self, text: str, problem: Problem) -> Reading | None:
        return extract_number(self.own_words(text, problem))

    def score(self, answer: Any | None, problem: Problem) -> Score:
        return verdict(answer is not None and numbers_match(answer, problem.gold))
