"""Shared answer extraction and comparison (plugins/econash_plugins/tasks/answers.py) on real-looking model output."""

from __future__ import annotations

import pytest

from econash_plugins.tasks.answers import (
    extract_number,
    extract_yes_no,
    last_boxed,
    marker_spans,
    numbers_match,
    parse_number,
)


@pytest.mark.parametrize("text,expected", [
    ("\\boxed{42}", "42"),
    ("first \\boxed{1} then \\boxed{\\frac{a}{b}} at last", "\\frac{a}{b}"),
    ("\\boxed{\\left\\{1, \\frac{2}{3}\\right\\}}", "\\left\\{1, \\frac{2}{3}\\right\\}"),
    ("so $x = \\boxed 2$.", "2"),  # a few MATH solutions omit the braces
    ("\\fbox{7}", "7"),
    ("\\boxed{\\boxed{4}}", "4"),  # the innermost box starts last
    ("\\boxed{12} and later a cut-off \\boxed{1", "12"),  # an unclosed box is no answer
    ("no box here", None),
])
def test_last_boxed_keeps_nested_braces(text, expected):
    assert last_boxed(text) == expected


def test_marker_spans_stop_at_the_line_end():
    spans = marker_spans("Answer: 42\nbecause 6*7\nSo the final answer is: **18** dollars.\n#### 5")
    assert spans == ["42", "18** dollars.", "5"]


@pytest.mark.parametrize("text,expected", [
    # markers and their variants
    ("So 3 + 4 = 7. The answer is 7.", 7),
    ("#### 72", 72),
    ("**Answer:** 18", 18),
    ("The answer is **42**.", 42),
    ("The answer is: \n\n 42", 42),
    ("Final Answer: The final answer is $18$. I hope it is correct.", 18),
    ("Answer: 42\n\nExplanation: the answer is obvious.", 42),  # a marker with no number is passed over
    ("The answer is 5. Then 5+5=10", 5),  # the number right after the marker, not the last one
    ("So 3+4=7. Let me double check. The answer is 7. Indeed 7-0 = 7", 7),
    # boxes: the last one decides, and it must hold exactly one number
    ("I think \\boxed{5} but actually \\boxed{6}", 6),
    ("The final answer is $\\boxed{\\frac{3}{4}}$.", 0.75),
    ("\\boxed{\\dfrac{3}{4}}", 0.75),
    ("\\boxed{12 \\text{ apples}}", 12),
    ("\\boxed{x = 5}", 5),
    ("Hence \\boxed{-\\frac{3}{4}}", -0.75),
    ("Hence \\boxed{\\frac{-3}{4}}", -0.75),
    ("The answer is \\boxed{-9867630}", -9867630),
    ("Answer: \\boxed{18} dollars", 18),
    # number formats
    ("The answer is 1,234.", 1234),
    ("The answer is: 1,234,567.89", 1234567.89),
    ("Answer: $12.50", 12.5),
    ("The answer is $\\$1,234.50$.", 1234.5),
    ("So she pays €7.", 7),
    ("It costs £3.20 in total.", 3.2),
    ("He walks 5 km. The answer is 5 km.", 5),
    ("The answer is 25%.", 25),  # a percentage is its number, as GSM8K writes them
    ("That is a 25\\% increase, so the answer is 25\\%.", 25),
    ("The answer is -7.", -7),
    ("The answer is −7.", -7),  # unicode minus
    ("cost = $-5", -5),
    ("The loss is -$5.", -5),
    ("The answer is 3/4.", 0.75),
    ("The answer is .5", 0.5),
    ("The answer is 2.5e3.", 2500),
    ("The answer is 1.5 \\times 10^{3}.", 1500),
    ("The answer is 3 x 10^4", 30000),
    ("The total is $1{,}000$.", 1000),  # LaTeX digit grouping
    ("It costs 10,\\!000 dollars.", 10000),
    # no marker: the last number
    ("Step 1: 48/2 = 24. Step 2: 48+24 = 72", 72),
    ("We have 10-5 = 5 left", 5),
    ("In 2023, she had 5 cats.", 5),
    ("COVID-19 cases: 3", 3),
])
def test_extract_number(text, expected):
    assert extract_number(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", [
    "", "I do not know", "the answer is twelve", "\\boxed{2x+3}", "\\boxed{\\text{eighteen}}", "\\boxed{",
    "The answer is 1/0", "\\boxed{12 and 13}",
    "the answer is 1,23",  # not a thousands group: 1.23 written with a decimal comma, or the two values 1 and 23
])
def test_unparseable_numbers_are_none(text):
    assert extract_number(text) is None


def test_a_box_without_a_number_does_not_fall_back_to_other_numbers():
    # The model's declared answer is not a number: guessing 3 or 4 from the working would be lucky.
    assert extract_number("3 + 4 = 7, so \\boxed{\\text{seven}}") is None


@pytest.mark.parametrize("text,expected", [
    ("1,080", 1080), ("$5", 5), ("12 apples", 12), ("\\frac{1}{8}", 0.125), ("\\frac12", 0.5), ("2.5E-2", 0.025),
    ("2x+3", None), ("", None), ("1 2", None),
])
def test_parse_number_needs_exactly_one_number(text, expected):
    assert parse_number(text) == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize("answer,gold,expected", [
    (18, 18, True),
    (18.0, 18, True),
    (17, 18, False),
    (9435680551, 9435680550, False),  # the tolerance absorbs float noise, not an off-by-one on a big number
    (3244047.1, 3244047.0999999996, True),  # float noise in a GSM-Hard target
    (16.67, 50 / 3, True),  # rounded to two decimals
    (16.6667, 50 / 3, True),
    (16.7, 50 / 3, False),  # one decimal is too coarse
    (0.33, 1 / 3, True),
    (0.34, 1 / 3, False),
    (-0.0, 0.0, True),
    (None, 1, False),
    ("x", 1, False),
    (float("nan"), float("nan"), False),
    (float("inf"), float("inf"), False),
])
def test_numbers_match(answer, gold, expected):
    assert numbers_match(answer, gold) is expected


@pytest.mark.parametrize("text,expected", [
    ("Yes", True), ("no.", False), ("True", True), ("False.", False),
    ("The answer is: yes", True), ("Answer: No", False), ("The answer is **Yes**.", True),
    ("\\boxed{yes}", True), ("\\boxed{\\text{No}}", False),
    ("Yes, because there is no law against it.", True),  # "no law" is a word, not an answer
    ("There is no doubt. So yes.", True),
    ("No, he could not.", False), ("Yes it is.", True), ("No it cannot.", False),
    ("it is true that caesar had 3 children, so the answer is no.", False),
    ("I'd say no. Final answer: yes", True),  # the last marker decides
    ("Genghis had 16 children.\nSo, yes, more people are related to him.", True),
    ("The statement is false.", False),
    ("Think: llamas are small.\nThey cannot.\n", None),
])
def test_extract_yes_no(text, expected):
    assert extract_yes_no(text) is expected


@pytest.mark.parametrize("text", [
    "", "maybe", "The answer is yes or no.", "Yes and no.", "There is no evidence either way.", "\\boxed{maybe}",
    "\\boxed{yes or no}",
])
def test_ambiguous_or_missing_yes_no_is_none(text):
    assert extract_yes_no(text) is None
