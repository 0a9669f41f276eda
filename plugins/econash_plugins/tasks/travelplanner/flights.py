"""A compact index of the flights table, which has 3.8M rows in the official release.

Each row becomes four machine numbers in arrays sorted by flight number (searched by
bisection), about 24 bytes a row instead of several hundred as Python objects. Building it from
the full CSV takes tens of seconds, so an index of a large file is saved in the econash cache
folder, keyed by the file's path, size and modification time, and read back in a fraction of a
second by later runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from array import array
from bisect import bisect_left, bisect_right
from pathlib import Path

from econash_plugins.tasks.travelplanner.tables import Table, number

COLUMNS = ("Flight Number", "Price", "OriginCityName", "DestCityName")
CACHE_MIN_BYTES = 10_000_000  # the 313-row subset builds in milliseconds: not worth a file
FORMAT = 1
_NUMBER = re.compile(r"F[1-9][0-9]{0,17}")  # fits a signed 64-bit key

Row = tuple[float, str, str]


class FlightIndex:
    """Flight number -> (price, origin, destination) of every row with it, in file order."""

    def __init__(self, keys: array, prices: array, origins: array, dests: array, cities: list[str],
                 other: dict[str, list[Row]]) -> None:
        self._keys, self._prices, self._origins, self._dests = keys, prices, origins, dests
        self._cities = cities
        self._other = other  # numbers not of the form F<digits>; none in the official data

    def __len__(self) -> int:
        return len(self._keys) + sum(len(rows) for rows in self._other.values())

    def rows(self, flight: str) -> list[Row]:
        if not _NUMBER.fullmatch(flight):
            return self._other.get(flight, [])
        key = int(flight[1:])
        low, high = bisect_left(self._keys, key), bisect_right(self._keys, key)
        return [(self._prices[i], self._cities[self._origins[i]], self._cities[self._dests[i]])
                for i in range(low, high)]

    # ------------------------------------------------------------ building

    @classmethod
    def build(cls, path: Path) -> FlightIndex:
        keys, prices, origins, dests = array("q"), array("d"), array("i"), array("i")
        cities: list[str] = []
        ids: dict[str, int] = {}
        other: dict[str, list[Row]] = {}
        for line, (flight, price, origin, dest) in Table(path, COLUMNS, drop_missing=True).rows():
            value = number(price, path, line, "Price")
            if not _NUMBER.fullmatch(flight):
                other.setdefault(flight, []).append((value, origin, dest))
                continue
            for city in (origin, dest):
                if city not in ids:
                    ids[city] = len(cities)
                    cities.append(city)
            keys.append(int(flight[1:]))
            prices.append(value)
            origins.append(ids[origin])
            dests.append(ids[dest])
        order = _stable_order(keys)
        if order is not None:
            keys = array("q", (keys[i] for i in order))
            prices = array("d", (prices[i] for i in order))
            origins = array("i", (origins[i] for i in order))
            dests = array("i", (dests[i] for i in order))
        return cls(keys, prices, origins, dests, cities, other)

    @classmethod
    def open(cls, path: Path, cache_dir: Path | None) -> FlightIndex:
        """The index of a flights CSV, from the cache when a matching one was saved."""
        cached = _cache_file(path, cache_dir) if path.stat().st_size >= CACHE_MIN_BYTES else None
        if cached is not None and cached.is_file():
            try:
                return cls._read(cached)
            except (OSError, ValueError, EOFError, KeyError):
                pass  # a damaged cache file is rebuilt below
        index = cls.build(path)
        if cached is not None:
            index._save(cached)
        return index

    # ------------------------------------------------------------ cache file

    def _save(self, target: Path) -> None:
        header = {"format": FORMAT, "rows": len(self._keys), "cities": self._cities,
                  "other": {k: [list(r) for r in v] for k, v in self._other.items()}}
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("wb", dir=target.parent, delete=False) as handle:
                handle.write(json.dumps(header).encode() + b"\n")
                for column in (self._keys, self._prices, self._origins, self._dests):
                    column.tofile(handle)
            os.replace(handle.name, target)
        except OSError:
            pass  # the cache only saves time; a read-only cache folder is no error

    @classmethod
    def _read(cls, source: Path) -> FlightIndex:
        with source.open("rb") as handle:
            header = json.loads(handle.readline())
            if header["format"] != FORMAT:
                raise ValueError("old cache format")
            rows = header["rows"]
            columns = [array(code) for code in ("q", "d", "i", "i")]
            for column in columns:
                column.fromfile(handle, rows)
        other = {k: [(float(p), o, d) for p, o, d in v] for k, v in header["other"].items()}
        return cls(*columns, cities=header["cities"], other=other)


def _cache_file(path: Path, cache_dir: Path | None) -> Path | None:
    if cache_dir is None:
        return None
    stat = path.stat()
    identity = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{FORMAT}"
    return cache_dir / f"flights-{hashlib.sha256(identity.encode()).hexdigest()[:20]}.idx"


def _stable_order(keys: array) -> list[int] | None:
    """Positions that sort keys stably (equal numbers keep file order), or None if already sorted."""
    if all(keys[i] <= keys[i + 1] for i in range(len(keys) - 1)):
        return None
    try:
        import numpy  # much faster on millions of rows; optional
    except ImportError:
        return sorted(range(len(keys)), key=keys.__getitem__)
    return numpy.argsort(numpy.frombuffer(keys, dtype=numpy.int64), kind="stable").tolist()
