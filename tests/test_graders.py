"""Grading rules that replies measured on unseen data exposed: hedges, prompt echoes, cut-off boxes,
the Minerva answer line, units with exponents and GSM-Hard rounding."""

from __future__ import annotations

import pytest

import econash
from econash_plugins.tasks.answers import extract_number, extract_yes_no
from conftest import SHARED_DATA

NUMERIC = ["gsm8k", "gsm_hard", "svamp", "arith"]
ALL = [*NUMERIC, "strategyqa", "math"]


def grade(task: str, gold, text: str):
    """(answer, correct) for ``text`` as the reply to a problem whose gold is ``gold``."""
    problem = econash.Problem(id="p", question="How many apples does Tom have?", gold=gold)
    answer, score = econash.load_task(task).grade_text(text, problem)
    return answer, score.correct


# ---------------------------------------------------------------- 1. hedged and negated answers


@pytest.mark.parametrize("text", [
    "The answer is 18 or 25.",
    "The answer is 18 and/or 25.",
    "The answer is either 18 or 25.",
    "The answer is 18 / 25?",
    "The answer is **18** or **25**.",
    "The answer is $18 or $25.",
    "The answer is 18 (or 25).",
    "The answer is 18, or maybe 25.",
    "The answer is 18, possibly 25.",
    "The answer is 18, 25.",
    "The answer is 18-25 apples.",
    "The answer is between 18 and 25.",
    "The answer is 18 to 25 apples.",
    "The answer is 18 apples or 25 apples.",
    "The answer is not 18.",
    "So the answer is 18 or 25\nbecause I am unsure.",
    "Final Answer: The final answer is $18$ or $25$. I hope it is correct.",
    "\\boxed{18} or \\boxed{25}",
    "The answer is \\boxed{18} or 25.",
    "The answer is 18 or \\boxed{25}.",
    "Either \\boxed{18} or \\boxed{25}, I am not sure.",
    "Tom has either 18 or 25 apples.",  # no marker: the last number is hedged
    "Tom has 18-25 apples.",
    "The answer isn't 18.",  # no marker ("answer isn't"): a negated last number is no answer
    "The answer is 18. Or maybe 25.",
    "The answer is \\boxed{18}. Or maybe \\boxed{25}.",
    "The answer is 18 (maybe 25).",
    "The answer is 18, 19, or 20.",
    "The answer is 12 inches = 1 foot.",  # two values, each of them "the answer"
    "The answer is 18 dollars and 50 cents.",
    "The answer is 2:30 pm.",
])
def test_a_hedged_or_negated_final_answer_is_no_answer(text):
    assert extract_number(text) is None


@pytest.mark.parametrize("text,expected", [
    ("The answer is not 18; it is 25.", 25),
    ("The answer is not 18, but 25.", 25),
    ("The answer is not 18 but 25 apples.", 25),
    ("The answer is 25, not 18.", 25),
    ("The answer is 25 (not 18).", 25),
    ("Tom has 18 apples, not 25.", 18),
    # working after the answer is not a second candidate
    ("The answer is 18 apples.", 18),
    ("The answer is $1,234.50.", 1234.5),
    ("The answer is 3/4", 0.75),
    ("The answer is 18 (since 6*3 = 18).", 18),
    ("The answer is 18 (6 bags of 3).", 18),
    ("The answer is 18, i.e. 18 dollars.", 18),
    ("The answer is 18 because 6 * 3 = 18.", 18),
    ("The answer is 18 dollars, since he earns 6 dollars per hour for 3 hours.", 18),
    ("The answer is 18, which is 7 more than 11.", 18),
    ("The answer is 18; 6 bags of 3 make 18.", 18),
    ("The answer is 18 — 6 bags of 3.", 18),
    ("The answer is: 18 (6 × 3)", 18),
    ("The answer is 18.\nThat is 6 more than 12.", 18),
    ("The answer is 18. Then 5 + 5 = 10.", 18),
    ("The answer is 6 * 3 = 18.", 18),
    ("The answer is 6 × 3 = $18.", 18),
    ("The answer is x = 18.", 18),
    ("The answer is 18 = 18.", 18),
    ("The answer is 1/2 or 0.5.", 0.5),  # one value written two ways
    ("The answer is 18 or so.", 18),
    ("The answer is 18. I hope it is correct.", 18),
    ("Final Answer: The final answer is $18$. I hope it is correct.", 18),
    ("The answer is Rs. 500.", 500),
    ("The answer is approx. 18 apples.", 18),
    ("The answer is **18**.\n\n**Check:** 6 × 3 = 18 or 25 - 7 = 18.", 18),
    ("\\boxed{18} (since 6 \\times 3 = 18)", 18),
    ("The answer is $\\boxed{18}$, which is 7 more than 11.", 18),
    ("6 \\times 3 = \\boxed{18}", 18),
    ("\\boxed{18} dollars. Then 5+5=10 or so.", 18),
    ("We get \\boxed{42} in the end, not 41", 42),
    ("First 12, then 5, so 17", 17),
    ("The answer is 18 out of 20.", 18),
    ("The answer is 18 dollars per week for 4 weeks.", 18),
    ("The answer is 18 - 6 = 12 apples.", 12),
    ("The answer is 18 / 2 = 9.", 9),
    ("The answer is 18 and not 20.", 18),
    ("The answer is 18 (rounded to the nearest whole number).", 18),
    ("The answer is 18.\n\nNote: 25 would be wrong.", 18),
])
def test_a_single_final_value_is_read(text, expected):
    assert extract_number(text) == pytest.approx(expected)


@pytest.mark.parametrize("task", ["gsm8k", "gsm_hard", "svamp"])
@pytest.mark.parametrize("text", ["The answer is 18 or 25.", "The answer is not 18; it is 25.",
                                  "The answer is either 18 or 25.", "The answer is 18 and/or 25."])
def test_hedges_get_no_credit_on_the_numeric_tasks(task, text):
    assert grade(task, 18, text)[1] is False


# ---------------------------------------------------------------- 2. the prompt's own instructions


def sample_problems(task: str, n: int = 30):
    if task == "arith":
        return econash.load_task("arith", level=2).load("test", n, 0)
    if not (SHARED_DATA / task).is_dir():
        pytest.skip(f"{SHARED_DATA / task} is absent")
    return econash.load_task(task, data=SHARED_DATA).load("test", n, 0)


PROMPTS = ["{q}\n{f}", "{q}\n\n{f}", "{q}\n\nThink step by step. {f}", "{q} {f}"]


@pytest.mark.parametrize("task", ALL)
def test_an_echo_of_the_prompt_is_no_answer(task):
    task_obj = econash.load_task(task)
    problems = sample_problems(task)
    read = [(p.id, template, task_obj.extract_answer(template.format(q=p.question, f=task_obj.answer_format(p)), p))
            for p in problems for template in PROMPTS]
    assert [r for r in read if r[2] is not None] == []


@pytest.mark.parametrize("task,gold,answer", [
    ("gsm8k", 18, "The answer is 18."), ("gsm_hard", 18.0, "The answer is 18."), ("svamp", 18.0, "The answer is 18."),
    ("arith", 18, "The answer is 18."), ("strategyqa", False, "The answer is no."),
    ("strategyqa", True, "The answer is yes."), ("math", "\\frac{3}{4}", "So $x = \\boxed{\\frac{3}{4}}$."),
    ("math", "5", "The answer is $\\boxed{5}$."),
])
def test_a_reply_that_quotes_the_instruction_is_graded_on_its_own_answer(task, gold, answer):
    task_obj = econash.load_task(task)
    problem = econash.Problem(id="p", question="How many apples does Tom have?", gold=gold)
    fmt = task_obj.answer_format(problem)
    for text in [f"I must: {fmt}\nLet me work. {answer}", f"{answer}\n(As asked: {fmt})",
                 f"{problem.question}\n{fmt}\n\n{answer}", f"{answer} {fmt.lower()}"]:
        assert task_obj.grade_text(text, problem)[1].correct is True, text


def test_strategyqa_reads_no_answer_from_its_own_instruction():
    problem = econash.Problem(id="p", question="Is water wet?", gold=False)
    task = econash.load_task("strategyqa")
    assert task.extract_answer("End with 'The answer is yes.' or 'The answer is no.'", problem) is None
    assert task.extract_answer("Is water wet?\nEnd with 'The answer is yes.' or 'The answer is no.'", problem) is None
    # the format's alternatives quoted on their own are an echo too
    assert task.extract_answer("Yes. I was told to write 'The answer is yes.' or 'The answer is no.'", problem) is True


def test_math_reads_no_answer_from_its_own_example():
    problem = econash.Problem(id="p", question="What is 6/8 in lowest terms?", gold="\\frac{3}{4}")
    task = econash.load_task("math")
    echo = "End with your final answer in LaTeX as \\boxed{ANSWER}, for example \\boxed{\\frac{3}{4}}."
    assert task.extract_answer(echo, problem) is None
    assert task.extract_answer("The format is \\boxed{ANSWER}, for example \\boxed{\\frac{3}{4}}.", problem) is None


# ---------------------------------------------------------------- 3. cut-off boxes


@pytest.mark.parametrize("text", [
    "the total is \\boxed{12",
    "The answer is \\boxed{12",
    "The answer is 12. So \\boxed{12",
    "\\boxed{12} and later a cut-off \\boxed{1",
    "\\boxed{\\frac{1}{2}",
    "Answer: 12\n\\boxed{\\text{12 apples}",
])
@pytest.mark.parametrize("task", [*NUMERIC, "math"])
def test_a_cut_off_box_is_no_answer(task, text):
    gold = "12" if task == "math" else 12
    assert grade(task, gold, text) == (None, False)


@pytest.mark.parametrize("text", ["The answer is yes. \\boxed{ye", "\\boxed{yes} then \\boxed{\\text{yes}",
                                  "The answer is \\boxed{yes"])
def test_a_cut_off_box_is_no_yes_no_answer(text):
    assert extract_yes_no(text) is None
    assert grade("strategyqa", True, text) == (None, False)


def test_a_closed_box_after_an_unclosed_one_still_counts():
    assert extract_number("we try \\boxed{1 then fix it: \\boxed{12}") == 12


# ---------------------------------------------------------------- 4. the Minerva answer line on MATH


@pytest.mark.parametrize("gold,text", [
    ("5", "So x = 5.\nFinal Answer: The final answer is $5$. I hope it is correct."),
    ("\\frac{3}{4}", "Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct."),
    ("(0,1]", "Final Answer: The final answer is $(0,1]$. I hope it is correct."),
    ("5", "Final Answer: The final answer is 5. I hope it is correct."),
    ("5", "Final Answer: The final answer is $5$"),
    ("12", "Final Answer: The final answer is $7$. I hope it is correct.\nWait, recheck.\n"
           "Final Answer: The final answer is $12$. I hope it is correct."),
    ("\\sqrt{2}", "The final answer is $\\sqrt{2}$.\n"),
    ("5", "The answer is $5$ because 2 + 3 = 5."),
])
def test_math_reads_the_minerva_answer_line(gold, text):
    assert grade("math", gold, text)[1] is True


def test_math_minerva_line_with_the_wrong_answer_is_wrong():
    assert grade("math", "5", "Final Answer: The final answer is $6$. I hope it is correct.")[1] is False


# ---------------------------------------------------------------- 5. units with exponents


@pytest.mark.parametrize("text,expected", [
    ("\\boxed{12 \\text{ m}^2}", 12),
    ("\\boxed{12\\text{ cm}^{3}}", 12),
    ("\\boxed{12 \\mbox{ m}^2}", 12),
    ("\\boxed{12\\mathrm{m}^2}", 12),
    ("The area is 12 m^2.", 12),
    ("The answer is 12 cm^3.", 12),
    ("The volume is 12\\text{ cm}^{3}.", 12),
    ("The angle is 90^\\circ.", 90),
    ("\\boxed{90^{\\circ}}", 90),
    ("The answer is 90^\\circ C", 90),
    ("The answer is 1.5 \\times 10^{3}.", 1500),
])
def test_units_with_exponents_are_ignored(text, expected):
    assert extract_number(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["\\boxed{2x^2}", "\\boxed{3m^2}", "\\boxed{12 x^{2}}"])
def test_a_variable_with_an_exponent_is_not_a_unit(text):
    assert extract_number(text) is None


@pytest.mark.parametrize("task", NUMERIC)
def test_a_boxed_area_is_graded_right(task):
    assert grade(task, 12, "\\boxed{12 \\text{ m}^2}")[1] is True


def test_math_grades_a_boxed_area_by_its_number():
    assert grade("math", "12", "\\boxed{12 \\text{ m}^2}")[1] is True


# ---------------------------------------------------------------- 6. GSM-Hard: PAL's tolerance and rounding


@pytest.mark.parametrize("reply,gold,correct", [
    ("12.30", 12.3049, True),  # the gold rounded to the reply's two written decimals
    ("12.31", 12.3051, True),
    ("12.31", 12.3049, False),
    ("12.3", 12.3049, False),  # one decimal is too coarse, and 0.0049 is over PAL's 1e-3
    ("12.305", 12.3049, True),  # within 1e-3
    ("12", 12.0004, True),
    ("0.00", 0.0004, True),  # within 1e-3 of the gold
    ("0.00", 0.0016791648, False),  # zero is not "the gold rounded": only the tolerance could accept it
    ("0.0017", 0.0016791648, True),
    ("16.67", 50 / 3, True),
    ("16.7", 50 / 3, False),
    ("14,053,029.67", 14053029.666666666, True),
    ("14053030", 14053029.666666666, False),
    ("9435680551", 9435680550.0, False),
    ("3244047.1", 3244047.0999999996, True),
])
def test_gsm_hard_compares_values_with_pal_tolerance_or_written_rounding(reply, gold, correct):
    assert grade("gsm_hard", gold, f"The answer is {reply}.")[1] is correct
    assert grade("gsm_hard", gold, f"\\boxed{{{reply}}}")[1] is correct


def test_gsm_hard_rounding_survives_a_plain_float_answer():
    # Answers compared with one another (majority vote) or read back as plain floats keep the rule.
    task = econash.load_task("gsm_hard")
    problem = econash.Problem(id="p", question="q", gold=12.3049)
    assert task.score(12.3, problem).correct is False
    assert task.score(12.305, problem).correct is True
