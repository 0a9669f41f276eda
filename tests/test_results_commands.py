"""`econash runs`, `econash show` and `econash report` on runs made with the fake backend: what each
prints or writes, and that damaged, unfinished and resumed runs are shown as what they are, never a
traceback. The report in a real browser: tests/test_report_browser.py."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_runs import invoke, make_runs

from econash_plugins.commands.question_views import calls_by_question


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    return make_runs(tmp_path_factory.mktemp("results") / "runs")


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def listed(root: Path, *args: str, env: dict[str, str] | None = None) -> list[dict]:
    result = invoke("runs", "--json", "--runs-dir", str(root), *args, env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def copied(runs: dict[str, Path], name: str, tmp_path: Path) -> Path:
    target = tmp_path / "runs" / name
    shutil.copytree(runs[name], target)
    return target


# ---------------------------------------------------------------- econash runs


def test_runs_lists_every_run_with_the_numbers_of_its_summary(runs):
    root = runs["cot"].parent
    entries = {entry["path"]: entry for entry in listed(root)}
    assert set(entries) == {"cot", "econash", "learner", "compare/cot", "compare/sc"}
    for path, entry in entries.items():
        summary = json.loads((root / path / "summary.json").read_text())
        assert (entry["task"], entry["method"], entry["backend"], entry["model"]) == (
            "arith", summary["method"], "fake", "fake-model")
        assert entry["questions"] == summary["n_test"] and entry["accuracy"] == summary["accuracy"]
        assert entry["tokens_per_question"] == summary["tokens"]["per_question"]
        assert entry["status"] == "complete" and entry["created"]
    assert entries["cot"]["accuracy"] == pytest.approx(1 / 3)  # the scripted reply is right on question 0 only
    table = invoke("runs", "--runs-dir", str(root)).stdout.splitlines()
    assert table[0].split() == ["time", "task", "method", "backend/model", "questions", "accuracy",
                                "tokens/question", "status", "path"]
    cot = next(line for line in table if line.endswith("  cot"))
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d\s+arith\s+cot\s+fake/fake-model\s+3\s+0\.333\s+\d+\.\d\s+complete",
                     cot), cot
    assert len(table) == 6


def test_runs_folder_comes_from_the_flag_then_ECONASH_RUNS_DIR_then_runs(runs, tmp_path, monkeypatch):
    root = runs["cot"].parent
    monkeypatch.chdir(tmp_path)
    missing = invoke("runs")
    assert missing.exit_code == 2 and "Runs folder 'runs' does not exist" in missing.output
    assert "--runs-dir" in missing.output and "Traceback" not in missing.output
    shutil.copytree(runs["cot"], tmp_path / "runs" / "only")
    assert [e["path"] for e in json.loads(invoke("runs", "--json").stdout)] == ["only"]
    from_env = json.loads(invoke("runs", "--json", env={"ECONASH_RUNS_DIR": str(root)}).stdout)
    assert len(from_env) == 5
    flag = listed(tmp_path / "runs", env={"ECONASH_RUNS_DIR": str(root)})
    assert [e["path"] for e in flag] == ["only"]
    (tmp_path / "empty").mkdir()
    assert invoke("runs", "--runs-dir", str(tmp_path / "empty")).stdout.startswith("No run directories under")


def test_runs_shows_unfinished_running_and_damaged_runs_without_failing(runs, tmp_path):
    unfinished = copied(runs, "cot", tmp_path)
    (unfinished / "summary.json").unlink()
    results = lines(unfinished / "results.jsonl")
    (unfinished / "results.jsonl").write_text(json.dumps(results[0]) + "\n" + '{"id": "cut')  # one done, a cut line
    running = copied(runs, "econash", tmp_path)
    (running / "run.lock").write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename}))
    killed = copied(runs, "learner", tmp_path)
    (killed / "summary.json").unlink()
    (killed / "run.lock").write_text(json.dumps({"pid": 2**22 + 7, "host": os.uname().nodename}))  # no such pid
    stopped = tmp_path / "runs" / "stopped"
    shutil.copytree(runs["cot"], stopped)
    summary = json.loads((stopped / "summary.json").read_text())
    (stopped / "summary.json").write_text(json.dumps({**summary, "complete": False, "stopped_reason": "cost_limit"}))
    bad_summary = copied(runs, "compare", tmp_path) / "cot"
    (bad_summary / "summary.json").write_text("{not json")
    (tmp_path / "runs" / "compare" / "sc" / "manifest.json").write_text("[1, 2]")

    entries = {entry["path"]: entry for entry in listed(tmp_path / "runs")}
    assert entries["cot"]["status"] == "incomplete" and entries["cot"]["questions"] == 1
    assert entries["cot"]["accuracy"] == 1.0 and entries["cot"]["tokens_per_question"] == results[0]["tokens"]
    assert "econash resume" in entries["cot"]["reason"]
    assert entries["econash"]["status"] == "running" and f"process {os.getpid()}" in entries["econash"]["reason"]
    assert entries["learner"]["status"] == "incomplete"
    assert entries["stopped"]["status"] == "incomplete" and "cost_limit" in entries["stopped"]["reason"]
    assert entries["compare/cot"]["status"] == "damaged" and "not JSON" in entries["compare/cot"]["reason"]
    assert entries["compare/sc"]["status"] == "damaged" and entries["compare/sc"]["method"] is None
    table = invoke("runs", "--runs-dir", str(tmp_path / "runs"))
    assert table.exit_code == 0 and "1/3" in table.stdout and "damaged" in table.stdout


# ---------------------------------------------------------------- econash show


def test_show_econash_question_has_strategy_actions_weights_answers_and_commitment(runs):
    run = runs["econash"]
    result = invoke("show", str(run), "--question", "arith-0-test-0")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "econash run: econash-untrained on arith" in out  # the summary comes first
    assert "question: What is 8 + 3?" in out and "gold: 11" in out
    row = lines(run / "results.jsonl")[0]
    assert f"tokens: {row['tokens']} (prompt {row['prompt_tokens']}, completion {row['completion_tokens']})" in out
    heads = [line.strip() for line in out.splitlines() if re.match(r"  \S", line)]
    assert heads[0].startswith("strategy (coordinator): ")
    actions, weights = row["details"]["actions"], row["details"]["weights"]
    assert len(actions) == len(weights) == 3 and sum(weights) == pytest.approx(1.0, abs=1e-3)
    for i in range(3):
        head = next(h for h in heads if h.startswith(f"executor {i}:"))
        assert f"action {actions[i]}, weight {weights[i]:.2f}, answer " in head
    assert heads[-1].startswith("commitment (coordinator): ")
    assert len(heads) == 5 and "arith-0-test-1" not in out


def test_show_baseline_prints_each_call_with_its_answer_and_grade(runs):
    out = invoke("show", str(runs["cot"]), "--page-size", "2").stdout
    assert "questions 1-2 of 3 (page 1 of 2; --page 2 for the next)" in out
    assert "=== arith-0-test-0 (1 of 3): right ===" in out and "=== arith-0-test-1 (2 of 3): wrong ===" in out
    assert "  executor 0: answer 11.0 (right)" in out or "  executor 0: answer 11 (right)" in out
    assert '<img src="http://127.0.0.1:9/img.png">' in out  # the call's whole text, as the model wrote it
    page_2 = invoke("show", str(runs["cot"]), "--page-size", "2", "--page", "2").stdout
    assert "=== arith-0-test-2 (3 of 3)" in page_2 and "arith-0-test-0 (" not in page_2


def test_show_learning_run_and_its_untrained_policy(runs):
    trained = json.loads(invoke("show", str(runs["learner"]), "--json").stdout)
    untrained = json.loads(invoke("show", str(runs["learner"]), "--untrained", "--json").stdout)
    assert trained["phase"] == "eval" and untrained["phase"] == "eval-untrained"
    for shown, name in ((trained, "results.jsonl"), (untrained, "results_untrained.jsonl")):
        recorded = lines(runs["learner"] / name)
        assert [q["id"] for q in shown["questions"]] == [r["id"] for r in recorded]
        assert [q["calls"][0]["text"] for q in shown["questions"]] == [r["prediction_text"] for r in recorded]
    refused = invoke("show", str(runs["cot"]), "--untrained")
    assert refused.exit_code == 2 and "no answers of an untrained policy" in refused.output


@pytest.mark.parametrize("args, message", [
    (("--question", "arith-0-tset-1"), "has no evaluated question 'arith-0-tset-1'; did you mean 'arith-0-test-1'?"),
    (("--page", "3"), "--page 3 is past the end: the run has 3 evaluated questions, 1 page(s) of 5"),
])
def test_show_refuses_a_question_or_page_it_does_not_have(runs, args, message):
    result = invoke("show", str(runs["cot"]), *args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_show_and_report_refuse_a_folder_that_is_not_a_run(runs, tmp_path):
    (tmp_path / "plain").mkdir()
    for command in ("show", "report"):
        result = invoke(command, str(tmp_path / "plain"))
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert "manifest.json" in result.output
    broken = copied(runs, "cot", tmp_path)
    (broken / "manifest.json").write_text("garbage")
    result = invoke("show", str(broken))
    assert result.exit_code == 2 and "manifest.json of" in result.output and "is damaged (not JSON)" in result.output


def test_show_an_unfinished_run_with_a_damaged_line_and_no_events(runs, tmp_path):
    run = copied(runs, "cot", tmp_path)
    (run / "summary.json").unlink()
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["config"]["task_options"] = {"no_such_option": 1}  # the task cannot be built again
    (run / "manifest.json").write_text(json.dumps(manifest))
    rows = (run / "results.jsonl").read_text().splitlines()
    (run / "results.jsonl").write_text("\n".join([rows[0], "garbage", rows[1]]) + "\n")
    (run / "events.jsonl").unlink()
    result = invoke("show", str(run))
    assert result.exit_code == 0, result.output
    assert "No summary.json yet" in result.stdout and "`econash resume" in result.stdout
    assert "note: 1 line(s) of results.jsonl are not result records and were skipped." in result.stdout
    assert "final text (events.jsonl records no call for this question)" in result.stdout
    assert "questions 1-2 of 2" in result.stdout and "gold: 11" in result.stdout
    assert "note: The question texts could not be read from task 'arith' (" in result.stdout
    assert "question: " not in result.stdout


def test_show_keeps_the_calls_of_the_last_session_of_a_resumed_question(runs, tmp_path):
    run = copied(runs, "cot", tmp_path)
    events = lines(run / "events.jsonl")
    first = next(e for e in events if e["type"] == "llm_call" and e["problem_id"] == "arith-0-test-1")
    redone = {**first, "text": "asked again after the resume. The answer is 7."}
    with open(run / "events.jsonl", "a") as handle:
        handle.write(json.dumps({"type": "resume", "checkpoint": None}) + "\n" + json.dumps(redone) + "\n")
    calls, bad = calls_by_question(run / "events.jsonl")
    assert bad == 0 and [c["text"] for c in calls[("eval", "arith-0-test-1")]] == [redone["text"]]
    assert calls[("eval", "arith-0-test-0")][0]["text"] == first["text"]  # not redone: the first session's
    out = invoke("show", str(run), "--question", "arith-0-test-1").stdout
    assert "asked again after the resume" in out and out.count("  executor 0") == 1
    assert "executor 0: answer 7 (right)" in out or "executor 0: answer 7.0 (right)" in out


def test_show_makes_terminal_escape_sequences_harmless(runs, tmp_path):
    run = copied(runs, "cot", tmp_path)
    text = (run / "events.jsonl").read_text().replace("So 8 + 3", "\\u001b[2J\\u001b[31mSo 8 + 3")
    (run / "events.jsonl").write_text(text)
    out = invoke("show", str(run), "--question", "arith-0-test-0").stdout
    assert "\x1b" not in out and "\ufffd[2J\ufffd[31mSo 8 + 3" in out


# ---------------------------------------------------------------- econash report


def images(page: str) -> list[bytes]:
    found = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    return [base64.b64decode(data) for data in found]


class Elements(HTMLParser):
    """The page's real elements (text inside <pre> is not an element, however it looks)."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


LOADING = ("src", "href", "srcset", "action", "formaction", "data", "poster", "background", "xlink:href")


def assert_self_contained(page: str) -> None:
    """No element can load anything from outside the page: images are data URIs, there is no script,
    no link, no frame, and the stylesheet names no URL; a Content-Security-Policy forbids the rest."""
    tags = Elements(page).tags
    names = {tag for tag, _ in tags}
    assert not names & {"script", "link", "iframe", "object", "embed", "base", "audio", "video", "source"}, names
    loads = [(tag, key, value) for tag, attrs in tags for key, value in attrs.items() if key in LOADING]
    assert loads and all(tag == "img" and key == "src" and (value or "").startswith("data:image/png;base64,")
                         for tag, key, value in loads), [load[:2] for load in loads]
    style = re.search(r"<style>(.*?)</style>", page, re.DOTALL)
    assert style and "url(" not in style.group(1) and "@import" not in style.group(1)
    csp = [attrs for tag, attrs in tags if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy"]
    assert csp and csp[0]["content"].startswith("default-src 'none'")


def test_report_of_a_run_holds_tables_plots_and_every_call(runs):
    run = runs["econash"]
    result = invoke("report", str(run))
    assert result.exit_code == 0, result.output
    path = run / "report.html"
    assert result.stdout.strip() == f"report: {path}"
    page = path.read_text()
    assert_self_contained(page)
    assert page.count("<table") >= 3 and "accuracy [95% CI]" in page and "Actions each executor took" in page
    pngs = images(page)
    assert len(pngs) == 2 and all(png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5_000 for png in pngs)
    assert 'alt="Tokens per role"' in page and 'alt="Tokens per question"' in page
    assert page.count('<details class="question"') == 2
    events = [e for e in lines(run / "events.jsonl") if e["type"] == "llm_call" and e["phase"] == "eval"]
    import html as html_module

    for event in events:
        assert f"<pre>{html_module.escape(event['text'], quote=True)}</pre>" in page
    weights = lines(run / "results.jsonl")[0]["details"]["weights"]
    assert f"weight {weights[0]:.2f}" in page and "<b>strategy</b>" in page and "<b>commitment</b>" in page


def test_report_of_a_learning_run_draws_learning_curves_and_both_policies(runs, tmp_path):
    out = tmp_path / "nested" / "learner.html"
    assert invoke("report", str(runs["learner"]), "-o", str(out)).exit_code == 0
    page = out.read_text()
    assert len(images(page)) == 3 and 'alt="Learning curves' in page
    assert "Questions answered before training (untrained policy) (2)" in page
    assert page.count('<details class="question"') == 4


def test_report_escapes_what_the_model_wrote(runs, tmp_path):
    out = tmp_path / "cot.html"
    assert invoke("report", str(runs["cot"]), "-o", str(out)).exit_code == 0
    page = out.read_text()
    assert_self_contained(page)
    assert "&lt;img src=&quot;http://127.0.0.1:9/img.png&quot;&gt;&lt;script&gt;" in page
    assert "http://127.0.0.1:9" not in re.sub(r"<pre>.*?</pre>", "", page, flags=re.DOTALL)


def test_report_of_a_compare_folder(runs, tmp_path):
    out = tmp_path / "compare.html"
    result = invoke("report", str(runs["compare"]), "-o", str(out))
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert_self_contained(page)
    assert "econash compare: arith on fake (fake-model), 2 questions" in page
    assert "<td>cot</td>" in page and "<td>sc</td>" in page and "Generation settings per role" in page
    assert len(images(page)) == 2 and 'alt="Accuracy against tokens per question"' in page
    assert page.count('<details class="question"') == 2
    assert page.count("<summary><b>cot</b>") == 2 and page.count("<summary><b>sc</b>") == 2
    sc_calls = [e for e in lines(runs["compare"] / "sc" / "events.jsonl") if e["type"] == "llm_call"]
    assert page.count('<div class="call"><b>executor 0') == 2 + len(sc_calls)


def test_report_of_an_unfinished_run_and_its_errors(runs, tmp_path):
    run = copied(runs, "learner", tmp_path)
    (run / "summary.json").unlink()
    assert invoke("report", str(run)).exit_code == 0
    page = (run / "report.html").read_text()
    assert "The run has no summary.json yet" in page and "questions answered" in page
    compare = copied(runs, "compare", tmp_path)
    (compare / "compare.json").write_text("{")
    damaged = invoke("report", str(compare))
    assert damaged.exit_code == 2 and "compare.json of" in damaged.output and "damaged (not JSON)" in damaged.output
    (tmp_path / "file").write_text("x")
    blocked = invoke("report", str(runs["cot"]), "-o", str(tmp_path / "file" / "r.html"))
    assert blocked.exit_code == 2 and "cannot be written to" in blocked.output and "-o FILE" in blocked.output
