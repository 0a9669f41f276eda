"""Reading the database CSVs the way the official scorer's pandas defaults do, with the csv module."""

from __future__ import annotations

import csv
from operator import itemgetter
from pathlib import Path
from typing import Iterator

from econash.errors import DataError

# The strings pandas reads as missing by default; the loader must drop the same rows it would.
NA_TOKENS = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})

OPTION_HINT = "pass -B task_options.database=PATH pointing at the official database folder"


def number(text: str, path: Path, line: int, column: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise DataError(f"{path} line {line}: column '{column}' holds {text!r}, not a number; "
                        "restore the official file.") from None


class Table:
    """One CSV read row by row, yielding only the needed columns."""

    def __init__(self, path: Path, columns: tuple[str, ...], drop_missing: bool) -> None:
        self.path = path
        self.columns = columns
        # pandas' dropna(): a row missing any field, needed or not, is dropped.
        self.drop_missing = drop_missing

    def rows(self) -> Iterator[tuple[int, tuple[str, ...]]]:
        """(line number, the needed columns in order) for each kept row, in file order."""
        try:
            handle = self.path.open(newline="", encoding="utf-8-sig")  # pandas ignores a byte-order mark
        except OSError as exc:
            raise DataError(f"Cannot read the TravelPlanner table {self.path} ({exc.strerror}); "
                            f"{OPTION_HINT}.") from None
        with handle:
            reader = csv.reader(handle)
            header = next(reader, None) or []
            missing = [c for c in self.columns if c not in header]
            if missing:
                raise DataError(f"{self.path} has no column '{missing[0]}'; {OPTION_HINT}.")
            pick = itemgetter(*(header.index(c) for c in self.columns))
            width = len(header)
            drop, present = self.drop_missing, NA_TOKENS.isdisjoint
            for row in reader:
                if not row:  # pandas skips blank lines
                    continue
                if len(row) < width:
                    if drop:
                        continue
                    row += [""] * (width - len(row))
                elif drop and not present(row):
                    continue
                yield reader.line_num, pick(row)
