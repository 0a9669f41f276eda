"""Finding and reading TravelPlanner queries: a local JSONL copy or the Hugging Face hub.

Sources, in order: --data (a JSONL file, or a folder holding travelplanner/NAME or NAME, where NAME
is train.jsonl, validation.jsonl or test.jsonl: the official splits of 45, 180 and 1,000 queries),
then $ECONASH_DATA_DIR/travelplanner/, then the hub dataset osunlp/TravelPlanner (train and
validation). The hub and local copies differ only in that the hub stores date, local_constraint,
annotated_plan and reference_information as Python-literal strings; both are accepted.

Which split a file is: in a folder, train.jsonl trains and test.jsonl, else validation.jsonl (what
people evaluate on locally), is the test split; a file given directly is test when its name has the
word "test" or "val" (test.jsonl, validation.jsonl), else train, which is then partitioned
(:func:`split_indices`). Only train queries carry annotated plans, and scoring needs none: it
checks a plan against the query's constraint fields and the reference database. The public test
set withholds those fields for the leaderboard, so such records are refused with a sentence saying so.
"""

from __future__ import annotations

import ast
import json
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from econash.data import role_of
from econash.errors import DataError

HUB_NAME = "osunlp/TravelPlanner"
LITERAL_FIELDS = ("date", "local_constraint", "annotated_plan", "reference_information")
REQUIRED = ("org", "dest", "days", "visiting_city_number", "people_number", "local_constraint", "budget", "query")
LOCAL_KEYS = ("house rule", "cuisine", "room type", "transportation")
# The file names a folder may hold, by source split; "test" and "validation" both serve as the test split.
SPLIT_FILES = {"train": "train.jsonl", "validation": "validation.jsonl", "test": "test.jsonl"}
HELD_OUT = ("test", "validation")  # in order of preference


@dataclass
class Source:
    """Where the queries come from, and one list of records per split found there."""

    where: str
    splits: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def normalize(record: dict[str, Any], where: str) -> dict[str, Any]:
    """Parse string-encoded fields and check the fields the scorer needs; DataError names the record."""
    record = dict(record)
    for name in LITERAL_FIELDS:
        value = record.get(name)
        if isinstance(value, str):
            try:
                record[name] = ast.literal_eval(value) if value.strip() else None
            except (ValueError, SyntaxError):
                raise DataError(f"{where}: field '{name}' is not a valid Python or JSON literal; "
                                "restore the original TravelPlanner record.") from None
    missing = [name for name in REQUIRED if record.get(name) is None]
    if missing and record.get("query") is not None and record.get("annotated_plan") is None:
        raise DataError(f"{where}: the TravelPlanner record has no '{missing[0]}', like the official test set, "
                        "which withholds the constraint fields for its leaderboard, so its plans cannot be "
                        "scored here; evaluate on validation.jsonl instead (pass --data pointing at it).")
    if missing:
        raise DataError(f"{where}: the TravelPlanner record has no '{missing[0]}'; "
                        "restore the original TravelPlanner record.")
    if not isinstance(record["local_constraint"], dict):
        raise DataError(f"{where}: 'local_constraint' is not a mapping; restore the original TravelPlanner record.")
    record["local_constraint"] = {key: record["local_constraint"].get(key) for key in LOCAL_KEYS}
    try:
        for name in ("days", "visiting_city_number", "people_number", "budget"):
            record[name] = int(record[name])
    except (TypeError, ValueError):
        raise DataError(f"{where}: field '{name}' is not a whole number; "
                        "restore the original TravelPlanner record.") from None
    return record


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSONL file; a broken line is a DataError naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"Cannot read {path} ({exc.strerror}); "
                        "pass --data pointing at a TravelPlanner JSONL file.") from None
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise DataError(f"{path} line {number} is not valid JSON ({exc.msg}); fix or remove that line.") from None
        if not isinstance(record, dict):
            raise DataError(f"{path} line {number} is not a JSON object; fix or remove that line.")
        records.append(normalize(record, f"{path} line {number}"))
    if not records:
        raise DataError(f"{path} holds no TravelPlanner queries; pass --data pointing at a non-empty JSONL file.")
    return records


def split_of(path: Path) -> str:
    """The source split of a file given directly, from its name: "test", "validation" or "train"."""
    if role_of(path) == "test":
        return "test"
    return "validation" if re.search(r"(?<![a-z])val", path.stem, re.IGNORECASE) else "train"


def _local(folder: Path) -> Source | None:
    """The train file and the test file (test.jsonl, else validation.jsonl) of a folder, or None.

    Only the files that will be served are read, so an unscoreable file left beside them is harmless.
    """
    for base in (folder / "travelplanner", folder):
        present = {split: base / name for split, name in SPLIT_FILES.items() if (base / name).is_file()}
        if present:
            source = Source(where=str(base))
            held = next((split for split in HELD_OUT if split in present), None)
            for split in ("train", held):
                if split in present:
                    source.splits[split] = read_jsonl(present[split])
            return source
    return None


def _hub(looked: list[str]) -> Source:
    where = ", ".join(looked + [f"the Hugging Face hub ({HUB_NAME})"])
    hint = "pass --data PATH or set ECONASH_DATA_DIR to a folder holding travelplanner/train.jsonl"
    try:
        import datasets  # lazy: optional and slow to import
    except ImportError:
        raise DataError(f"No TravelPlanner data found (looked in {where}, but the 'datasets' package is not "
                        f"installed); {hint}, or install it with: pip install 'econash[hub]'.") from None
    source = Source(where=f"the Hugging Face hub ({HUB_NAME})")
    for split in ("train", "validation"):
        try:
            rows = datasets.load_dataset(HUB_NAME, split, split=split)
        except Exception as exc:  # offline, renamed, or no permission: all end the same way
            raise DataError(f"No TravelPlanner data found (looked in {where}, which failed with "
                            f"{type(exc).__name__}); {hint}.") from None
        source.splits[split] = [normalize(dict(row), f"{HUB_NAME} {split} row {i}") for i, row in enumerate(rows)]
    return source


def find_source(data: Path | None) -> Source:
    """The first source that exists, in the documented order."""
    if data is not None:
        data = Path(data).expanduser()
        if data.is_file():
            return Source(where=str(data), splits={split_of(data): read_jsonl(data)})
        if data.is_dir():
            found = _local(data)
            if found is not None:
                return found
            raise DataError(f"{data} holds no train.jsonl, validation.jsonl or test.jsonl, directly or in "
                            f"{data / 'travelplanner'}; pass --data pointing at the TravelPlanner file or its folder.")
        raise DataError(f"The data path {data} does not exist; "
                        "pass --data pointing at the TravelPlanner file or folder.")
    looked = []
    env = os.environ.get("ECONASH_DATA_DIR")
    if env:
        folder = Path(env).expanduser() / "travelplanner"
        looked.append(str(folder))
        if folder.is_dir():
            found = _local(folder)
            if found is not None:
                return found
    return _hub(looked)


def default_database(data: Path | None) -> Path | None:
    """The database folder a user would expect beside the data, without reading any queries."""
    if data is not None:
        data = Path(data).expanduser()
        if data.is_file():
            return data.parent / "database"
        for base in (data / "travelplanner", data):
            if (base / "database").is_dir():
                return base / "database"
        return data / "travelplanner" / "database"
    env = os.environ.get("ECONASH_DATA_DIR")
    return Path(env).expanduser() / "travelplanner" / "database" if env else None


def split_indices(source: Source, split: str, seed: int) -> tuple[str, list[int]]:
    """(source split, record indices in the order they are served) for a task split.

    With a separate test or validation file, "train" is train and "test" is that file, whole. With
    only a test or validation file, asking for train is an error: it would train on the evaluation.
    With train only, a fixed partition holds out ceil(k/2) queries of each (level, days) cell as
    test (18 of the 30 local queries) and keeps the rest for train. The partition does not depend
    on the seed, as in econash.data, so no seed ever trains on another seed's test queries. The
    seed then shuffles the chosen part, and a size takes a prefix: a smaller run is a subset of a
    larger one.
    """
    held = next((name for name in HELD_OUT if name in source.splits), None)
    if split == "train" and "train" not in source.splits:
        raise DataError(f"travelplanner has only test data ({source.where}), and training on it would leak "
                        "into the evaluation; add train.jsonl beside it or use --train-size 0.")
    if held is not None:
        name = held if split == "test" else "train"
        pool = list(range(len(source.splits[name])))
    else:
        name = "train"
        partition = random.Random("travelplanner:partition")
        cells: dict[tuple[str, int], list[int]] = {}
        for index, record in enumerate(source.splits["train"]):
            cells.setdefault((str(record.get("level")), record["days"]), []).append(index)
        pool = []
        for key in sorted(cells):
            members = cells[key]
            partition.shuffle(members)
            cut = (len(members) + 1) // 2
            pool += members[:cut] if split == "test" else members[cut:]
        pool.sort()
    random.Random(f"travelplanner:{seed}:{split}").shuffle(pool)
    return name, pool
