"""`econash score` on a TravelPlanner sole-planning submission: the six official metrics and the
per-constraint counts, checked against numbers worked out by hand from the definitions in the
official evaluation (docs/travelplanner.md, section 6).

The submission is the 30 annotated train plans (which pass everything, section 8.1) with a few
plans broken in ways whose official outcome follows from sections 4 and 5, so every expected number is
a count, not a call to the scorer under test.
"""

from __future__ import annotations

import ast
import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

import econash
from conftest import SHARED_DATA
from test_score import invoke

TP = SHARED_DATA / "travelplanner"
pytestmark = pytest.mark.skipif(not (TP / "train.jsonl").is_file() or not (TP / "database").is_dir(),
                                reason=f"the shared TravelPlanner data is not at {TP}")


def first(records: list[dict], taken: set[int], test) -> int:
    """The first query not used yet whose gold plan suits a mutation."""
    index = next(i for i, r in enumerate(records) if i not in taken and test(r, r["annotated_plan"][1]))
    taken.add(index)
    return index


@pytest.fixture(scope="module")
def submission(tmp_path_factory) -> dict[str, Any]:
    """The data (query 0 for 4 people instead of 1), the submission lines and what each break does."""
    root = tmp_path_factory.mktemp("tp")
    records = [json.loads(line) for line in (TP / "train.jsonl").read_text().splitlines() if line.strip()]
    records[0]["people_number"] = 4  # section 8.2: the gold plan then costs 5460 > 1700, so Budget fails
    (root / "travelplanner").mkdir()
    (root / "travelplanner" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    plans: list[Any] = [copy.deepcopy(r["annotated_plan"][1]) for r in records]
    taken = {0, 1, 2}
    plans[1], plans[2] = None, []  # not delivered
    flown = first(records, taken, lambda r, p: "Flight Number: " in p[0]["transportation"])
    plans[flown][0]["transportation"] = plans[flown][0]["transportation"].replace("Flight Number: F",
                                                                                  "Flight Number: F000000")
    no_sights = first(records, taken, lambda r, p: r["days"] == 3 and "from" not in p[1]["current_city"]
                      and p[1]["attraction"] not in ("", "-"))
    del plans[no_sights][1]["attraction"]  # the case: a missing key fails Complete Information
    no_stay = first(records, taken, lambda r, p: p[0]["accommodation"] not in ("", "-"))
    del plans[no_stay][0]["accommodation"]  # fails Minimum Nights Stay (it needs the key) and Complete Information
    padded = first(records, taken, lambda r, p: r["days"] == 3)
    plans[padded] = plans[padded][:3] + [{"days": day} for day in range(4, 8)]  # official padding after the trip
    lines: list[str] = [json.dumps({"idx": i + 1, "query": r["query"], "plan": plan})
                        for i, (r, plan) in enumerate(zip(records, plans))]
    literal = first(records, taken, lambda r, p: True)
    lines[literal] = json.dumps(repr({"idx": literal + 1, "query": records[literal]["query"], "plan": plans[literal]}))
    lines.append(json.dumps({"idx": 31, "query": "A query from another split.", "plan": plans[0]}))
    return {"root": root, "records": records, "lines": lines, "flown": flown, "no_sights": no_sights,
            "no_stay": no_stay}


def score(submission: dict[str, Any], lines: list[str], name: str = "sub.jsonl") -> dict[str, Any]:
    path = Path(submission["root"]) / name
    path.write_text("\n".join(lines) + "\n")
    result = invoke(["score", "--json", "--task", "travelplanner", "--data", str(submission["root"]),
                     "-B", f"task_options.database={TP / 'database'}", str(path)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def hand_counts(submission: dict[str, Any]) -> dict[str, float]:
    """The six metrics from section 6, counted by hand for this submission (N = 30 queries)."""
    records = submission["records"]
    n = len(records)
    broken = {0, 1, 2, submission["flown"], submission["no_sights"], submission["no_stay"]}
    # Every query's share of the hard micro denominator: budget plus each local constraint it sets.
    share = [1 + sum(v is not None for v in r["local_constraint"].values()) for r in records]
    # Delivered: all but queries 1 and 2. Commonsense: query 0 passes all 8 (only Budget fails), the
    # flight and missing-attraction plans fail one each, the missing-accommodation plan two.
    commonsense_true = 8 * (n - 6) + 8 + 7 + 7 + 6
    # Gated in: the 24 untouched plans (all hard checks pass) and query 0 (Budget fails: 0 of 1).
    hard_true = sum(share[i] for i in range(n) if i not in broken)
    return {"delivery_rate": (n - 2) / n, "commonsense_micro": commonsense_true / (8 * n),
            "commonsense_macro": (n - 5) / n, "hard_micro": hard_true / sum(share),
            "hard_macro": (n - 6) / n, "final_pass_rate": (n - 6) / n}


def test_the_six_metrics_equal_the_official_definitions(submission):
    report = score(submission, submission["lines"])
    assert (report["lines"], report["matched"], report["unmatched"]["count"]) == (31, 30, 1)
    expected = hand_counts(submission)
    for name, value in expected.items():
        assert round(report["metrics"][name], 4) == round(value, 4), name
        assert report["metrics"][name] == pytest.approx(value, abs=1e-12), name
    assert report["metric"] == "final_pass_rate" and report["value"] == expected["final_pass_rate"]


def test_per_constraint_pass_counts(submission):
    counts = {row["label"]: (row["passed"], row["checked"]) for row in score(submission, submission["lines"])
              ["constraints"].values()}
    delivered = 28
    assert counts["Within Sandbox"] == (delivered - 1, delivered)
    assert counts["Complete Information"] == (delivered - 2, delivered)
    assert counts["Minimum Nights Stay"] == (delivered - 1, delivered)
    for label in ("Reasonable City Route", "Diverse Restaurants", "Diverse Attractions", "Non-conf. Transportation",
                  "Within Current City"):
        assert counts[label] == (delivered, delivered), label
    assert counts["Budget"] == (24, 25)  # gated in: 24 untouched plans and query 0
    records = submission["records"]
    broken = {0, 1, 2, submission["flown"], submission["no_sights"], submission["no_stay"]}
    for label, field in (("Room Rule", "house rule"), ("Cuisine", "cuisine"), ("Room Type", "room type"),
                         ("Transportation", "transportation")):
        asked = sum(1 for i, r in enumerate(records) if i not in broken and r["local_constraint"][field] is not None)
        assert counts[label] == (asked, asked), label


def test_lines_are_matched_by_query_not_position(submission):
    shuffled = list(submission["lines"])
    random.Random(7).shuffle(shuffled)
    in_order = score(submission, submission["lines"])["metrics"]
    assert score(submission, shuffled, "shuffled.jsonl")["metrics"] == pytest.approx(in_order, abs=1e-12)
    # econash ids and plans given as reply text are graded the same way.
    task = econash.load_task("travelplanner", data=submission["root"], database=TP / "database")
    ids = {" ".join(p.question.split("\n\n")[0].split()): p.id for split in ("train", "test")
           for p in task.load(split, None, 0)}
    by_id = []
    for line in submission["lines"][:30]:
        row = json.loads(line)
        row = ast.literal_eval(row) if isinstance(row, str) else row
        plan = row["plan"]
        by_id.append(json.dumps({"id": ids[" ".join(row["query"].split())],
                                 "prediction": json.dumps(plan) if isinstance(plan, list) and plan else plan}))
    assert score(submission, by_id, "ids.jsonl")["metrics"] == pytest.approx(in_order, abs=1e-12)


def test_a_submission_for_other_queries_is_one_sentence(submission, tmp_path):
    path = tmp_path / "other.jsonl"
    path.write_text(json.dumps({"idx": 1, "query": "Plan a trip to the Moon.", "plan": []}) + "\n")
    result = invoke(["score", "--task", "travelplanner", "--data", str(submission["root"]),
                     "-B", f"task_options.database={TP / 'database'}", str(path)])
    assert result.exit_code == 2 and "No line of" in result.stderr and "matches a problem" in result.stderr
