"""TravelPlanner data: finding and splitting queries, the database and flight index, the 30
annotated train plans under the official rules, and a whole run on the fake backend."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

from conftest import SHARED_DATA, run_cli
from econash.errors import DataError
from econash_plugins.tasks.travelplanner import TravelPlannerTask
from econash_plugins.tasks.travelplanner import flights as flights_module
from econash_plugins.tasks.travelplanner.constraints import trip_cost, window
from econash_plugins.tasks.travelplanner.database import Database
from econash_plugins.tasks.travelplanner.dataset import find_source
from econash_plugins.tasks.travelplanner.flights import FlightIndex
from econash_plugins.tasks.travelplanner.metrics import aggregate
from test_travelplanner import FLIGHT_HEADER, PLAN, write_database

TP = SHARED_DATA / "travelplanner"
needs_shared = pytest.mark.skipif(not (TP / "train.jsonl").is_file() or not (TP / "database").is_dir(),
                                  reason=f"the shared TravelPlanner data is not at {TP}")


def record(number: int, level: str = "easy", days: int = 3, as_strings: bool = False) -> dict:
    local = {"house rule": None, "cuisine": None, "room type": None, "transportation": None}
    rec = {"org": "Austin", "dest": "Chicago", "days": days, "visiting_city_number": 1, "people_number": 2,
           "date": ["2022-03-01", "2022-03-02", "2022-03-03"], "local_constraint": local, "budget": 2000,
           "query": f"Query {number}: plan a trip from Austin to Chicago.", "level": level,
           "annotated_plan": [{"org": "Austin"}, PLAN],
           "reference_information": [{"Description": "Taxi from Austin to Chicago",
                                      "Content": "No valid information."}]}
    if as_strings:  # the Hugging Face encoding
        for key in ("date", "local_constraint", "annotated_plan", "reference_information"):
            rec[key] = repr(rec[key])
    return rec


@pytest.fixture
def data_root(tmp_path, monkeypatch) -> Path:
    """A data folder as a user would lay it out: travelplanner/train.jsonl and travelplanner/database."""
    monkeypatch.delenv("ECONASH_DATA_DIR", raising=False)
    folder = tmp_path / "data" / "travelplanner"
    write_database(folder / "database")
    rows = [record(i, level, days) for i, (level, days) in enumerate(
        [(lv, d) for lv in ("easy", "medium", "hard") for d in (3, 5, 7) for _ in range(2)])]
    rows[0] = record(0, as_strings=True)
    (folder / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return tmp_path / "data"


# ---------------------------------------------------------------- loading and splitting


def test_data_can_be_given_as_root_folder_subfolder_or_file(data_root):
    for data in (data_root, data_root / "travelplanner", data_root / "travelplanner" / "train.jsonl"):
        task = TravelPlannerTask(TravelPlannerTask.Options(), data=data)
        problems = task.load("test", None, 0)
        assert len(problems) == 9, data  # ceil(2/2) of each of the 9 (level, days) cells
        assert task.database.root == (data_root / "travelplanner" / "database").resolve()


def test_hub_string_fields_are_parsed(data_root):
    task = TravelPlannerTask(TravelPlannerTask.Options(), data=data_root)
    first = task.source().splits["train"][0]
    assert first["local_constraint"]["cuisine"] is None and first["date"][0] == "2022-03-01"
    assert first["annotated_plan"][1][0]["current_city"] == "from Austin to Chicago"


def test_environment_folder_is_used_without_data(data_root, monkeypatch):
    monkeypatch.setenv("ECONASH_DATA_DIR", str(data_root))
    task = TravelPlannerTask(TravelPlannerTask.Options())
    assert task.database.root == (data_root / "travelplanner" / "database").resolve()
    assert len(task.load("train", None, 0)) == 9


def test_split_is_seeded_disjoint_stratified_and_prefix_stable(data_root):
    task = TravelPlannerTask(TravelPlannerTask.Options(), data=data_root)
    partition = set(p.id for p in task.load("test", None, 0))
    for seed in (0, 1, 2):
        test = [p.id for p in task.load("test", None, seed)]
        train = [p.id for p in task.load("train", None, seed)]
        assert not set(test) & set(train) and len(set(test) | set(train)) == 18
        assert set(test) == partition  # the seed orders the split but never moves a query across it
        assert test == [p.id for p in task.load("test", None, seed)]  # deterministic
        assert [p.id for p in task.load("test", 4, seed)] == test[:4]
        cells = {(p.metadata["level"], p.metadata["days"]) for p in task.load("test", None, seed)}
        assert len(cells) == 9  # every (level, days) cell is represented
    assert [p.id for p in task.load("test", None, 0)] != [p.id for p in task.load("test", None, 1)]
    assert len(task.load("test", 500, 0)) == 9  # a larger size is clipped to the split


def test_a_validation_file_becomes_the_test_split(data_root):
    folder = data_root / "travelplanner"
    (folder / "validation.jsonl").write_text(json.dumps(record(99)) + "\n")
    task = TravelPlannerTask(TravelPlannerTask.Options(), data=data_root)
    assert [p.id for p in task.load("test", None, 0)] == ["travelplanner-validation-0"]
    assert len(task.load("train", None, 0)) == 18


def held_out(number: int) -> dict:
    """A validation or test query: the official files have no annotated plan."""
    return {key: value for key, value in record(number).items() if key != "annotated_plan"}


def write_queries(path: Path, numbers) -> Path:
    path.write_text("".join(json.dumps(held_out(n)) + "\n" for n in numbers))
    return path


def test_a_test_file_in_the_folder_is_the_test_split_whole(data_root):
    folder = data_root / "travelplanner"
    write_queries(folder / "test.jsonl", range(100, 103))
    write_queries(folder / "validation.jsonl", [99])  # test.jsonl wins: it is the split asked for
    task = TravelPlannerTask(TravelPlannerTask.Options(), data=data_root)
    assert sorted(p.id for p in task.load("test", None, 0)) == [f"travelplanner-test-{i}" for i in range(3)]
    assert "annotated_plan" not in task.load("test", 1, 0)[0].metadata
    assert len(task.load("train", None, 0)) == 18  # all of train.jsonl: nothing is held out of it


@pytest.mark.parametrize("name", ["test.jsonl", "validation.jsonl"])
def test_a_folder_with_only_a_test_or_validation_file_serves_test_and_refuses_train(data_root, name):
    folder = data_root / "travelplanner"
    (folder / "train.jsonl").unlink()
    write_queries(folder / name, range(4))
    task = TravelPlannerTask(TravelPlannerTask.Options(), data=data_root)
    split = name.removesuffix(".jsonl")
    assert sorted(p.id for p in task.load("test", None, 0)) == [f"travelplanner-{split}-{i}" for i in range(4)]
    with pytest.raises(DataError, match="only test data .*training on it would leak into the evaluation"):
        task.load("train", 1, 0)


@pytest.mark.parametrize("name,split", [("test.jsonl", "test"), ("tp_test_sample.jsonl", "test"),
                                        ("validation.jsonl", "validation"), ("val_50.jsonl", "validation")])
def test_a_file_given_directly_named_test_or_validation_is_test(data_root, name, split):
    path = write_queries(data_root / "travelplanner" / name, range(5))
    task = TravelPlannerTask(TravelPlannerTask.Options(), data=path)
    assert sorted(p.id for p in task.load("test", None, 0)) == [f"travelplanner-{split}-{i}" for i in range(5)]
    with pytest.raises(DataError, match="training on it would leak"):
        task.load("train", None, 0)


def test_the_public_test_set_without_constraint_fields_is_one_sentence(tmp_path):
    stripped = {key: record(0)[key] for key in ("query", "level", "days", "reference_information")}
    path = tmp_path / "test.jsonl"
    path.write_text(json.dumps(stripped) + "\n")
    with pytest.raises(DataError) as error:
        find_source(path)
    message = str(error.value)
    assert message.startswith(f"{path} line 1: the TravelPlanner record has no 'org'")
    assert "withholds the constraint fields" in message and "validation.jsonl" in message
    assert message.count(". ") == 0


def test_problem_carries_query_reference_gold_and_format(data_root):
    task = TravelPlannerTask(TravelPlannerTask.Options(), data=data_root)
    problem = task.load("test", 1, 0)[0]
    assert problem.question.startswith("Query ")
    assert "### Taxi from Austin to Chicago\nNo valid information." in problem.question
    assert problem.gold["budget"] == 2000 and problem.gold["local_constraint"]["room type"] is None
    assert problem.metadata["annotated_plan"] == PLAN
    fmt = task.answer_format(problem)
    assert "JSON" in fmt and '"current_city"' in fmt and "Day 1:" in fmt and f"{problem.gold['days']} days" in fmt


def test_missing_database_and_bad_data_are_one_sentence_errors(data_root, tmp_path, monkeypatch):
    with pytest.raises(DataError, match=r"task_options\.database=PATH"):
        TravelPlannerTask(TravelPlannerTask.Options(database=tmp_path / "nowhere"), data=data_root)
    with pytest.raises(DataError, match=r"task_options\.database=PATH"):
        # no --data, no ECONASH_DATA_DIR: nowhere to look for a database
        TravelPlannerTask(TravelPlannerTask.Options())
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(record(0)) + "\n{not json\n")
    with pytest.raises(DataError, match=r"broken\.jsonl line 2"):
        find_source(broken)
    incomplete = tmp_path / "incomplete.jsonl"
    incomplete.write_text(json.dumps({k: v for k, v in record(0).items() if k != "budget"}) + "\n")
    with pytest.raises(DataError, match="no 'budget'"):
        find_source(incomplete)
    with pytest.raises(DataError, match="does not exist"):
        find_source(tmp_path / "absent")


def test_no_local_data_and_no_hub_names_data_and_env(monkeypatch, tmp_path):
    monkeypatch.setenv("ECONASH_DATA_DIR", str(tmp_path))
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if not installed; never touches the network
    with pytest.raises(DataError) as error:
        find_source(None)
    message = str(error.value)
    assert str(tmp_path / "travelplanner") in message and "osunlp/TravelPlanner" in message
    assert "--data" in message and "ECONASH_DATA_DIR" in message and message.count(". ") == 0


def test_hub_rows_are_read_through_datasets(monkeypatch, tmp_path):
    calls = []

    class FakeDatasets:  # stands in for the `datasets` package: no network in tests
        @staticmethod
        def load_dataset(name, config, split):
            calls.append((name, config, split))
            return [record(i, as_strings=True) for i in range(3 if split == "train" else 4)]

    monkeypatch.delenv("ECONASH_DATA_DIR", raising=False)
    monkeypatch.setitem(sys.modules, "datasets", FakeDatasets)
    task = TravelPlannerTask(TravelPlannerTask.Options(database=write_database(tmp_path / "db")))
    assert [p.id for p in sorted(task.load("test", None, 0), key=lambda p: p.id)] == [
        f"travelplanner-validation-{i}" for i in range(4)]
    assert len(task.load("train", None, 0)) == 3
    assert calls == [("osunlp/TravelPlanner", "train", "train"), ("osunlp/TravelPlanner", "validation", "validation")]
    assert task.load("train", 1, 0)[0].gold["local_constraint"]["house rule"] is None


def test_missing_table_is_named(tmp_path):
    write_database(tmp_path)
    (tmp_path / "restaurants" / "clean_restaurant_2022.csv").unlink()
    with pytest.raises(DataError, match="clean_restaurant_2022.csv.*task_options.database"):
        Database(tmp_path).find_restaurants("x", "Chicago")


# ---------------------------------------------------------------- the flight index


def write_flights(path: Path, rows: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(FLIGHT_HEADER + "\n" + "\n".join(rows) + "\n")
    return path


FLIGHT_ROWS = [
    "F30,300,08:00,11:00,3 hours,2022-03-01,Austin,Chicago,1576.0",
    "F7,70,08:00,11:00,3 hours,2022-03-01,Chicago,Austin,1576.0",
    "F30,999,08:00,11:00,3 hours,2022-03-02,Dallas,Chicago,1000.0",  # same number, later row
    "F12,,08:00,11:00,3 hours,2022-03-01,Austin,Peoria,900.0",       # a missing price: dropped
    "F13,130,08:00,11:00,,2022-03-01,Austin,Peoria,900.0",           # any missing field: dropped
    "X-1,50,08:00,11:00,1 hour,2022-03-01,Austin,Dallas,300.0",      # not F<digits>
    "F030,55,08:00,11:00,1 hour,2022-03-01,Austin,Dallas,300.0",     # leading zero: its own number
]


@pytest.mark.parametrize("numpy_available", [True, False])
def test_flight_index_keeps_file_order_and_drops_incomplete_rows(tmp_path, monkeypatch, numpy_available):
    if not numpy_available:
        monkeypatch.setitem(sys.modules, "numpy", None)
    index = FlightIndex.build(write_flights(tmp_path / "f.csv", FLIGHT_ROWS))
    assert len(index) == 5
    assert index.rows("F30") == [(300.0, "Austin", "Chicago"), (999.0, "Dallas", "Chicago")]
    assert index.rows("F7") == [(70.0, "Chicago", "Austin")]
    assert index.rows("F12") == [] and index.rows("F13") == [] and index.rows("F8") == []
    assert index.rows("X-1") == [(50.0, "Austin", "Dallas")] and index.rows("F030") == [(55.0, "Austin", "Dallas")]


def test_flight_lookups_ignore_dates_and_price_by_number(tmp_path):
    write_database(tmp_path)
    write_flights(tmp_path / "flights" / "flights_subset_from_train.csv", FLIGHT_ROWS)
    db = Database(tmp_path)
    assert db.flight_exists("F30", "Dallas", "Chicago") and not db.flight_exists("F30", "Chicago", "Dallas")
    assert db.flight_price("F30") == 300.0 and db.flight_price("F404") == 0.0
    # The official full table wins over the subset when both are there.
    write_flights(tmp_path / "flights" / "clean_Flights_2022.csv", ["F1,10,08:00,09:00,1 hour,2022-03-01,A,B,1.0"])
    assert Database(tmp_path).flight_exists("F1", "A", "B")


def test_a_large_flight_table_is_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(flights_module, "CACHE_MIN_BYTES", 0)
    source = write_flights(tmp_path / "f.csv", FLIGHT_ROWS)
    cache = tmp_path / "cache"
    built = FlightIndex.open(source, cache)
    assert len(list(cache.iterdir())) == 1
    monkeypatch.setattr(FlightIndex, "build", classmethod(lambda cls, path: pytest.fail("rebuilt")))
    cached = FlightIndex.open(source, cache)
    for number in ("F30", "F7", "X-1", "F030", "F12"):
        assert cached.rows(number) == built.rows(number)
    # A damaged cache file is rebuilt, not trusted.
    next(cache.iterdir()).write_bytes(b"garbage")
    monkeypatch.undo()
    monkeypatch.setattr(flights_module, "CACHE_MIN_BYTES", 0)
    assert FlightIndex.open(source, cache).rows("F30") == built.rows("F30")


def test_the_database_keeps_its_flight_index_in_the_econash_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(flights_module, "CACHE_MIN_BYTES", 0)
    monkeypatch.setenv("ECONASH_CACHE_DIR", str(tmp_path / "cache"))
    write_database(tmp_path / "db")
    write_flights(tmp_path / "db" / "flights" / "flights_subset_from_train.csv", FLIGHT_ROWS)
    assert Database(tmp_path / "db").flight_exists("F30", "Dallas", "Chicago")
    assert len(list((tmp_path / "cache" / "travelplanner").iterdir())) == 1


# ---------------------------------------------------------------- the official annotated plans


@pytest.fixture(scope="module")
def shared_task():
    if not (TP / "train.jsonl").is_file() or not (TP / "database").is_dir():
        pytest.skip(f"the shared TravelPlanner data is not at {TP}")
    return TravelPlannerTask(TravelPlannerTask.Options(), data=SHARED_DATA)


@needs_shared
def test_all_annotated_train_plans_pass_every_constraint(shared_task):
    records = shared_task.source().splits["train"]
    assert len(records) == 30
    scores = []
    for number, rec in enumerate(records):
        problem = shared_task._problem(rec, f"train-{number}")
        score = shared_task.score(rec["annotated_plan"][1], problem)
        assert score.correct and score.score == 1.0, (number, score.metrics)
        scores.append(score)
    assert aggregate(scores) == {"delivery_rate": 1.0, "commonsense_micro": 1.0, "commonsense_macro": 1.0,
                                 "hard_micro": 1.0, "hard_macro": 1.0, "final_pass_rate": 1.0, "mean_score": 1.0}
    # 30 + one per non-null local constraint: the medium queries have one each.
    assert sum(s.metrics["hard_applicable"] for s in scores) == 30 + 15


@needs_shared
def test_annotated_plans_survive_both_reply_formats(shared_task):
    labels = {"current_city": "Current City", "transportation": "Transportation", "breakfast": "Breakfast",
              "attraction": "Attraction", "lunch": "Lunch", "dinner": "Dinner", "accommodation": "Accommodation"}
    for number, rec in enumerate(shared_task.source().splits["train"]):
        plan = [day for day in rec["annotated_plan"][1] if day]
        text = "\n\n".join(f"Day {day['days']}:\n" + "\n".join(f"{label}: {day[key]}" for key, label in labels.items())
                           for day in plan)
        problem = shared_task._problem(rec, f"train-{number}")
        for reply in (text, f"```json\n{json.dumps(plan)}\n```"):
            answer, score = shared_task.grade_text(reply, problem)
            assert score.correct, (number, reply[:40], score.metrics)


@needs_shared
def test_worked_cost_and_mutations_of_train_query_0(shared_task):
    rec = shared_task.source().splits["train"][0]
    problem = shared_task._problem(rec, "train-0")
    plan, query = rec["annotated_plan"][1], problem.gold
    assert trip_cost(window(plan, query), query, shared_task.database) == 1608.0
    four = dict(query, people_number=4)
    assert trip_cost(window(plan, four), four, shared_task.database) == 5460.0

    def outcome(day: int, **fields):
        changed = copy.deepcopy(plan)
        changed[day - 1].update(fields)
        score = shared_task.score(changed, problem)
        return {k for k, v in score.metrics.items() if v == 0.0}, "hard_budget" in score.metrics

    assert outcome(2, lunch="Coco Bambu, Rockford") == ({"cs_diverse_restaurants"}, True)
    assert "cs_minimum_nights_stay" in outcome(2, accommodation="Spacious 3BDR Prime Location!, Rockford")[0]
    flight = plan[0]["transportation"].replace("F3573659", "F0000001")
    assert outcome(1, transportation=flight) == ({"cs_within_sandbox"}, False)
    assert outcome(3, attraction="Nowhere Park, Rockford") == (set(), True)
    assert outcome(2, breakfast="Dial A Cake, Rockford.") == ({"cs_within_sandbox"}, False)
    assert outcome(2, current_city="Chicago") == ({"cs_reasonable_city_route", "cs_complete_information"}, False)
    assert outcome(1, transportation="Taxi, from St. Petersburg to Rockford") == ({"cs_within_sandbox"}, False)


@needs_shared
def test_reference_tables_all_compact(shared_task):
    from econash_plugins.tasks.travelplanner.reference import compact_table

    for rec in shared_task.source().splits["train"]:
        for entry in rec["reference_information"]:
            if "\n" in entry["Content"].strip():  # a table, not a one-line message
                assert compact_table(entry["Description"], entry["Content"]) is not None, entry["Description"]


@needs_shared
def test_run_on_fake_backend_reports_the_six_metrics(shared_task, tmp_path):
    problems = shared_task.load("test", 2, 0)
    good = "Here is the plan.\n```json\n" + json.dumps(problems[0].metadata["annotated_plan"]) + "\n```"
    script = [good, "Sorry, I could not find a plan."]
    run_dir = tmp_path / "run"
    # cot makes exactly one call per question, so the script's replies map onto the questions.
    result = run_cli("run", "--backend", "fake", "--method", "cot", "--task", "travelplanner",
                     "--data", str(SHARED_DATA), "--test-size", "2", "--concurrency", "1", "--display", "none",
                     "--no-cache", "--run-dir", str(run_dir), "-B", f"backend_options.script={json.dumps(script)}")
    assert result.returncode == 0, result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    metrics = summary["metrics"]
    assert metrics["delivery_rate"] == 0.5 and metrics["final_pass_rate"] == 0.5
    assert metrics["commonsense_micro"] == 0.5 and metrics["commonsense_macro"] == 0.5
    assert metrics["hard_macro"] == 0.5
    applicable = [sum(1 for v in p.gold["local_constraint"].values() if v) + 1 for p in problems]
    assert metrics["hard_micro"] == applicable[0] / sum(applicable)
    assert summary["accuracy"] == 0.5
    results = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in results] == [p.id for p in problems]
    assert results[0]["correct"] is True and results[1]["metrics"]["delivered"] == 0.0
