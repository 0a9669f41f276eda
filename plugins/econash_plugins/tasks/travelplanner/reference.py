"""Compact rendering of a query's reference information for the planner's prompt.

The dataset stores each table as pandas' fixed-width text, padded with spaces and carrying
columns a planner does not need (coordinates, addresses, phone numbers). Rewriting each table as
" | "-separated rows without those columns roughly halves the prompt. Columns are found from the
header line, since pandas right-aligns every column to the end of its header label; a table
whose header is not recognised is passed through unchanged rather than guessed at.
"""

from __future__ import annotations

import re
from typing import Any

# Every column name in the reference tables (the database CSV headers), longest first so
# multi-word labels such as "Flight Number" win over any shorter prefix.
KNOWN_COLUMNS = sorted({
    "Name", "Latitude", "Longitude", "Address", "Phone", "Website", "City",
    "Average Cost", "Cuisines", "Aggregate Rating",
    "NAME", "price", "room type", "house_rules", "minimum nights", "maximum occupancy",
    "review rate number", "city",
    "Flight Number", "Price", "DepTime", "ArrTime", "ActualElapsedTime", "FlightDate",
    "OriginCityName", "DestCityName", "Distance",
}, key=len, reverse=True)
# Columns that cost tokens and help no plan.
DROPPED = {"Latitude", "Longitude", "Address", "Phone", "Website", "Distance", "ActualElapsedTime"}
# Columns that repeat the table's description ("Flight from A to B on D", "Restaurants in C").
CONTEXT = {"City", "city", "FlightDate", "OriginCityName", "DestCityName"}

_INDEX = re.compile(r"\d+ ")


def _columns(header: str) -> list[tuple[str, int]] | None:
    """(label, end position) of each header label, or None if a label is unknown."""
    columns, position = [], 0
    while True:
        while position < len(header) and header[position] == " ":
            position += 1
        if position >= len(header):
            return columns or None
        label = next((c for c in KNOWN_COLUMNS if header.startswith(c, position)), None)
        if label is None:
            return None
        position += len(label)
        columns.append((label, position))


def _strip_index(lines: list[str]) -> list[str]:
    """Remove pandas' left-aligned row index (restaurant tables have one) when every row has it."""
    starts = [_INDEX.match(line) for line in lines]
    if not lines or not all(starts):
        return lines
    width = max(m.end() - 1 for m in starts if m)
    if not all(len(line) > width and line[width] == " " for line in lines):
        return lines
    return [" " * width + line[width:] for line in lines]


def compact_table(description: str, content: str) -> str | None:
    """The table as 'a | b' rows without unneeded columns, or None if it does not parse."""
    lines = [line for line in content.split("\n") if line.strip()]
    if len(lines) < 2:
        return None
    columns = _columns(lines[0])
    if columns is None:
        return None
    rows = []
    for line in _strip_index(lines[1:]):
        cells, start = [], 0
        for number, (_, end) in enumerate(columns):
            cells.append((line[start:] if number == len(columns) - 1 else line[start:end]).strip())
            start = end
        rows.append(cells)
    # Drop what the description already says for every row (its city, route or date).
    keep = [i for i, (label, _) in enumerate(columns) if label not in DROPPED
            and not (label in CONTEXT and len({r[i] for r in rows}) == 1 and rows[0][i] in description)]
    out = [" | ".join(columns[i][0] for i in keep)]
    out += [" | ".join(_cell(row[i]) for i in keep) for row in rows]
    return "\n".join(out)


def _cell(text: str) -> str:
    # A few names contain "|" themselves; quoting keeps the columns readable.
    return f'"{text}"' if "|" in text else text


def format_reference(reference: list[dict[str, Any]]) -> str:
    """All reference entries, each as its description, then its compact table or message."""
    parts = []
    for entry in reference:
        description = str(entry.get("Description", "")).strip()
        content = str(entry.get("Content", ""))
        table = compact_table(description, content)  # needs the header's leading spaces intact
        parts.append(f"### {description}\n{table if table is not None else content.strip()}")
    return "\n\n".join(parts)
