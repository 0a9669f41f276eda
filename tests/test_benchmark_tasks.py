"""The benchmark tasks (gsm8k, gsm_hard, svamp, math, strategyqa): loading, ids, graders, full-file gold checks."""

from __future__ import annotations

import json
import threading
import time

import pytest

import econash
from econash.errors import ConfigError, DataError
from econash_plugins.tasks.math import equivalent
from conftest import SHARED_DATA, run_cli

FULL_FILES = {  # task -> (file, problems it yields)
    "gsm8k": ("gsm8k/train.jsonl", 7473),
    "gsm_hard": ("gsm_hard/dev.jsonl", 200),
    "svamp": ("svamp/train.jsonl", 700),
    "math": ("math/train.jsonl", 7498),  # 7500 records, two of which end in an empty \boxed{}
    "strategyqa": ("strategyqa/train.jsonl", 1800),
}


def shared(task: str):
    path = SHARED_DATA / FULL_FILES[task][0]
    if not path.is_file():
        pytest.skip(f"{path} is absent; the full-file checks need the shared benchmark data")
    return path


def write_jsonl(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def all_problems(task: str, **options):
    """Every problem of the shared file (test_fraction=1 holds all of it out as test)."""
    shared(task)
    return econash.load_task(task, data=SHARED_DATA, test_fraction=1.0, **options).load("test", None, 0)


# ---------------------------------------------------------------- gold answers graded against themselves


def as_model_output(task: str, gold, i: int) -> str:
    """The gold answer written the ways models write it, a different way for each problem."""
    if task == "strategyqa":
        word = "yes" if gold else "no"
        return ["The answer is {w}.", "Answer: {W}", "So, {w}.", "Thus the final answer is: **{W}**"][i % 4].format(
            w=word, W=word.capitalize())
    if task == "math":
        return f"We simplify step by step.\nThe final answer is $\\boxed{{{gold}}}$."
    value = int(gold) if float(gold).is_integer() else gold
    return [f"So the total is {value:,}.\nThe answer is {value:,}.", f"#### {value}", f"Answer: \\boxed{{{value}}}",
            f"She earns ${value:,} in total. The answer is ${value:,}."][i % 4]


@pytest.mark.parametrize("task", sorted(FULL_FILES))
def test_gold_answers_score_100_percent_over_the_full_file(task):
    problems = all_problems(task)
    assert len(problems) == FULL_FILES[task][1]
    assert len({p.id for p in problems}) == len(problems)
    started = time.perf_counter()
    task_obj = econash.load_task(task, data=SHARED_DATA)
    wrong = [(p.id, p.gold) for i, p in enumerate(problems)
             if not task_obj.grade_text(as_model_output(task, p.gold, i), p)[1].correct]
    assert wrong == [], f"{len(wrong)} gold answers graded wrong, e.g. {wrong[:5]}"
    assert time.perf_counter() - started < 60


def reference_replies(task: str, problems) -> list[str]:
    """The data's own worked solutions where it has them (GSM8K's answer text, MATH's solution), else
    "The answer is {gold}."."""
    if task == "gsm8k":
        return [p.metadata["solution"] for p in problems]
    if task == "math":
        rows = [json.loads(line) for line in (SHARED_DATA / FULL_FILES[task][0]).read_text().splitlines()]
        solutions = {f"math-{r['unique_id'].removesuffix('.json').replace('/', '-')}": r["solution"] for r in rows}
        return [solutions[p.id] for p in problems]
    return [f"The answer is {p.gold}." for p in problems]


@pytest.mark.parametrize("task", sorted(FULL_FILES))
def test_reference_solutions_score_100_percent_and_a_prompt_echo_scores_nothing(task):
    problems = all_problems(task)
    task_obj = econash.load_task(task, data=SHARED_DATA)
    prompts = [f"{p.question}\n\nThink step by step. {task_obj.answer_format(p)}" for p in problems]
    replies = reference_replies(task, problems)
    wrong = [p.id for p, reply in zip(problems, replies) if not task_obj.grade_text(reply, p)[1].correct]
    assert wrong == [], f"{len(wrong)} reference solutions graded wrong, e.g. {wrong[:5]}"
    after_echo = [p.id for p, prompt, reply in zip(problems, prompts, replies)
                  if not task_obj.grade_text(f"{prompt}\n{reply}", p)[1].correct]
    assert after_echo == []
    answered = [p.id for p, prompt in zip(problems, prompts) if task_obj.extract_answer(prompt, p) is not None]
    assert answered == []


@pytest.mark.parametrize("task", ["gsm8k", "gsm_hard", "svamp", "strategyqa"])
def test_a_wrong_answer_is_graded_wrong_over_the_full_file(task):
    problems = all_problems(task)
    task_obj = econash.load_task(task, data=SHARED_DATA)
    off = [not p.gold if task == "strategyqa" else p.gold + 1 for p in problems]
    right = [p.id for i, (p, gold) in enumerate(zip(problems, off))
             if task_obj.grade_text(as_model_output(task, gold, i), p)[1].correct]
    assert right == []


MATH_SAMPLE = 300


def math_verify_unconfirmed(problems):
    """Gold answers that math-verify itself (no exact-string shortcut) does not find equal to themselves."""
    return [p.gold for p in problems if not equivalent(p.gold, p.gold, shortcut=False)]


def test_math_verify_confirms_a_sample_of_gold_answers():
    problems = all_problems("math")[:MATH_SAMPLE]
    assert math_verify_unconfirmed(problems) == []


@pytest.mark.slow
def test_math_verify_confirms_every_gold_answer():  # ~45 s of CPU: two parses and a verify per problem
    assert math_verify_unconfirmed(all_problems("math")) == []


def test_math_rejects_other_problems_answers():
    problems = all_problems("math")[:101]
    pairs = [(p.gold, q.gold) for p, q in zip(problems, problems[1:])]
    # Each answer against the next problem's: none of these 100 pairs happen to be equal.
    assert [pair for pair in pairs if equivalent(*pair)] == []


def test_math_verify_confirms_equal_answers_outside_the_main_thread():
    # Grading from a worker thread runs math-verify without signal.alarm (timeout None), which needs
    # math-verify 0.8; 0.7 raised inside and every such answer counted as wrong.
    pairs = [("\\frac{1}{2}", "0.5"), ("2\\sqrt{2}", "\\sqrt{8}")]
    verdicts: list[bool] = []
    worker = threading.Thread(target=lambda: verdicts.extend(equivalent(a, b) for a, b in pairs))
    worker.start()
    worker.join()
    assert verdicts == [True, True]


# ---------------------------------------------------------------- loading and ids


def test_ids_are_stable_and_follow_the_source():
    shared("gsm8k")
    first = json.loads((SHARED_DATA / "gsm8k/train.jsonl").read_text().splitlines()[0])
    problems = {p.id: p for p in all_problems("gsm8k")}
    assert problems["gsm8k-train-0"].question == first["question"] and problems["gsm8k-train-0"].gold == 72
    svamp = {p.id: p for p in all_problems("svamp")}
    assert svamp["svamp-chal-1"].question == ("Each pack of dvds costs 76 dollars. If there is a discount of 25 "
                                              "dollars on each pack How much do you have to pay to buy each pack?")
    assert svamp["svamp-chal-1"].gold == 51.0
    math = {p.id: p for p in all_problems("math")}
    assert math["math-train-algebra-0"].gold == "0" and math["math-train-algebra-0"].metadata == {
        "level": 5, "type": "Algebra"}
    strategy = {p.id: p for p in all_problems("strategyqa")}
    assert strategy["strategyqa-b8677742616fef051f00"].gold is True
    hard = all_problems("gsm_hard")
    assert {p.id for p in hard} == {f"gsm_hard-dev-{i}" for i in range(200)}


@pytest.mark.parametrize("task,test_size", [("gsm8k", 1495), ("svamp", 140), ("gsm_hard", 100),
                                            ("strategyqa", 360), ("math", 1500)])
def test_default_splits_are_disjoint_and_seeded(task, test_size):
    shared(task)
    task_obj = econash.load_task(task, data=SHARED_DATA)
    test, train = task_obj.load("test", None, 0), task_obj.load("train", None, 0)
    empty_boxes = 2 if task == "math" else 0
    assert abs(len(test) - test_size) <= empty_boxes
    assert len(test) + len(train) == FULL_FILES[task][1]
    assert not {p.id for p in test} & {p.id for p in train}
    again = econash.load_task(task, data=SHARED_DATA).load("test", 10, 0)
    assert [p.id for p in again] == [p.id for p in test[:10]]
    other_seed = task_obj.load("test", None, 1)
    assert [p.id for p in other_seed] != [p.id for p in test] and {p.id for p in other_seed} == {p.id for p in test}


def test_data_may_be_the_file_the_folder_or_the_task_folder():
    path = shared("svamp")
    ids = [p.id for p in econash.load_task("svamp", data=SHARED_DATA).load("test", 5, 3)]
    assert [p.id for p in econash.load_task("svamp", data=path.parent).load("test", 5, 3)] == ids
    assert [p.id for p in econash.load_task("svamp", data=path).load("test", 5, 3)] == ids


def test_math_filters_by_level_and_type():
    problems = all_problems("math", levels=[1, 2], types=["algebra", "Number Theory"])
    assert problems and {p.metadata["level"] for p in problems} == {1, 2}
    assert {p.metadata["type"] for p in problems} == {"Algebra", "Number Theory"}
    with pytest.raises(ConfigError, match="choose from: Algebra"):
        econash.load_task("math", types=["Calculus"])
    with pytest.raises(ConfigError, match="between 1 and 5"):
        econash.load_task("math", levels=[0])


def test_a_gsm8k_solution_without_its_final_marker_names_the_line(tmp_path):
    write_jsonl(tmp_path / "gsm8k" / "train.jsonl", [{"question": "a?", "answer": "#### 1,080"},
                                                     {"question": "b?", "answer": "it is 5"}])
    with pytest.raises(DataError, match=r"train.jsonl line 2 has no number after its final '####'"):
        econash.load_task("gsm8k", data=tmp_path).load("test", 1, 0)


def test_local_files_with_hub_style_fields(tmp_path):
    write_jsonl(tmp_path / "gsm8k" / "train.jsonl", [{"question": " q? ", "answer": "x <<2*3=6>>6\n#### 1,080"}])
    write_jsonl(tmp_path / "gsm8k" / "test.jsonl", [{"question": "t?", "answer": "#### -4"}])
    gsm = econash.load_task("gsm8k", data=tmp_path)
    assert [(p.id, p.question, p.gold) for p in gsm.load("train", None, 0)] == [("gsm8k-train-0", "q?", 1080)]
    assert [(p.id, p.gold) for p in gsm.load("test", None, 0)] == [("gsm8k-test-0", -4)]
    write_jsonl(tmp_path / "strategyqa" / "test.jsonl", [{"qid": "a", "question": "q?", "answer": "Yes"},
                                                         {"question": "r?", "answer": False}])
    strategy = econash.load_task("strategyqa", data=tmp_path).load("test", None, 0)
    assert sorted((p.id, p.gold) for p in strategy) == [("strategyqa-a", True), ("strategyqa-test-1", False)]
    write_jsonl(tmp_path / "bad" / "strategyqa" / "test.jsonl", [{"question": "q?", "answer": "maybe"}])
    with pytest.raises(DataError, match="line 1 has an 'answer' that is neither true nor false"):
        econash.load_task("strategyqa", data=tmp_path / "bad").load("test", None, 0)


# ---------------------------------------------------------------- graders on tricky output


def problem_of(task: str, gold):
    return econash.Problem(id="p", question="q", gold=gold)


@pytest.mark.parametrize("task,gold,text,correct", [
    ("gsm8k", 1080, "The total is 1,080 dollars.\nThe answer is $1,080.", True),
    ("gsm8k", 1080, "The answer is 1,079.", False),
    ("gsm8k", 18, "She makes 9 * 2 = $18 every day.", True),
    ("gsm8k", 18, "I am not sure.", False),
    ("gsm_hard", 14053029.666666666, "The answer is 14,053,029.67.", True),
    ("gsm_hard", 14053029.666666666, "The answer is 14053030.", False),
    ("gsm_hard", -9867630.0, "She loses money: the answer is -9867630.", True),
    ("gsm_hard", 0.0016791648, "The answer is 0.0016791648", True),
    ("svamp", 51.0, "76 - 25 = 51. The answer is 51.", True),
    ("strategyqa", True, "Genghis Khan had 16 children, so yes.", True),
    ("strategyqa", True, "The answer is no.", False),
    ("strategyqa", False, "The answer is yes or no.", False),
    ("math", "\\frac{1}{2}", "So $x = \\boxed{0.5}$.", True),
    ("math", "\\frac12", "The answer is $\\boxed{\\dfrac{1}{2}}$", True),
    ("math", "2\\sqrt{3}", "\\boxed{\\sqrt{12}}", True),
    ("math", "(0,1]", "\\boxed{(0, 1]}", True),
    ("math", "(0,1]", "\\boxed{[0,1]}", False),
    ("math", "\\text{Evelyn}", "The answer is \\boxed{\\text{Evelyn}}.", True),
    ("math", "8+4i", "\\boxed{4i + 8}", True),
    ("math", "5", "\\boxed{x = 5}", True),
    ("math", "5", "The answer is $5$.", True),  # no box: the marker's line
    ("math", "5", "\\boxed{}", False),
    ("math", "5", "no answer given", False),
])
def test_graders_on_model_output(task, gold, text, correct):
    task_obj = econash.load_task(task)
    answer, score = task_obj.grade_text(text, problem_of(task, gold))
    assert score.correct is correct and score.score == (1.0 if correct else 0.0)
    if not correct and answer is not None:
        assert task_obj.score(answer, problem_of(task, gold)).correct is False


@pytest.mark.parametrize("task,expected", [
    ("gsm8k", "The answer is N."), ("gsm_hard", "The answer is N."), ("svamp", "The answer is N."),
    ("math", "\\boxed{ANSWER}"), ("strategyqa", "'The answer is yes.' or 'The answer is no.'"),
])
def test_answer_format_tells_the_model_how_to_end(task, expected):
    assert expected in econash.load_task(task).answer_format(problem_of(task, 1))


def test_list_tasks_shows_all_five_with_their_docstrings():
    result = run_cli("list", "tasks", "--json")
    assert result.returncode == 0, result.stderr
    listed = {row["name"]: row["description"] for row in json.loads(result.stdout)}
    for name in FULL_FILES:
        task_class = type(econash.load_task(name))
        assert listed[name] == task_class.__doc__.splitlines()[0] and listed[name]
    assert listed["gsm8k"].startswith("GSM8K grade-school math")
    assert listed["math"].startswith("Hendrycks MATH")


def test_run_gsm8k_end_to_end_on_the_fake_backend(tmp_path):
    shared("gsm8k")
    golds = [p.gold for p in econash.load_task("gsm8k", data=SHARED_DATA).load("test", 3, 0)]
    script = [f"Adding up gives {golds[0]:,}.\nThe answer is {golds[0]:,}.", f"The answer is {golds[1] + 1}.",
              f"#### {golds[2]}"]
    run_dir = tmp_path / "run"
    result = run_cli("run", "--backend", "fake", "--method", "cot", "--task", "gsm8k", "--data", str(SHARED_DATA),
                     "--test-size", "3", "--display", "none", "--no-cache", "--concurrency", "1",
                     "--run-dir", str(run_dir), "-B", f"backend_options.script={json.dumps(script)}")
    assert result.returncode == 0, result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["task"] == "gsm8k" and summary["n_test"] == 3
    assert summary["accuracy"] == pytest.approx(2 / 3)
    results = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert [r["gold"] for r in results] == golds
    assert [r["correct"] for r in results] == [True, False, True]
