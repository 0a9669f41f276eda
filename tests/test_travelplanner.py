"""TravelPlanner constraints, one by one, on hand-made plans against a tiny hand-made database.

Every constraint has at least one plan that passes and one that fails it, including the
official scorer's quirks (docs/travelplanner.md); these tests need no shared data.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from econash.types import Score
from econash_plugins.tasks.travelplanner.constraints import (
    attraction_items, from_to, name_city, strip_paren, trip_cost, window,
)
from econash_plugins.tasks.travelplanner.database import Database
from econash_plugins.tasks.travelplanner.metrics import aggregate, evaluate

FLIGHT_HEADER = "Flight Number,Price,DepTime,ArrTime,ActualElapsedTime,FlightDate,OriginCityName,DestCityName,Distance"
TABLES = {
    "background/citySet_with_states.txt":
        "Austin\tTexas\nDallas\tTexas\nChicago\tIllinois\nPeoria\tIllinois\nRockford\tIllinois",
    "restaurants/clean_restaurant_2022.csv": """\
,Name,City,Cuisines,Average Cost,Aggregate Rating
0,Cafe One,Chicago,"Italian, Cafe",20,4.0
1,Deli Two,Chicago,"Chinese, Bakery",30,4.1
2,Grill Three,Chicago,"Mexican, BBQ",40,3.9
3,Bistro Four,Chicago,"French, Tea",50,4.5
4,Diner Five,Chicago,"American, Fast Food",25,3.0
5,Noodle Six,Chicago,"Chinese, Tea",15,3.5
6,Subway,Chicago,Pizza,42,3.0
7,Subway,Chicago,Tea,26,3.8
8,Austin Eats,Austin,"Indian, Cafe",10,4.0
9,Peoria Pasta,Peoria,Italian,12,4.0
10,Peoria Pho,Peoria,"Chinese, Tea",14,4.0
11,Peoria Pie,Peoria,Bakery,16,4.0
12,Peoria Grill,Peoria,BBQ,18,4.0
13,Peoria Deli,Peoria,American,11,4.0
14,Peoria Wok,Peoria,Chinese,13,4.0
""",
    "accommodations/clean_accommodations_2022.csv": """\
,NAME,room type,price,minimum nights,review rate number,house_rules,maximum occupancy,city
0,Lake View Loft,Entire home/apt,200.0,1.0,4.0,No smoking,4,Chicago
1,Cozy Shared Bunk,Shared room,50.0,1.0,3.0,No parties,2,Chicago
2,Long Stay Suite,Private room,100.0,3.0,4.0,No pets & No visitors,1,Chicago
3,Rule Free Room,Private room,80.0,1.0,4.0,,2,Chicago
4,Twin Stay A,Private room,90.0,5.0,4.0,No pets,2,Chicago
5,Twin Stay AB,Private room,95.0,5.0,4.0,No pets,2,Chicago
6,Peoria Place,Entire home/apt,120.0,1.0,4.0,No pets,4,Peoria
""",
    "attractions/attractions.csv": """\
Name,Latitude,Longitude,Address,Phone,Website,City
Navy Pier,41.89,-87.60,"600 E Grand Ave, Chicago",(312) 000-0000,https://navypier.org,Chicago
Art Institute,41.88,-87.62,"111 S Michigan Ave, Chicago",(312) 000-0001,https://artic.edu,Chicago
Millennium Park,41.88,-87.62,"201 E Randolph St, Chicago",(312) 000-0002,https://example.org,Chicago
Peoria Zoo,40.72,-89.57,"2320 N Prospect Rd, Peoria",(309) 000-0000,https://example.org,Peoria
Peoria Riverfront,40.69,-89.58,"200 SW Water St, Peoria",(309) 000-0001,https://example.org,Peoria
""",
    "flights/flights_subset_from_train.csv": FLIGHT_HEADER + """
F100,300,08:00,11:00,3 hours 0 minutes,2022-03-01,Austin,Chicago,1576.0
F101,250,18:00,21:00,3 hours 0 minutes,2022-03-03,Chicago,Austin,1576.0
F102,200,18:00,21:00,3 hours 0 minutes,2022-03-05,Peoria,Austin,1400.0
""",
    "googleDistanceMatrix/distance.csv": """\
origin,destination,cost,duration,distance
Austin,Chicago,,17 hours 30 mins,"1,800 km"
Chicago,Austin,,17 hours 35 mins,"1,810 km"
Chicago,Peoria,,2 hours 40 mins,270 km
Chicago,Peoria,,9 hours 0 mins,999 km
Peoria,Austin,,15 hours 0 mins,"1,500 km"
Chicago,Rockford,,1 day 2 hours,"2,000 km"
Chicago,Dallas,,,
""",
}


def write_database(root: Path) -> Path:
    for relative, text in TABLES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Database:
    return Database(write_database(tmp_path_factory.mktemp("tpdb")))


def query(**changes) -> dict:
    base = {"org": "Austin", "dest": "Chicago", "days": 3, "visiting_city_number": 1, "people_number": 2,
            "budget": 2000, "level": "easy",
            "local_constraint": {"house rule": None, "cuisine": None, "room type": None, "transportation": None}}
    local = changes.pop("local", {})
    base.update(changes)
    base["local_constraint"] = {**base["local_constraint"], **local}
    return base


FLY_OUT = "Flight Number: F100, from Austin to Chicago, Departure Time: 08:00, Arrival Time: 11:00"
FLY_BACK = "Flight Number: F101, from Chicago to Austin, Departure Time: 18:00, Arrival Time: 21:00"
PLAN = [
    {"days": 1, "current_city": "from Austin to Chicago", "transportation": FLY_OUT, "breakfast": "-",
     "attraction": "-", "lunch": "Cafe One, Chicago", "dinner": "Deli Two, Chicago",
     "accommodation": "Lake View Loft, Chicago"},
    {"days": 2, "current_city": "Chicago", "transportation": "-", "breakfast": "Grill Three, Chicago",
     "attraction": "Navy Pier, Chicago;Art Institute, Chicago;", "lunch": "Bistro Four, Chicago",
     "dinner": "Diner Five, Chicago", "accommodation": "Lake View Loft, Chicago"},
    {"days": 3, "current_city": "from Chicago to Austin", "transportation": FLY_BACK,
     "breakfast": "Noodle Six, Chicago", "attraction": "Millennium Park, Chicago;", "lunch": "-",
     "dinner": "-", "accommodation": "-"},
    {}, {}, {}, {},
]
# 5 days in Illinois: Chicago twice, Peoria twice, by taxi between them (taxi with flights is fine).
PLAN5 = [
    PLAN[0], PLAN[1],
    {"days": 3, "current_city": "from Chicago to Peoria", "transportation": "Taxi, from Chicago to Peoria",
     "breakfast": "Noodle Six, Chicago", "attraction": "Peoria Zoo, Peoria;", "lunch": "Peoria Pasta, Peoria",
     "dinner": "Peoria Pho, Peoria", "accommodation": "Peoria Place, Peoria"},
    {"days": 4, "current_city": "Peoria", "transportation": "-", "breakfast": "Peoria Pie, Peoria",
     "attraction": "Peoria Riverfront, Peoria;", "lunch": "Peoria Grill, Peoria", "dinner": "Peoria Deli, Peoria",
     "accommodation": "Peoria Place, Peoria"},
    {"days": 5, "current_city": "from Peoria to Austin",
     "transportation": "Flight Number: F102, from Peoria to Austin, Departure Time: 18:00, Arrival Time: 21:00",
     "breakfast": "Peoria Wok, Peoria", "attraction": "-", "lunch": "-", "dinner": "-", "accommodation": "-"},
]
QUERY5 = {"dest": "Illinois", "days": 5, "visiting_city_number": 2, "budget": 10_000}


def mutated(plan: list, day: int, **fields) -> list:
    plan = copy.deepcopy(plan)
    plan[day - 1].update(fields)
    return plan


def failures(plan, q=None, db=None) -> set[str]:
    score = evaluate(plan, q or query(), db)
    return {key for key, value in score.metrics.items() if value == 0.0}


def test_base_plans_pass_everything(db):
    for plan, q in ((PLAN, query()), (PLAN5, query(**QUERY5))):
        score = evaluate(plan, q, db)
        assert score.correct is True and score.score == 1.0, score.metrics
        assert sum(k.startswith("cs_") for k in score.metrics) == 8
        assert score.metrics["hard_budget"] == 1.0 and score.metrics["delivered"] == 1.0


# ---------------------------------------------------------------- parsing primitives


def test_primitives_follow_the_spec():
    assert strip_paren("Moab(Utah)") == "Moab" and strip_paren("Moab (Utah)") == "Moab "
    assert strip_paren("Moab(Utah") == "Moab(Utah"
    assert from_to("from Santa Rosa to Toledo, x") == ("Santa Rosa", "Toledo")
    assert from_to("From A to B") == (None, None)
    assert from_to("Self-driving, from A to B , duration") == ("A", "B ")
    assert name_city("Amazing apartment near museum, gardens & park!, Pensacola") == (
        "Amazing apartment near museum, gardens & park!", "Pensacola")
    assert name_city("Cafe X, Rockford.") == ("Cafe X", "Rockford.")
    assert name_city("Cafe X, Salt Lake City(Utah) ") == ("Cafe X", "Salt Lake City")
    assert name_city("No comma") == ("-", "-") and name_city("Trailing,") == ("-", "-")
    assert attraction_items("A, X;B, X;") == ["A, X", "B, X"]
    assert attraction_items("A, X;B, X") == ["A, X"] and attraction_items("A, X") == []


# ---------------------------------------------------------------- C1 reasonable city route


def test_c1_city_route(db):
    assert "cs_reasonable_city_route" in failures(mutated(PLAN, 1, current_city="from Dallas to Chicago"), db=db)
    assert "cs_reasonable_city_route" in failures(
        mutated(PLAN, 3, current_city="from Chicago to Dallas", transportation="-"), db=db)  # not a loop
    # A closed loop that starts elsewhere than the origin.
    elsewhere = mutated(mutated(PLAN, 1, current_city="from Dallas to Chicago"), 3,
                        current_city="from Chicago to Dallas")
    assert "cs_reasonable_city_route" in failures(elsewhere, db=db)
    assert "cs_reasonable_city_route" not in failures(elsewhere, query(org="Dallas"), db)
    gotham = mutated(mutated(mutated(PLAN, 1, current_city="from Austin to Gotham"), 2, current_city="Gotham"),
                     3, current_city="from Gotham to Austin")
    assert "cs_reasonable_city_route" in failures(gotham, db=db)  # no such city
    # "City (State)" keeps a trailing space after P1 and is no known city.
    assert "cs_reasonable_city_route" in failures(mutated(PLAN, 2, current_city="Chicago (Illinois)"), db=db)
    assert "cs_reasonable_city_route" not in failures(mutated(PLAN, 2, current_city="Chicago(Illinois)"), db=db)
    q5 = query(**QUERY5)
    assert failures(PLAN5, q5, db) == set()
    # Dallas is in Texas, not in the destination state Illinois.
    texas = mutated(PLAN5, 3, current_city="from Chicago to Dallas")
    texas = mutated(texas, 4, current_city="Dallas")
    texas = mutated(texas, 5, current_city="from Dallas to Austin")
    assert "cs_reasonable_city_route" in failures(texas, q5, db)
    # A one-day stop inside the trip is not a stay: Chicago appears once between Austin and Peoria.
    hop = [mutated(PLAN5, 2, current_city="Peoria")[1], mutated(PLAN5, 3, current_city="Peoria")[2]]
    assert "cs_reasonable_city_route" in failures(PLAN5[:1] + hop + PLAN5[3:], q5, db)
    # Going back to a city already left is a revisit.
    revisit = mutated(PLAN5, 4, current_city="from Peoria to Chicago")
    revisit = mutated(revisit, 5, current_city="from Chicago to Austin")
    assert "cs_reasonable_city_route" in failures(revisit, q5, db)


# ---------------------------------------------------------------- C2 / C3 diversity


def test_c2_diverse_restaurants(db):
    assert failures(mutated(PLAN, 2, lunch="Cafe One, Chicago"), db=db) == {"cs_diverse_restaurants"}
    # Raw strings are compared: a trailing space makes a "different" restaurant [quirk].
    assert "cs_diverse_restaurants" not in failures(mutated(PLAN, 2, lunch="Cafe One, Chicago "), db=db)


def test_c3_diverse_attractions(db):
    assert failures(mutated(PLAN, 3, attraction="Navy Pier, Chicago;"), db=db) == {"cs_diverse_attractions"}
    # Without the final ';' the item is dropped and never compared (nor looked up) [quirk].
    assert failures(mutated(PLAN, 3, attraction="Millennium Park, Chicago;Navy Pier, Chicago"), db=db) == set()


# ---------------------------------------------------------------- C4 minimum nights


def test_c4_minimum_nights(db):
    short = mutated(mutated(PLAN, 1, accommodation="Long Stay Suite, Chicago"), 2,
                    accommodation="Long Stay Suite, Chicago")
    assert "cs_minimum_nights_stay" in failures(short, db=db)  # 2 nights < 3
    three_nights = [mutated(short, 1)[0], mutated(short, 2)[1], mutated(short, 2, days=3)[1],
                    mutated(PLAN, 3, days=4)[2]]
    assert "cs_minimum_nights_stay" not in failures(three_nights, query(days=4), db)
    # "Twin Stay A" matches two rows ("Twin Stay A", "Twin Stay AB"): the run is not checked [quirk].
    twin = mutated(PLAN, 2, accommodation="Twin Stay A, Chicago")
    assert "cs_minimum_nights_stay" not in failures(twin, db=db)
    assert "cs_minimum_nights_stay" in failures(mutated(PLAN, 2, accommodation="Twin Stay AB, Chicago"), db=db)
    missing = copy.deepcopy(PLAN)
    del missing[1]["accommodation"]
    assert "cs_minimum_nights_stay" in failures(missing, db=db)


# ---------------------------------------------------------------- C5 transport conflicts


def test_c5_non_conflicting_transportation(db):
    assert "cs_non_conflicting_transportation" in failures(mutated(PLAN, 1, transportation="-"), db=db)
    drive = "Self-driving, from Chicago to Peoria"
    assert "cs_non_conflicting_transportation" in failures(mutated(PLAN5, 3, transportation=drive),
                                                           query(**QUERY5), db)
    # Taxi together with flights is allowed (PLAN5 passes).
    assert "cs_non_conflicting_transportation" not in failures(PLAN5, query(**QUERY5), db)


# ---------------------------------------------------------------- C6 within current city


def test_c6_within_current_city(db):
    # A travel day is checked for real: a Peoria dinner on a day from Austin to Chicago fails.
    assert "cs_within_current_city" in failures(mutated(PLAN, 1, dinner="Peoria Pasta, Peoria"), db=db)
    assert "cs_within_current_city" in failures(mutated(PLAN, 1, accommodation="Peoria Place, Peoria"), db=db)
    # Transport must name both cities of a travel day (C7 then takes them from current_city).
    unnamed = mutated(PLAN, 1, transportation="Flight Number: F100, Departure Time: 08:00")
    assert failures(unnamed, db=db) == {"cs_within_current_city"}
    # A stay day only needs one character of the city name in each value [quirk].
    assert "cs_within_current_city" not in failures(mutated(PLAN, 2, dinner="Peoria Pasta, Peoria"), db=db)
    assert "cs_within_current_city" in failures(mutated(PLAN, 2, dinner="zzz, zzz"), db=db)


# ---------------------------------------------------------------- C7 within sandbox and gating


def test_c7_within_sandbox_and_hard_gating(db):
    for day, fields in ((2, {"lunch": "Nowhere Cafe, Chicago"}),
                        (2, {"lunch": "Cafe One, Chicago."}),  # city "Chicago." never matches
                        (2, {"attraction": "Navy Pier, Chicago;Space Needle, Chicago;"}),
                        (2, {"accommodation": "Rule Free Room, Chicago"}),  # dropped: empty house_rules
                        (1, {"transportation": FLY_OUT.replace("F100", "F999")}),
                        (1, {"transportation": FLY_OUT.replace("Austin to Chicago", "Chicago to Austin")}),
                        (1, {"transportation": "Taxi, from Austin to Dallas"}),  # no distance row
                        (1, {"transportation": "flight number F100 from Austin to Chicago"})):  # [crash] -> fail
        score = evaluate(mutated(PLAN, day, **fields), query(), db)
        assert score.metrics["cs_within_sandbox"] == 0.0, fields
        assert not any(k.startswith("hard_") and k != "hard_applicable" for k in score.metrics), fields
        assert score.correct is False
    five = query(**QUERY5)
    far = mutated(PLAN5, 3, current_city="from Chicago to Rockford", transportation="Taxi, from Chicago to Rockford")
    assert "cs_within_sandbox" in failures(far, five, db)  # duration of a day or more: no cost
    # Unchecked or loosely matched entries pass: a walk, and "Sub" (a substring of "Subway").
    walk = mutated(PLAN5, 3, transportation="Walk, from Chicago to Peoria")
    assert "cs_within_sandbox" not in failures(walk, five, db)
    assert "cs_within_sandbox" not in failures(mutated(PLAN, 3, breakfast="Sub, Chicago"), db=db)


# ---------------------------------------------------------------- C8 complete information


def test_c8_complete_information(db):
    assert "cs_complete_information" in failures(PLAN[:2], db=db)  # too short
    assert "cs_complete_information" in failures(mutated(PLAN, 2, attraction="-"), db=db)  # stay day, no sights
    assert "cs_complete_information" in failures(mutated(PLAN, 2, dinner=""), db=db)
    assert "cs_complete_information" in failures(mutated(PLAN, 1, accommodation="-"), db=db)
    assert failures(mutated(PLAN, 3, transportation="-"), db=db) == {"cs_complete_information"}
    for day, key in ((2, "lunch"), (1, "attraction")):
        missing = copy.deepcopy(PLAN)
        del missing[day - 1][key]
        assert "cs_complete_information" in failures(missing, db=db), key
    assert "cs_complete_information" in failures(PLAN, query(visiting_city_number=2), db)
    # A null is neither "" nor "-", so it passes the per-day tests [quirk].
    assert "cs_complete_information" not in failures(mutated(PLAN, 2, attraction=None), db=db)
    # The sentinel text marks a day as not filled in.
    sentinel = mutated(PLAN, 3, current_city="You don't need to fill in the information for this or later days.")
    assert "cs_complete_information" in failures(sentinel, db=db)


# ---------------------------------------------------------------- hard constraints


def test_h1_budget_is_inclusive_and_prices_first_matches(db):
    days = window(PLAN, query())
    # Flights (300 + 250) x 2 people, meals (20+30+40+50+25+15) x 2, the loft 200 x ceil(2/4) x 2 nights.
    assert trip_cost(days, query(), db) == 1100 + 360 + 400
    assert evaluate(PLAN, query(budget=1860), db).metrics["hard_budget"] == 1.0
    assert evaluate(PLAN, query(budget=1859), db).metrics["hard_budget"] == 0.0
    # "Sub" is priced from Chicago's first Subway row (42), not the second (26).
    sub = mutated(PLAN, 3, breakfast="Sub, Chicago")
    assert trip_cost(window(sub, query()), query(), db) == 1860 + (42 - 15) * 2
    # Six people: flights x6, meals x6, the loft ceil(6/4) = 2 units a night.
    six = query(people_number=6)
    assert trip_cost(window(PLAN, six), six, db) == 550 * 6 + 180 * 6 + 200 * 2 * 2
    # Taxi: 270 km x ceil(P/4) cars; self-driving: floor(0.05 x 270) = 13 x ceil(P/5) cars.
    driven = mutated(PLAN5, 3, transportation="Self-driving, from Chicago to Peoria")
    for people, taxis, cars in ((4, 1, 1), (5, 2, 1), (6, 2, 2)):
        q = query(**QUERY5, people_number=people)
        taxi_cost, drive_cost = trip_cost(window(PLAN5, q), q, db), trip_cost(window(driven, q), q, db)
        assert taxi_cost - drive_cost == 270 * taxis - 13 * cars


def test_h2_room_rule(db):
    assert evaluate(PLAN, query(local={"house rule": "smoking"}), db).metrics["hard_room_rule"] == 0.0
    assert evaluate(PLAN, query(local={"house rule": "pets"}), db).metrics["hard_room_rule"] == 1.0
    assert "hard_room_rule" not in evaluate(PLAN, query(), db).metrics  # not applicable


def test_h3_cuisine(db):
    assert evaluate(PLAN, query(local={"cuisine": ["Italian", "Chinese"]}), db).metrics["hard_cuisine"] == 1.0
    assert evaluate(PLAN, query(local={"cuisine": ["Indian"]}), db).metrics["hard_cuisine"] == 0.0
    # A meal in the origin city skips the rest of that day, so the Italian lunch after it is lost [quirk].
    origin_first = mutated(PLAN, 1, breakfast="Austin Eats, Austin")
    score = evaluate(origin_first, query(local={"cuisine": ["Italian"]}), db)
    assert score.metrics["hard_cuisine"] == 0.0
    assert "hard_cuisine" not in evaluate(PLAN, query(local={"cuisine": []}), db).metrics


def test_h4_room_type(db):
    for wanted, ok in (("entire room", 1.0), ("not shared room", 1.0), ("private room", 0.0), ("shared room", 0.0)):
        assert evaluate(PLAN, query(local={"room type": wanted}), db).metrics["hard_room_type"] == ok, wanted
    shared = mutated(mutated(PLAN, 1, accommodation="Cozy Shared Bunk, Chicago"), 2,
                     accommodation="Cozy Shared Bunk, Chicago")
    assert evaluate(shared, query(local={"room type": "shared room"}), db).metrics["hard_room_type"] == 1.0
    assert evaluate(shared, query(local={"room type": "not shared room"}), db).metrics["hard_room_type"] == 0.0


def test_h5_transportation(db):
    assert evaluate(PLAN, query(local={"transportation": "no flight"}), db).metrics["hard_transportation"] == 0.0
    assert evaluate(PLAN, query(local={"transportation": "no self-driving"}), db).metrics["hard_transportation"] == 1.0
    # Case-sensitive: a lowercase "flight" is not a Flight.
    lower = mutated(PLAN, 1, transportation=FLY_OUT.replace("Flight Number", "flight Number"))
    assert evaluate(lower, query(local={"transportation": "no flight"}), db).metrics.get("hard_transportation") != 0.0


# ---------------------------------------------------------------- scores and metrics


def test_score_is_the_share_of_applicable_constraints(db):
    q = query(local={"house rule": "smoking", "room type": "entire room"})  # 8 + 3 applicable
    score = evaluate(PLAN, q, db)
    assert score.correct is False and score.score == pytest.approx(10 / 11)
    repeat = evaluate(mutated(PLAN, 2, lunch="Cafe One, Chicago"), query(), db)
    assert repeat.correct is False and repeat.metrics["hard_budget"] == 1.0  # hard passes, commonsense not
    gated_out = evaluate(mutated(PLAN, 2, lunch="Nowhere Cafe, Chicago"), q, db)
    assert gated_out.score == pytest.approx(7 / 11) and gated_out.metrics["hard_applicable"] == 3.0
    for undelivered in (None, [], {}, "plan"):
        score = evaluate(undelivered, q, db)
        assert score.score == 0.0 and score.correct is False
        assert score.metrics == {"delivered": 0.0, "hard_applicable": 3.0}


def test_window_ignores_days_beyond_the_query(db):
    extra = copy.deepcopy(PLAN[:3]) + [{"days": 4, "current_city": "Gotham", "lunch": "Cafe One, Chicago"}]
    assert evaluate(extra, query(), db).correct is True


def _score(cs: int, hard: dict | None, applicable: int, delivered: bool = True) -> Score:
    names = ["reasonable_city_route", "diverse_restaurants", "diverse_attractions", "minimum_nights_stay",
             "non_conflicting_transportation", "within_current_city", "within_sandbox", "complete_information"]
    metrics = {"delivered": float(delivered), "hard_applicable": float(applicable)}
    if delivered:
        metrics.update({f"cs_{n}": float(i < cs) for i, n in enumerate(names)})
    metrics.update({f"hard_{k}": v for k, v in (hard or {}).items()})
    return Score(correct=False, score=0.0, metrics=metrics)


def test_aggregate_matches_a_hand_computed_example():
    scores = [
        _score(8, {"budget": 1.0, "cuisine": 1.0}, 2),   # passes everything
        _score(8, {"budget": 0.0, "room_rule": 1.0}, 2),  # commonsense only
        _score(7, {"budget": 1.0}, 1),                     # hard only (one commonsense failure)
        _score(6, None, 4),                                # gated out: no hard result
        _score(0, None, 2, delivered=False),               # nothing delivered
    ]
    metrics = aggregate(scores)
    assert metrics["delivery_rate"] == 4 / 5
    assert metrics["commonsense_micro"] == (8 + 8 + 7 + 6) / 40
    assert metrics["commonsense_macro"] == 2 / 5
    assert metrics["hard_micro"] == (2 + 1 + 1) / (2 + 2 + 1 + 4 + 2)
    assert metrics["hard_macro"] == 2 / 5
    assert metrics["final_pass_rate"] == 1 / 5
    # A record that errored before scoring has no metrics: undelivered, budget-only denominator.
    errored = aggregate([Score(correct=False, score=0.0)])
    assert errored["delivery_rate"] == 0.0 and errored["hard_micro"] == 0.0
    assert aggregate([])["final_pass_rate"] == 0.0
