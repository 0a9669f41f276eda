"""Turn model text into a plan: a list of day dicts in the official format, or None.

Two formats are accepted: JSON (in a code fence or bare; a Python literal inside a fence too)
and the day-by-day text format ("Day 1:" then "Current City: ..." lines). When a reply holds
several plans, the last one wins, because models tend to draft and then correct themselves.
A JSON plan anywhere in the reply beats a text plan.

Keys are normalised (spellings, case) but never invented: a day is scored as the model wrote it.
A key the model left out stays absent and a JSON null stays None, because the official scorer
reads them so (a missing key fails Complete Information, a null passes its per-day tests
[quirk]); filling in "-" would score a plan the model did not write.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

FIELDS = ("current_city", "transportation", "breakfast", "attraction", "lunch", "dinner", "accommodation")

# Spellings a model may use for the official keys, after lowercasing and joining words with "_".
_ALIASES = {
    "day": "day", "days": "days", "current_city": "current_city", "city": "current_city",
    "transportation": "transportation", "transport": "transportation",
    "breakfast": "breakfast", "lunch": "lunch", "dinner": "dinner",
    "attraction": "attraction", "attractions": "attraction",
    "accommodation": "accommodation", "accommodations": "accommodation", "hotel": "accommodation",
}
_FENCE = re.compile(r"```[ \t]*(?:json|python|javascript|js)?[ \t]*\n?(.*?)```", re.DOTALL | re.IGNORECASE)
_DAY_HEADER = re.compile(r"^[\s>#*_\-]*day\s*(\d+)\b[^:\n]*:?[\s*_]*$", re.IGNORECASE)
_OPENER = re.compile(r"[\[{]")
_FIELD_LINE = re.compile(
    r"^[\s>#*_\-]*(current\s+city|transportation|breakfast|attractions?|lunch|dinner|accommodations?)"
    r"[\s*_]*:[\s*_]*(.*?)[\s]*$", re.IGNORECASE)


def _key(name: str) -> str | None:
    return _ALIASES.get(re.sub(r"[\s\-]+", "_", name.strip().lower()))


def _value(value: Any) -> Any:
    """A list of attractions becomes the official 'A, X;B, X;' string; anything else is kept."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(v if v.endswith(";") else v + ";" for v in value) if value else "-"
    return value


def _has_fields(day: dict[str, Any]) -> bool:
    return any(field in day for field in FIELDS)


def _day(raw: dict[str, Any]) -> dict[str, Any] | None:
    """Normalise one day's keys; None if it has no known key at all (and is not `{}`).

    A day holding only its number is kept: the official submission format pads a short trip so.
    """
    if not raw:
        return {}
    day: dict[str, Any] = {}
    for name, value in raw.items():
        key = _key(str(name))
        if key is not None and key not in day:
            day[key] = _value(value)
    return day or None


def _as_plan(data: Any) -> list[dict[str, Any]] | None:
    """A list of day dicts, found at the top or under a key such as 'plan'; None if this is no plan."""
    if isinstance(data, dict):
        for key in ("plan", "itinerary", "days", "trip"):
            if isinstance(data.get(key), list):
                return _as_plan(data[key])
        return None  # a lone day is not a plan: it is usually a fragment of a broken list
    if not isinstance(data, list) or not data:
        return None
    if len(data) == 2 and isinstance(data[0], dict) and isinstance(data[1], list):
        return _as_plan(data[1])  # the annotated format [query, plan]
    if not all(isinstance(item, dict) for item in data):
        return None
    days = [_day(item) for item in data]
    if any(day is None for day in days) or not any(_has_fields(day) for day in days if day):
        return None
    return days  # type: ignore[return-value]


def _decode(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def _json_plans(text: str) -> list[list[dict[str, Any]]]:
    plans = []
    for block in _FENCE.findall(text):
        plan = _as_plan(_decode(block.strip()))
        if plan is not None:
            plans.append(plan)
    if plans:
        return plans
    whole = _as_plan(_decode(text.strip()))  # the reply is one value, e.g. str(plan) from a Python script
    if whole is not None:
        return [whole]
    # No fenced plan: try every bare JSON value that starts at a '[' or '{'.
    decoder = json.JSONDecoder()
    index = 0
    while True:
        match = _OPENER.search(text, index)
        if match is None:
            break
        try:
            data, end = decoder.raw_decode(text, match.start())
        except ValueError:
            index = match.start() + 1
            continue
        plan = _as_plan(data)
        if plan is not None:
            plans.append(plan)
            index = end
        else:
            index = match.start() + 1
    return plans


def _text_plans(text: str) -> list[list[dict[str, Any]]]:
    plans: list[list[dict[str, Any]]] = []
    days: list[dict[str, Any]] = []
    for line in text.splitlines():
        header = _DAY_HEADER.match(line)
        if header:
            if int(header.group(1)) == 1 and days:
                plans.append(days)  # "Day 1" again: a new plan starts
                days = []
            days.append({"days": int(header.group(1))})
            continue
        field = _FIELD_LINE.match(line)
        if field and days:
            key = _key(field.group(1))
            value = field.group(2).strip()
            if value.endswith("**"):  # the end of "**Label:** **value**"
                value = value[:-2].strip()
            if key is not None and key not in days[-1]:
                days[-1][key] = value
    if days:
        plans.append(days)
    return [plan for plan in plans if any(_has_fields(day) for day in plan)]


def extract_plan(text: str) -> list[dict[str, Any]] | None:
    """The last plan in the reply, JSON preferred; None when there is none (delivery failure)."""
    if not isinstance(text, str) or not text.strip():
        return None
    plans = _json_plans(text) or _text_plans(text)
    return plans[-1] if plans else None
