"""The offline `arith` task: deterministic, disjoint splits, exact answers, robust extraction."""

from __future__ import annotations

import re

import pytest

import econash
from econash.errors import ConfigError
from econash_plugins.tasks.arith import ArithTask, extract_number


@pytest.mark.parametrize("level", [1, 2, 3])
def test_splits_are_seeded_and_disjoint(level):
    task = ArithTask(ArithTask.Options(level=level))
    first, again = task.load("test", 30, seed=3), task.load("test", 30, seed=3)
    assert [p.question for p in first] == [p.question for p in again]
    other = task.load("test", 30, seed=4)
    assert [p.question for p in first] != [p.question for p in other]
    train = task.load("train", 200, seed=3)
    assert not {p.question for p in first} & {p.question for p in train}
    assert len({p.id for p in train}) == 200
    assert all(isinstance(p.gold, int) and p.gold >= 0 for p in first + train)


def test_level3_answers_are_exact():
    for problem in ArithTask(ArithTask.Options(level=3)).load("test", 50, seed=0):
        assert "shares the rest equally" in problem.question and problem.gold > 0


@pytest.mark.parametrize("text,expected", [
    ("So 3 + 4 = 7. The answer is 7.", 7.0),
    ("The answer is: 1,234", 1234.0),
    ("We get \\boxed{42} in the end, not 41", 42.0),
    ("#### 15", 15.0),
    ("First 12, then 5, so 17", 17.0),
    ("The answer is -3.", -3.0),
    ("The answer is $12.50.", 12.5),
    ("I do not know", None),
    ("", None),
])
def test_extraction(text, expected):
    assert extract_number(text) == expected


def test_unparseable_is_wrong_never_right():
    task = ArithTask(ArithTask.Options())
    problem = task.load("test", 1, seed=0)[0]
    answer, score = task.grade_text("no numbers here", problem)
    assert answer is None and score.correct is False and score.score == 0.0
    _, right = task.grade_text(f"The answer is {problem.gold}.", problem)
    assert right.correct is True


def test_arith_refuses_data_and_bad_level():
    with pytest.raises(ConfigError, match="takes no --data"):
        ArithTask(ArithTask.Options(), data="x")
    with pytest.raises(ConfigError, match="level"):
        econash.load_task("arith", level=9)


def test_level0_is_the_default_and_its_splits_partition_a_small_space():
    task = ArithTask(ArithTask.Options())
    assert task.level == 0
    test = task.load("test", 30, seed=0)
    train = task.load("train", 120, seed=0)
    assert not {p.question for p in test} & {p.question for p in train}
    assert all(p.gold == sum(int(x) for x in re.findall(r"\d+", p.question)) for p in test + train)
    other_seed = ArithTask(ArithTask.Options()).load("train", 120, seed=1)
    assert not {p.question for p in other_seed} & {p.question for p in test}  # no seed leaks test questions
    assert len(task.load("test", 100, seed=0)) == 100  # enough for a 100-question evaluation
    with pytest.raises(ConfigError, match="cannot make 500 distinct test problems"):
        task.load("test", 500, seed=0)


@pytest.mark.parametrize("level,split,words", [
    (0, "test", "it has 196 test questions"),  # the whole level-0 test split, counted exactly
    (0, "train", "train questions"),
    (3, "test", "at most 50,000 test questions"),
])
def test_a_size_beyond_the_split_is_answered_at_once(level, split, words):
    # Asking for a billion questions used to search forever (and 100,000 took 13 s to fail).
    with pytest.raises(ConfigError, match=f"cannot make 1000000000 distinct {split} problems: .*{words}"):
        ArithTask(ArithTask.Options(level=level)).load(split, 1_000_000_000, seed=0)


def test_the_cli_answers_a_huge_test_size_with_one_sentence(tmp_path):
    from conftest import run_cli

    result = run_cli("run", "--backend", "fake", "--method", "cot", "--test-size", "1000000000", "--display", "none",
                     "--run-dir", str(tmp_path / "run"), timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "it has 196 test questions" in result.stderr and not (tmp_path / "run").exists()
