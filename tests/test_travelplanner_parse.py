"""Reading plans out of model replies, and the compact reference tables in the prompt."""

from __future__ import annotations

import copy
import json

import pytest

from econash_plugins.tasks.travelplanner.database import Database
from econash_plugins.tasks.travelplanner.metrics import evaluate
from econash_plugins.tasks.travelplanner.parse import extract_plan
from econash_plugins.tasks.travelplanner.reference import compact_table, format_reference
from test_travelplanner import PLAN as TP_PLAN
from test_travelplanner import failures, write_database
from test_travelplanner import query as tp_query

DAY1 = {"day": 1, "current_city": "from Austin to Chicago",
        "transportation": "Flight Number: F100, from Austin to Chicago, Departure Time: 08:00, Arrival Time: 11:00",
        "breakfast": "-", "attraction": "-", "lunch": "Cafe One, Chicago", "dinner": "Deli Two, Chicago",
        "accommodation": "Lake View Loft, Chicago"}
DAY2 = {"day": 2, "current_city": "Chicago", "transportation": "-", "breakfast": "Grill Three, Chicago",
        "attraction": "Navy Pier, Chicago;Art Institute, Chicago;", "lunch": "Bistro Four, Chicago",
        "dinner": "Diner Five, Chicago", "accommodation": "Lake View Loft, Chicago"}
PLAN = [DAY1, DAY2]

TEXT_PLAN = """Day 1:
Current City: from Austin to Chicago
Transportation: Flight Number: F100, from Austin to Chicago, Departure Time: 08:00, Arrival Time: 11:00
Breakfast: -
Attraction: -
Lunch: Cafe One, Chicago
Dinner: Deli Two, Chicago
Accommodation: Lake View Loft, Chicago

Day 2:
Current City: Chicago
Transportation: -
Breakfast: Grill Three, Chicago
Attraction: Navy Pier, Chicago;Art Institute, Chicago;
Lunch: Bistro Four, Chicago
Dinner: Diner Five, Chicago
Accommodation: Lake View Loft, Chicago
"""


def same_plan(parsed, expected=PLAN):
    assert parsed is not None
    assert len(parsed) == len(expected)
    for got, want in zip(parsed, expected):
        for key in ("current_city", "transportation", "breakfast", "attraction", "lunch", "dinner", "accommodation"):
            assert got[key] == want[key], key


def test_json_in_a_code_fence_after_reasoning():
    text = ("Let me think about flights first.\nThe cheapest is F100.\n```json\n"
            + json.dumps(PLAN, indent=2) + "\n```\nEnjoy!")
    same_plan(extract_plan(text))


def test_bare_json_with_brackets_in_the_prose_before_it():
    text = "Budget check [1860 <= 2000] {ok}. Final plan: " + json.dumps(PLAN) + " That is all."
    same_plan(extract_plan(text))


def test_json_shapes_a_model_may_choose():
    same_plan(extract_plan(json.dumps({"plan": PLAN})))
    same_plan(extract_plan(json.dumps({"idx": 1, "query": "q", "plan": PLAN + [{}, {}]}))[:2])
    same_plan(extract_plan(json.dumps([{"org": "Austin"}, PLAN])))  # the annotated [query, plan] pair
    python_literal = "```python\n" + repr(PLAN) + "\n```"  # single quotes, not JSON
    same_plan(extract_plan(python_literal))
    same_plan(extract_plan("```\n" + repr({"plan": PLAN}) + "\n```"))
    same_plan(extract_plan("```\n" + repr([{"org": "Austin"}, PLAN]) + "\n```"))
    same_plan(extract_plan(repr(PLAN)))  # a whole reply that is str(plan), as Python scripts write it


def test_json_keys_and_values_are_normalised():
    messy = [{"Day": 1, "Current City": "from Austin to Chicago", "Transportation": DAY1["transportation"],
              "Breakfast": None, "Attractions": ["Navy Pier, Chicago", "Art Institute, Chicago;"],
              "Lunch": "Cafe One, Chicago", "Dinner": "Deli Two, Chicago"}]
    day = extract_plan(json.dumps(messy))[0]
    assert day["current_city"] == "from Austin to Chicago" and day["lunch"] == "Cafe One, Chicago"
    assert day["attraction"] == "Navy Pier, Chicago;Art Institute, Chicago;"
    assert "accommodation" not in day and day["breakfast"] is None  # as written: omitted, null


def test_missing_and_null_fields_are_kept_as_written():
    # The official scorer reads the keys as given: a day without a key fails Complete Information,
    # and a null is not "-" [quirk]. Filling either in would score a plan the model did not write.
    no_attraction = {k: v for k, v in DAY2.items() if k != "attraction"}
    parsed = extract_plan(json.dumps([DAY1, no_attraction, dict(DAY2, breakfast=None)]))
    assert "attraction" not in parsed[1] and parsed[1]["lunch"] == "Bistro Four, Chicago"
    assert parsed[2]["breakfast"] is None
    assert parsed[0] == DAY1


def test_last_plan_wins():
    draft = [dict(DAY1, lunch="Draft Cafe, Chicago"), DAY2]
    text = f"Draft:\n```json\n{json.dumps(draft)}\n```\nCorrected:\n```json\n{json.dumps(PLAN)}\n```"
    same_plan(extract_plan(text))
    twice = TEXT_PLAN.replace("Cafe One", "Draft Cafe") + "\nOn second thought:\n\n" + TEXT_PLAN
    same_plan(extract_plan(twice))


def test_a_json_plan_beats_a_text_plan_wherever_it_is():
    draft = TEXT_PLAN.replace("Cafe One", "Draft Cafe")
    same_plan(extract_plan(draft + "\nAs JSON:\n```json\n" + json.dumps(PLAN) + "\n```"))
    same_plan(extract_plan("```json\n" + json.dumps(PLAN) + "\n```\nIn words:\n" + draft))


def test_day_by_day_text_format():
    same_plan(extract_plan(TEXT_PLAN))
    parsed = extract_plan(TEXT_PLAN)
    assert [d["days"] for d in parsed] == [1, 2]


def test_messy_markdown_text_format():
    messy = ("Here is your itinerary.\n\n**Day 1 (March 1):**\n- **Current City:** from Austin to Chicago\n"
             f"- **Transportation:** {DAY1['transportation']}\n- **Breakfast:** -\n- **Attraction:** -\n"
             "- **Lunch:** Cafe One, Chicago\n- **Dinner**: Deli Two, Chicago\n"
             "- **Accommodation:** **Lake View Loft, Chicago**\n\n### Day 2\n"
             "* current city: Chicago\n* transportation: -\n* breakfast: Grill Three, Chicago\n"
             "* attractions: Navy Pier, Chicago;Art Institute, Chicago;\n* lunch: Bistro Four, Chicago\n"
             "* dinner: Diner Five, Chicago\n* accommodation: Lake View Loft, Chicago\n\nTotal: $1860.")
    same_plan(extract_plan(messy))


def test_missing_text_fields_stay_missing():
    parsed = extract_plan("Day 1:\nCurrent City: Chicago\nLunch: Cafe One, Chicago\n")
    assert parsed == [{"days": 1, "current_city": "Chicago", "lunch": "Cafe One, Chicago"}]


def test_days_with_only_a_day_number_are_kept():
    # The official submission format pads a short trip with {"days": N} entries after it ends.
    parsed = extract_plan(json.dumps({"idx": 1, "query": "q", "plan": PLAN + [{"days": 3}, {}]}))
    assert parsed[2:] == [{"days": 3}, {}]
    assert extract_plan(json.dumps([{"day": 1}, {"day": 2}])) is None  # day numbers alone are no plan


def test_no_plan_is_none():
    for text in ("", "   ", "I cannot help with that.", "The answer is 42.", "[]", "```json\n[]\n```",
                 '{"plan": []}', '[{"name": "not a day"}]', "[1, 2, 3]", "Day 1: we fly.\nDay 2: we rest.",
                 '```json\n[{"current_city": "Chicago", ', None):
        assert extract_plan(text) is None, text


# ---------------------------------------------------------------- scoring what the model wrote


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Database:
    return Database(write_database(tmp_path_factory.mktemp("tpdb")))


def test_a_reply_missing_a_key_fails_complete_information_as_officially(db):
    # The issue: the parser filled an omitted "attraction" with "-"... and the text format had the
    # same hole. The official scorer reads the keys as given, so the plan fails C8 (and is gated
    # out of the hard checks) while the checks that skip absent keys still pass.
    missing = copy.deepcopy(TP_PLAN[:3])
    del missing[1]["attraction"]
    for reply in ("```json\n" + json.dumps(missing) + "\n```", as_text(missing)):
        plan = extract_plan(reply)
        assert plan is not None and "attraction" not in plan[1]
        score = evaluate(plan, tp_query(), db)
        assert failures(plan, db=db) == {"cs_complete_information"}
        assert "hard_budget" not in score.metrics and score.correct is False
    # A missing accommodation also fails Minimum Nights (the official check needs the key), and a
    # missing transportation fails Non-conflicting Transportation and Within Sandbox: never a crash.
    no_stay = copy.deepcopy(TP_PLAN[:3])
    del no_stay[0]["accommodation"]
    assert failures(extract_plan(json.dumps(no_stay)), db=db) == {"cs_complete_information",
                                                                 "cs_minimum_nights_stay"}
    no_transport = copy.deepcopy(TP_PLAN[:3])
    del no_transport[1]["transportation"]
    assert failures(extract_plan(json.dumps(no_transport)), db=db) == {
        "cs_complete_information", "cs_non_conflicting_transportation", "cs_within_sandbox"}


def as_text(plan: list) -> str:
    """The day-by-day text format, writing only the keys a day has."""
    labels = {"current_city": "Current City", "transportation": "Transportation", "breakfast": "Breakfast",
              "attraction": "Attraction", "lunch": "Lunch", "dinner": "Dinner", "accommodation": "Accommodation"}
    lines = []
    for day in plan:
        lines.append(f"Day {day['days']}:")
        lines += [f"{label}: {day[key]}" for key, label in labels.items() if key in day]
    return "\n".join(lines)


# ---------------------------------------------------------------- reference information


def pandas_text(header: list[str], rows: list[list[str]], index: list[str] | None = None) -> str:
    """A table laid out like pandas' to_string: columns right-aligned, the index left-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    pad = max(map(len, index)) if index else 0
    lines = [" " * pad + "".join("  " + h.rjust(w) for h, w in zip(header, widths))]
    for number, row in enumerate(rows):
        left = index[number].ljust(pad) if index else ""
        lines.append(left + "".join("  " + c.rjust(w) for c, w in zip(row, widths)))
    return "\n".join(line[2:] if not index else line for line in lines)


RESTAURANTS = pandas_text(
    ["Name", "Average Cost", "Cuisines", "Aggregate Rating", "City"],
    [["Coco Bambu", "72", "Tea, French, Bakery, BBQ", "4.9", "Rockford"],
     ["Fernbank Museum | 3D Theater Cafe", "20", "American, BBQ, Seafood", "4.5", "Rockford"],
     ["Gajalee Sea Food", "49", "Bakery, BBQ", "3.9", "Rockford"]],
    index=["39", "251", "2470"])
FLIGHTS = (
    "Flight Number  Price DepTime ArrTime  ActualElapsedTime FlightDate OriginCityName DestCityName  Distance\n"
    "     F3573659     16   15:40   17:04 2 hours 24 minutes 2022-03-16 St. Petersburg     Rockford    1049.0")


def test_compact_tables_drop_the_index_and_redundant_columns():
    table = compact_table("Restaurants in Rockford", RESTAURANTS)
    assert table.split("\n") == [
        "Name | Average Cost | Cuisines | Aggregate Rating",
        "Coco Bambu | 72 | Tea, French, Bakery, BBQ | 4.9",
        '"Fernbank Museum | 3D Theater Cafe" | 20 | American, BBQ, Seafood | 4.5',
        "Gajalee Sea Food | 49 | Bakery, BBQ | 3.9",
    ]
    flights = compact_table("Flight from St. Petersburg to Rockford on 2022-03-16", FLIGHTS)
    # The price 16 also occurs in the date, but only description columns are ever dropped.
    assert flights.split("\n") == ["Flight Number | Price | DepTime | ArrTime", "F3573659 | 16 | 15:40 | 17:04"]


def test_unknown_tables_and_messages_pass_through():
    assert compact_table("x", "Mystery  Column\n  a  b") is None
    text = format_reference([
        {"Description": "Self-driving from A to B", "Content": "self-driving, from A to B, duration: 1 hour, cost: 5"},
        {"Description": "Weird", "Content": "Mystery  Column\n      a       b"},
        {"Description": "Restaurants in Rockford", "Content": RESTAURANTS}])
    assert "### Self-driving from A to B\nself-driving, from A to B, duration: 1 hour, cost: 5" in text
    assert "### Weird\nMystery  Column\n      a       b" in text
    assert "Coco Bambu | 72 |" in text
