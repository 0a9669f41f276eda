"""A run directory's files read as what they are: data on a disk that may have been damaged.

results.jsonl and results_untrained.jsonl decide what a resumed run skips and what the summary
counts, so every line must be a result record. A crash can only cut the last line (the files are
appended line by line), and `econash resume` cuts that tail off (econash.rundir.repair_jsonl). Any
other bad line (no ``id``, not JSON, followed by good lines) was put there by something else: econash
neither guesses what it was nor drops the good lines after it, but names the file and the line.

summary.json is derived: a damaged one is recomputed by `econash resume` from the results files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, ValidationError

from econash.errors import DamagedRunError
from econash.run_records import ResultRecord, Summary


class _ResultLine(ResultRecord):
    """A result record as read back: the fields econash reads must be there and well typed; fields
    it does not know (a newer or older econash wrote them) are kept."""

    model_config = ConfigDict(extra="allow")


def _parses(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def read_results(path: Path) -> list[dict[str, Any]]:
    """Every result record of a results file, in order, without the half-written tail a crash leaves.

    Raises DamagedRunError naming the file and the line for any other line that is not a result record.
    """
    if not path.exists():
        return []
    lines = path.read_bytes().splitlines(keepends=True)
    # The tail a crash can leave: from the first unfinished or unparseable line, when no line after it parses.
    end = next((i for i, line in enumerate(lines) if not line.endswith(b"\n") or (line.strip() and not _parses(line))),
               len(lines))
    if any(line.strip() and _parses(line) for line in lines[end + 1:]):
        raise _not_a_record(path, end + 1, "it is not JSON")
    rows = []
    for number, line in enumerate(lines[:end], start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not isinstance(row, dict):
            raise _not_a_record(path, number, "it is not a JSON object")
        if not isinstance(row.get("id"), str) or not row["id"]:
            raise _not_a_record(path, number, "it has no 'id'")
        try:
            _ResultLine.model_validate(row)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            raise _not_a_record(path, number, f"{where}: {error['msg']}") from None
        rows.append(row)
    return rows


def _not_a_record(path: Path, number: int, reason: str) -> DamagedRunError:
    return DamagedRunError(f"Line {number} of '{path}' is not a result record ({reason}); fix or delete that line "
                           f"(`econash resume {path.parent}` then answers its question again).")


def read_summary_file(path: Path) -> Summary:
    """summary.json, or DamagedRunError saying that `econash resume` recomputes it."""
    try:
        return Summary.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        error = exc.errors()[0]
        reason = "it is not JSON" if error["type"] == "json_invalid" else "it is not an econash summary"
        raise DamagedRunError(f"'{path}' is damaged ({reason}); `econash resume {path.parent}` recomputes it from "
                              "the results.") from None
