"""Per-plan verdicts and the six official metrics (docs/travelplanner.md section 6).

A Score's metrics carry everything the aggregate needs, because the run summary rebuilds
Scores from results.jsonl: `delivered`, one 1.0/0.0 entry per constraint that was checked
(`cs_*` always for a delivered plan, `hard_*` only when gating let the hard checks run and the
check applies), and `hard_applicable`, the query's share of the hard micro denominator.
"""

from __future__ import annotations

from typing import Any

from econash.types import Score
from econash_plugins.tasks.travelplanner.constraints import COMMONSENSE, HARD, HARD_FIELDS, Query, safe, window
from econash_plugins.tasks.travelplanner.database import Database

CS_KEYS = tuple(f"cs_{name}" for name in COMMONSENSE)
HARD_KEYS = tuple(f"hard_{name}" for name in HARD)
METRICS = ("delivery_rate", "commonsense_micro", "commonsense_macro", "hard_micro", "hard_macro",
           "final_pass_rate")
#: The paper's labels, which the official per-constraint breakdown prints.
LABELS = {
    "cs_within_sandbox": "Within Sandbox", "cs_complete_information": "Complete Information",
    "cs_within_current_city": "Within Current City", "cs_reasonable_city_route": "Reasonable City Route",
    "cs_diverse_restaurants": "Diverse Restaurants", "cs_diverse_attractions": "Diverse Attractions",
    "cs_non_conflicting_transportation": "Non-conf. Transportation", "cs_minimum_nights_stay": "Minimum Nights Stay",
    "hard_budget": "Budget", "hard_room_rule": "Room Rule", "hard_cuisine": "Cuisine",
    "hard_room_type": "Room Type", "hard_transportation": "Transportation",
}


def hard_applicable(query: Query) -> int:
    """1 (budget) plus the query's non-empty local constraints: its hard micro denominator."""
    local = query.get("local_constraint") or {}
    return 1 + sum(1 for field in HARD_FIELDS.values() if local.get(field) not in (None, []))


def evaluate(plan: Any, query: Query, db: Database) -> Score:
    """Score one plan: score = share of applicable constraints met, correct = final pass."""
    applicable = hard_applicable(query)
    # Only a non-empty list is a delivered plan; anything else is a delivery failure.
    if not isinstance(plan, list) or not plan:
        return Score(correct=False, score=0.0, metrics={"delivered": 0.0, "hard_applicable": float(applicable)})
    days = window(plan, query)
    commonsense = {name: safe(check, days, query, db) is True for name, check in COMMONSENSE.items()}
    metrics = {"delivered": 1.0, "hard_applicable": float(applicable)}
    metrics.update({f"cs_{name}": float(ok) for name, ok in commonsense.items()})
    hard: dict[str, bool | None] = {}
    if commonsense["complete_information"] and commonsense["within_sandbox"]:
        hard = {name: safe(check, days, query, db) for name, check in HARD.items()}
        metrics.update({f"hard_{name}": float(ok) for name, ok in hard.items() if ok is not None})
    hard_passed = sum(ok is True for ok in hard.values())
    gated_in = bool(hard)
    correct = all(commonsense.values()) and gated_in and not any(ok is False for ok in hard.values())
    share = (sum(commonsense.values()) + hard_passed) / (len(COMMONSENSE) + applicable)
    return Score(correct=correct, score=min(share, 1.0), metrics=metrics)


def aggregate(scores: list[Score]) -> dict[str, float]:
    """The six official metrics as fractions, plus the mean per-plan score (the method's reward)."""
    n = len(scores)
    if n == 0:
        return {name: 0.0 for name in METRICS} | {"mean_score": 0.0}
    delivered = cs_passed = cs_all = hard_passed = hard_denominator = hard_all = final = 0
    for score in scores:
        m = score.metrics
        # A record without metrics (an episode that errored) counts as undelivered with the
        # minimum hard denominator of 1, the budget, since its query is unknown here.
        hard_denominator += int(m.get("hard_applicable", 1))
        if not m.get("delivered"):
            continue
        delivered += 1
        cs = [m.get(key, 0.0) == 1.0 for key in CS_KEYS]
        cs_passed += sum(cs)
        cs_all += all(cs)
        if "hard_budget" not in m:  # gated out: no hard result
            continue
        hard = [m[key] for key in HARD_KEYS if key in m]
        hard_passed += sum(v == 1.0 for v in hard)
        hard_ok = all(v == 1.0 for v in hard)
        hard_all += hard_ok
        final += hard_ok and all(cs)
    return {
        "delivery_rate": delivered / n,
        "commonsense_micro": cs_passed / (len(CS_KEYS) * n),
        "commonsense_macro": cs_all / n,
        "hard_micro": hard_passed / hard_denominator if hard_denominator else 0.0,
        "hard_macro": hard_all / n,
        "final_pass_rate": final / n,
        "mean_score": sum(s.score for s in scores) / n,
    }


def constraint_counts(scores: list[Score]) -> dict[str, dict[str, Any]]:
    """Per constraint, how many plans passed it out of how many it was checked on.

    The six metrics say how often plans fail; these counts say where. A commonsense check is
    checked on every delivered plan; a hard check only on plans gated in whose query asks for it.
    """
    counts: dict[str, dict[str, Any]] = {}
    for key in (*CS_KEYS, *HARD_KEYS):
        values = [score.metrics[key] for score in scores if key in score.metrics]
        counts[key] = {"label": LABELS[key], "passed": sum(v == 1.0 for v in values), "checked": len(values)}
    return counts
