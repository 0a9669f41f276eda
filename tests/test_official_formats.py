"""Benchmark files under their official names and layouts: which split each one is, and that it loads.

The fixtures are tiny copies of each release's layout, written under tmp_path: SVAMP.json
(arkilpatel/SVAMP), strategyqa_train.json and strategyqa_test.json (the StrategyQA release),
gsmhardv2.jsonl (PAL), math500_test.jsonl and MATH-500's test.jsonl (HuggingFaceH4/MATH-500), and
the Hendrycks MATH folders (MATH/<split>/<subject>/<n>.json).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import econash
from conftest import run_cli
from econash.errors import DataError

LEAK = "training on it would leak into the evaluation"


@pytest.fixture(autouse=True)
def no_data_env(monkeypatch):
    monkeypatch.delenv("ECONASH_DATA_DIR", raising=False)


def write_json(path: Path, value) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1))
    return path


def write_jsonl(path: Path, records) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def load(task: str, data: Path, split: str = "test", **options):
    return econash.load_task(task, data=data, **options).load(split, None, 0)


# ---------------------------------------------------------------- SVAMP.json: the 1,000-problem test set


def svamp_records(first: int, last: int) -> list[dict]:
    return [{"ID": f"chal-{i}", "Body": f"Jack had {i} apples.", "Question": "How many apples does Jack have?",
             "Equation": f"( {i}.0 )", "Answer": float(i), "Type": "Subtraction"} for i in range(first, last + 1)]


def test_svamp_json_is_the_test_set_given_directly_or_in_a_folder(tmp_path):
    path = write_json(tmp_path / "svamp" / "SVAMP.json", svamp_records(1, 10))
    for data in (path, path.parent, tmp_path):
        problems = load("svamp", data)
        assert sorted(p.id for p in problems) == sorted(f"svamp-chal-{i}" for i in range(1, 11)), data
        with pytest.raises(DataError, match=LEAK):
            load("svamp", data, "train")


def test_a_train_file_beside_svamp_json_never_trains_on_its_questions(tmp_path):
    write_json(tmp_path / "svamp" / "SVAMP.json", svamp_records(1, 10))
    write_jsonl(tmp_path / "svamp" / "train.jsonl", svamp_records(8, 14))  # chal-8..10 are in both
    assert len(load("svamp", tmp_path)) == 10  # the test set whole
    assert sorted(p.id for p in load("svamp", tmp_path, "train")) == [f"svamp-chal-{i}" for i in range(11, 15)]
    write_jsonl(tmp_path / "svamp" / "train.jsonl", svamp_records(1, 7))  # all of it is test
    with pytest.raises(DataError, match=r"Every question of .*train\.jsonl is also in .*SVAMP\.json"):
        load("svamp", tmp_path, "train")


# ---------------------------------------------------------------- StrategyQA's release files


def strategy_records(n: int, answers: bool = True) -> list[dict]:
    records = []
    for i in range(n):
        record = {"qid": f"q{i:04d}", "term": "Term", "description": "a thing", "question": f"Is {i} even?",
                  "facts": ["a fact"], "decomposition": ["step?"], "evidence": [[["no_evidence"]]]}
        if answers:
            record["answer"] = i % 2 == 0
        records.append(record)
    return records


def test_strategyqa_train_json_is_found_in_a_folder_and_split(tmp_path):
    write_json(tmp_path / "strategyqa" / "strategyqa_train.json", strategy_records(20))
    test, train = load("strategyqa", tmp_path), load("strategyqa", tmp_path, "train")
    assert len(test) == 4 and len(train) == 16 and not {p.id for p in test} & {p.id for p in train}
    assert {p.id for p in test + train} == {f"strategyqa-q{i:04d}" for i in range(20)}
    # The unlabelled official test file beside it is left alone.
    write_json(tmp_path / "strategyqa" / "strategyqa_test.json", strategy_records(5, answers=False))
    assert [p.id for p in load("strategyqa", tmp_path)] == [p.id for p in test]


def test_the_unlabelled_strategyqa_test_file_is_refused_in_one_sentence(tmp_path):
    path = write_json(tmp_path / "strategyqa" / "strategyqa_test.json", strategy_records(5, answers=False))
    for data in (path, tmp_path):
        with pytest.raises(DataError) as info:
            load("strategyqa", data)
        message = str(info.value)
        assert str(path) in message and "no answers to grade against" in message
        assert "strategyqa_train.json" in message and message.count(". ") == 0


# ---------------------------------------------------------------- gsmhardv2.jsonl: GSM-Hard's only split


def hard_records(n: int, offset: int = 0) -> list[dict]:
    return [{"input": f"Janet has {i + offset} ducks. How many?", "code": "def solution():\n    return 1",
             "target": float(i + offset)} for i in range(n)]


def test_gsmhardv2_is_a_test_set(tmp_path):
    path = write_jsonl(tmp_path / "gsm_hard" / "gsmhardv2.jsonl", hard_records(12))
    for data in (path, tmp_path):
        problems = load("gsm_hard", data)
        assert sorted(p.id for p in problems) == sorted(f"gsm_hard-gsmhardv2-{i}" for i in range(12)), data
        with pytest.raises(DataError, match=LEAK):
            load("gsm_hard", data, "train")


def test_the_dev_file_beside_gsmhardv2_trains_only_on_other_questions(tmp_path):
    write_jsonl(tmp_path / "gsm_hard" / "gsmhardv2.jsonl", hard_records(12))
    write_jsonl(tmp_path / "gsm_hard" / "dev.jsonl", hard_records(6, offset=9))  # 9..11 are test questions
    assert len(load("gsm_hard", tmp_path)) == 12
    assert sorted(p.gold for p in load("gsm_hard", tmp_path, "train")) == [12.0, 13.0, 14.0]


# ---------------------------------------------------------------- MATH-500 (HuggingFaceH4/MATH-500)

SUBJECTS = {"Precalculus": "precalculus", "Counting & Probability": "counting_and_probability",
            "Intermediate Algebra": "intermediate_algebra", "Number Theory": "number_theory"}


def math500_records() -> list[dict]:
    return [{"problem": f"Compute {i}.", "solution": f"It is $\\boxed{{{i}}}$.", "answer": f"\\frac{{{i}}}{{1}}",
             "subject": subject, "level": 1 + i % 5, "unique_id": f"test/{folder}/{100 + i}.json"}
            for i, (subject, folder) in enumerate(list(SUBJECTS.items()) * 2)]


@pytest.mark.parametrize("name", ["math500_test.jsonl", "test.jsonl"])
def test_math500_is_a_test_set_with_subjects_levels_and_answers(tmp_path, name):
    path = write_jsonl(tmp_path / "MATH-500" / name, math500_records())
    for data in (path, path.parent):
        problems = {p.id: p for p in load("math", data)}
        assert len(problems) == 8, data
        first = problems["math-test-precalculus-100"]
        assert first.gold == "\\frac{0}{1}" and first.metadata == {"level": 1, "type": "Precalculus"}
        with pytest.raises(DataError, match=LEAK):
            load("math", data, "train")
    counting = load("math", path, types=["Counting & Probability", "number theory"], levels=[2, 3, 4])
    assert sorted(p.id for p in counting) == ["math-test-counting_and_probability-101",
                                              "math-test-number_theory-103", "math-test-number_theory-107"]


def test_math500_beside_the_math_train_file(tmp_path):
    write_jsonl(tmp_path / "math" / "math500_test.jsonl", math500_records())
    write_jsonl(tmp_path / "math" / "train.jsonl", [
        {"problem": "1+1?", "level": "Level 1", "type": "Algebra", "solution": "$\\boxed{2}$",
         "unique_id": "train/algebra/7.json"}])
    assert len(load("math", tmp_path)) == 8
    assert [p.id for p in load("math", tmp_path, "train")] == ["math-train-algebra-7"]


# ---------------------------------------------------------------- the Hendrycks MATH folders


def math_problem(subject: str, number: int, level: int = 3) -> dict:
    return {"problem": f"{subject} problem {number}?", "level": f"Level {level}", "type": subject,
            "solution": f"So the answer is $\\boxed{{{number}}}$."}


def write_math_folders(root: Path) -> Path:
    for split, subject, folder, numbers in [("train", "Algebra", "algebra", (1, 2, 10)),
                                            ("train", "Geometry", "geometry", (3,)),
                                            ("test", "Geometry", "geometry", (12, 4)),
                                            ("test", "Counting & Probability", "counting_and_probability", (5,))]:
        for number in numbers:
            write_json(root / split / folder / f"{number}.json", math_problem(subject, number, 1 + number % 5))
    return root


def test_the_math_folder_layout_loads_train_from_train_and_test_from_test(tmp_path):
    math = write_math_folders(tmp_path / "MATH")
    (math / "test" / "geometry" / ".DS_Store").write_text("junk")
    for data in (math, tmp_path):
        test = {p.id: p for p in load("math", data)}
        assert sorted(test) == ["math-test-counting_and_probability-5", "math-test-geometry-12",
                                "math-test-geometry-4"], data
        assert test["math-test-geometry-12"].gold == "12"
        assert test["math-test-geometry-12"].metadata == {"level": 3, "type": "Geometry"}
        train = load("math", data, "train")
        assert sorted(p.id for p in train) == ["math-train-algebra-1", "math-train-algebra-10",
                                               "math-train-algebra-2", "math-train-geometry-3"]
    probability = load("math", math, types=["counting & probability"])
    assert [p.id for p in probability] == ["math-test-counting_and_probability-5"]


def test_a_single_math_split_folder_loads_as_that_split(tmp_path):
    math = write_math_folders(tmp_path / "MATH")
    assert len(load("math", math / "test")) == 3
    with pytest.raises(DataError, match=LEAK):
        load("math", math / "test", "train")
    # MATH/train alone is a train source: part of it is held out as test.
    test, train = load("math", math / "train"), load("math", math / "train", "train")
    assert len(test) == 1 and len(train) == 3 and all(p.id.startswith("math-train-") for p in test + train)


def test_a_malformed_math_problem_file_is_one_sentence_naming_it(tmp_path):
    math = write_math_folders(tmp_path / "MATH")
    broken = math / "test" / "geometry" / "4.json"
    broken.write_text('{"problem": "x?", "level": "Level 1",\n "solution": ')
    with pytest.raises(DataError) as info:
        load("math", math)
    assert str(info.value) == f"Data file {broken} is not valid JSON (line 2); fix or remove that file."
    broken.write_text("[1, 2]")
    with pytest.raises(DataError, match=f"Data file {broken} is not a JSON object; fix or remove that file"):
        load("math", math)
    broken.write_text('{"problem": "x?", "level": "Level 1", "type": "Geometry", "solution": "none"}')
    with pytest.raises(DataError, match=f"Data file {broken} has no .*; fix or remove that record"):
        load("math", math)


def test_cli_errors_for_math_folders_are_one_sentence(tmp_path):
    math = write_math_folders(tmp_path / "MATH")
    broken = math / "train" / "algebra" / "2.json"
    broken.write_text("{oops")
    empty = tmp_path / "nothing"
    (empty / "notes").mkdir(parents=True)
    (empty / "notes" / "a.txt").write_text("hello")
    for data, expected in [(math, f"Data file {broken} is not valid JSON (line 1); fix or remove that file."),
                           (empty, f"No math data in {empty}: it has no train.jsonl or test.jsonl")]:
        result = run_cli("run", "--backend", "fake", "--task", "math", "--data", str(data), "--test-size", "1",
                         "--display", "none", "--run-dir", str(tmp_path / "run"))
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and expected in lines[0], result.stderr
        assert "train/ or test/" in lines[0] or data == math


# ---------------------------------------------------------------- every task reads a test file beside its train file


@pytest.mark.parametrize("task,train_name,test_name,record", [
    ("svamp", "train.jsonl", "SVAMP.json", lambda i: svamp_records(i, i)[0]),
    ("strategyqa", "strategyqa_train.json", "test.jsonl", lambda i: strategy_records(i + 1)[i]),
    ("gsm_hard", "dev.jsonl", "gsmhardv2.jsonl", lambda i: hard_records(1, offset=i)[0]),
    ("math", "train.jsonl", "math500_test.jsonl", lambda i: {**math_problem("Algebra", i), "unique_id": f"x/{i}"}),
])
def test_every_task_reads_its_test_file_whole(tmp_path, task, train_name, test_name, record):
    def write(name, records):
        (write_json if name.endswith(".json") else write_jsonl)(tmp_path / task / name, records)

    write(train_name, [record(i) for i in range(20)])
    write(test_name, [record(i) for i in range(100, 107)])
    test = load(task, tmp_path)
    assert len(test) == 7 and len(load(task, tmp_path, "train")) == 20
    assert not {p.question for p in test} & {p.question for p in load(task, tmp_path, "train")}
