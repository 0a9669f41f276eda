"""`econash score`: predictions made elsewhere graded by the task's grader, and finished runs
regraded from their recorded texts, with no model call and one-sentence errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import econash
from conftest import SHARED_DATA
from econash.stats import wilson_interval

FAKE = ["--backend", "fake", "--display", "none", "--no-cache"]


def invoke(args: list[str]) -> Any:
    """The CLI in this process, as test_compare does (imports are paid once on a loaded machine)."""
    from econash.cli import build_cli
    from econash.plugins import make_plugin_manager

    return CliRunner().invoke(build_cli(make_plugin_manager(warn=False)), args, catch_exceptions=False)


def write_lines(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def report_of(args: list[str]) -> dict[str, Any]:
    result = invoke(["score", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def arith() -> list[econash.Problem]:
    return econash.load_task("arith").load("test", 5, 0)


def test_predictions_file_gives_the_tasks_metrics_and_writes_nothing(arith, tmp_path):
    rows = [{"id": p.id, "prediction": f"So it is {p.gold + (i >= 3)}. The answer is {p.gold + (i >= 3)}."}
            for i, p in enumerate(arith)]
    path = write_lines(tmp_path / "preds.jsonl", rows)
    report = report_of(["--task", "arith", str(path)])
    assert (report["lines"], report["matched"], report["unmatched"]["count"]) == (5, 5, 0)
    assert report["metric"] == "accuracy" and report["value"] == pytest.approx(3 / 5)
    assert report["ci95"] == [round(x, 4) for x in wilson_interval(3, 5)]
    assert report["out"] is None and sorted(p.name for p in tmp_path.iterdir()) == ["preds.jsonl"]
    table = invoke(["score", "--task", "arith", str(path)])
    assert table.exit_code == 0 and "accuracy [95% CI]" in table.stdout and "0.6000 [0.23, 0.88]" in table.stdout
    assert "nothing written" in table.stdout


def test_aliases_bare_answers_prefixless_ids_and_unmatched_lines(arith, tmp_path):
    keys = ("output", "response", "text", "answer", "completion")
    rows: list[Any] = [{"id": p.id, key: str(p.gold)} for p, key in zip(arith, keys)]
    rows[1]["id"] = rows[1]["id"].removeprefix("arith-")  # "0-test-1": the task prefix may be left out
    rows[2] = {"id": rows[2]["id"], "answer": arith[2].gold}  # a JSON number, not text
    rows += [{"id": "arith-0-test-999", "prediction": "1"}, {"id": "nope", "prediction": "2"}]
    out = tmp_path / "graded" / "out.jsonl"
    report = report_of(["--task", "arith", str(write_lines(tmp_path / "p.jsonl", rows)), "--out", str(out)])
    assert report["matched"] == 5 and report["value"] == 1.0
    assert report["unmatched"] == {"count": 2, "first": ["arith-0-test-999", "nope"]}
    graded = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["id"] for g in graded] == [p.id for p in arith] and all(g["correct"] for g in graded)
    assert set(graded[0]) == {"line", "id", "prediction", "gold", "correct", "score", "metrics"}


ERRORS = [
    ('{"id": "arith-0-test-0", "prediction": "1"}\n{"id": oops}\n', "line 2 is not valid JSON"),
    ('[1, 2]\n', "line 1 is not a JSON object"),
    ('{"id": "arith-0-test-0", "guess": "1"}\n', 'line 1 has no prediction; give it a "prediction" field'),
    ('{"prediction": "1"}\n', 'line 1 has neither an "id" nor a "query"'),
    ('{"id": "x-1", "prediction": "1"}\n{"id": "x-2", "prediction": "1"}\n', "matches a problem of task 'arith'"),
    ('{"id": "arith-0-test-0", "prediction": "1"}\n{"id": "arith-0-test-0", "prediction": "2"}\n',
     "line 2 repeats the problem of line 1"),
    ('\n\n', "holds no lines"),
]


@pytest.mark.parametrize("content, message", ERRORS)
def test_bad_files_are_one_sentence_errors(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    result = invoke(["score", "--task", "arith", str(path)])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.startswith("Error: ")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    if "line" in message and "no lines" not in message:
        assert str(path) in result.stderr  # the file and the line number


@pytest.mark.parametrize("args, message", [
    (["--task", "arihtm"], "Unknown task 'arihtm'; did you mean 'arith'?"),
    ([], "needs --task TASK"),
    (["--task", "arith", "--out", "SELF"], "is the predictions file itself"),
])
def test_bad_options_are_one_sentence_errors(tmp_path, args, message):
    path = write_lines(tmp_path / "p.jsonl", [{"id": "arith-0-test-0", "prediction": "1"}])
    result = invoke(["score", *[str(path) if a == "SELF" else a for a in args], str(path)])
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    missing = invoke(["score", "--task", "arith", str(tmp_path / "absent.jsonl")])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    folder = invoke(["score", str(tmp_path)])
    assert folder.exit_code == 2 and "not an econash run directory" in folder.stderr


# ---------------------------------------------------------------- run directories


def fake_run(run_dir: Path, task: str, method: str = "cot", data: Path | None = None, size: int = 3) -> Path:
    args = ["run", *FAKE, "--task", task, "--method", method, "--test-size", str(size), "--run-dir", str(run_dir)]
    result = invoke(args + (["--data", str(data)] if data is not None else []))
    assert result.exit_code == 0, result.output
    return run_dir


def rows_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_run_is_regraded_from_its_recorded_texts(tmp_path):
    run = fake_run(tmp_path / "run", "arith")
    rows = rows_of(run / "results.jsonl")
    # Pretend the run was graded by an older, broken grader: one right answer was marked wrong,
    # one wrong answer right; the recorded texts are what the model wrote.
    rows[0]["prediction_text"] += f"\nThe answer is {rows[0]['gold']}."
    rows[1]["correct"], rows[1]["score"] = True, 1.0
    original = "".join(json.dumps(r) + "\n" for r in rows)
    (run / "results.jsonl").write_text(original)
    result = invoke(["score", str(run)])
    assert result.exit_code == 0, result.output
    assert "verdicts changed: 2" in result.stdout and rows[0]["id"] in result.stdout
    assert (run / "results.jsonl").read_text() == original  # the old file stays as it was
    rescored = rows_of(run / "results.rescored.jsonl")
    assert [r["id"] for r in rescored] == [r["id"] for r in rows]
    assert rescored[0]["correct"] is True and rescored[1]["correct"] is False
    assert rescored[0]["prediction"] == rows[0]["gold"] and rescored[0]["calls"] == rows[0]["calls"]
    report = json.loads((run / "rescore.json").read_text())["files"]["results.jsonl"]
    assert report["now_correct"] == [rows[0]["id"]] and report["now_wrong"] == [rows[1]["id"]]
    assert report["before"]["value"] == report["after"]["value"] == 1 / 3 and report["changed_verdicts"] == 2
    again = report_of([str(run)])  # regrading twice gives the same file
    assert again["files"]["results.jsonl"]["changed_verdicts"] == 2


def test_a_learning_runs_untrained_results_and_failed_episodes(tmp_path):
    run = fake_run(tmp_path / "run", "arith", method="fake-learner", size=2)
    assert (run / "results_untrained.jsonl").is_file()
    rows = rows_of(run / "results.jsonl")
    rows[0].update(error="RuntimeError: boom", prediction_text="", correct=False, score=0.0)
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = report_of([str(run)])
    assert set(report["files"]) == {"results.jsonl", "results_untrained.jsonl"}
    assert report["files"]["results.jsonl"]["kept_as_failed"] == 1
    assert rows_of(run / "results.rescored.jsonl")[0]["error"] == "RuntimeError: boom"
    assert (run / "results_untrained.rescored.jsonl").is_file()


def test_run_mode_refuses_file_options_and_notes_votes(tmp_path):
    run = fake_run(tmp_path / "run", "arith", method="sc", size=2)
    for args, message in ((["--out", "x.jsonl"], "--out is for predictions files"),
                          (["--task", "gsm8k"], "is a run of task 'arith', not 'gsm8k'")):
        result = invoke(["score", *args, str(run)])
        assert result.exit_code == 2 and message in result.stderr, result.output
    report = report_of([str(run)])
    assert any("vote is not recounted" in note for note in report["notes"])
    assert report["files"]["results.jsonl"]["changed_verdicts"] == 0


# ---------------------------------------------------------------- every task


def correct_text(task: str, problem: econash.Problem) -> Any:
    if task == "math":
        return f"So we get \\boxed{{{problem.gold}}}."
    if task == "strategyqa":
        return "The answer is yes." if problem.gold else "The answer is no."
    if task == "travelplanner":
        return problem.metadata["annotated_plan"]  # a structured plan, scored as given
    return f"The answer is {problem.gold}."


@pytest.mark.parametrize("task", ["gsm8k", "gsm_hard", "svamp", "math", "strategyqa", "travelplanner"])
def test_every_task_scores_a_file_and_a_run(task, tmp_path):
    if not (SHARED_DATA / task).is_dir():
        pytest.skip(f"the shared {task} data is not at {SHARED_DATA / task}")
    problems = econash.load_task(task, data=SHARED_DATA).load("test", 3, 0)
    rows = [{"id": p.id, "prediction": correct_text(task, p)} for p in problems]
    report = report_of(["--task", task, "--data", str(SHARED_DATA), str(write_lines(tmp_path / "p.jsonl", rows))])
    assert report["matched"] == 3 and report["value"] == 1.0, report
    run = fake_run(tmp_path / "run", task, data=SHARED_DATA, size=2)
    before = json.loads((run / "summary.json").read_text())
    regraded = report_of([str(run)])["files"]["results.jsonl"]
    # The grader has not changed since the run, so regrading it changes nothing.
    assert regraded["questions"] == 2 and regraded["changed_scores"] == 0
    assert regraded["after"]["value"] == before["accuracy"]
