"""The TravelPlanner reference database: the CSV tables the evaluator looks plans up in.

Tables load lazily on first use and are indexed by city, so each lookup scans one city's few
hundred rows. The flights table can be the official 3.8M-row file; it gets a compact, cached
index of its own (flights.py).
Semantics follow docs/travelplanner.md section 3: rows with any missing field are dropped (except
in the distance table), strings are compared as stored, and "first row" means file order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from econash.errors import DataError
from econash.paths import cache_dir
from econash_plugins.tasks.travelplanner.flights import FlightIndex
from econash_plugins.tasks.travelplanner.tables import NA_TOKENS, OPTION_HINT, Table, number

ACCOMMODATIONS = "accommodations/clean_accommodations_2022.csv"
RESTAURANTS = "restaurants/clean_restaurant_2022.csv"
ATTRACTIONS = "attractions/attractions.csv"
DISTANCES = "googleDistanceMatrix/distance.csv"
CITIES = "background/citySet_with_states.txt"
# The official full table first; the 313-row subset of the train queries' flights otherwise.
FLIGHT_FILES = ("flights/clean_Flights_2022.csv", "flights/flights_subset_from_train.csv")


@dataclass(frozen=True)
class Accommodation:
    name: str
    room_type: str
    price: float
    minimum_nights: float
    house_rules: str
    maximum_occupancy: int


@dataclass(frozen=True)
class Restaurant:
    name: str
    cuisines: str
    average_cost: int


@dataclass(frozen=True)
class Route:
    """One googleDistanceMatrix row: raw duration and distance text (empty when unknown)."""

    duration: str
    distance: str


class Database:
    """The reference database folder; every table is read on first use only."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, relative: str) -> Path:
        path = self.root / relative
        if not path.is_file():
            raise DataError(f"The TravelPlanner database folder {self.root} has no {relative}; "
                            f"{OPTION_HINT}.")
        return path

    def flights_path(self) -> Path:
        for relative in FLIGHT_FILES:
            if (self.root / relative).is_file():
                return self.root / relative
        raise DataError(f"The TravelPlanner database folder {self.root} has no flights table "
                        f"({' or '.join(FLIGHT_FILES)}); {OPTION_HINT}.")

    # ------------------------------------------------------------ tables

    @cached_property
    def city_states(self) -> dict[str, str]:
        states: dict[str, str] = {}
        path = self._path(CITIES)
        for line in path.read_text(encoding="utf-8-sig").split("\n"):
            if "\t" in line:
                city, state = line.split("\t", 1)
                states[city] = state.rstrip("\r")
        return states

    @cached_property
    def accommodations(self) -> dict[str, list[Accommodation]]:
        columns = ("NAME", "room type", "price", "minimum nights", "house_rules", "maximum occupancy", "city")
        table = Table(self._path(ACCOMMODATIONS), columns, drop_missing=True)
        by_city: dict[str, list[Accommodation]] = {}
        for line, (name, room, price, nights, rules, occupancy, city) in table.rows():
            by_city.setdefault(city, []).append(Accommodation(
                name, room, number(price, table.path, line, "price"),
                number(nights, table.path, line, "minimum nights"), rules,
                int(number(occupancy, table.path, line, "maximum occupancy"))))
        return by_city

    @cached_property
    def restaurants(self) -> dict[str, list[Restaurant]]:
        table = Table(self._path(RESTAURANTS), ("Name", "City", "Cuisines", "Average Cost"), drop_missing=True)
        by_city: dict[str, list[Restaurant]] = {}
        for line, (name, city, cuisines, cost) in table.rows():
            by_city.setdefault(city, []).append(
                Restaurant(name, cuisines, int(number(cost, table.path, line, "Average Cost"))))
        return by_city

    @cached_property
    def attractions(self) -> dict[str, list[str]]:
        table = Table(self._path(ATTRACTIONS), ("Name", "City"), drop_missing=True)
        by_city: dict[str, list[str]] = {}
        for _, (name, city) in table.rows():
            by_city.setdefault(city, []).append(name)
        return by_city

    @cached_property
    def routes(self) -> dict[tuple[str, str], Route]:
        table = Table(self._path(DISTANCES), ("origin", "destination", "duration", "distance"), drop_missing=False)
        routes: dict[tuple[str, str], Route] = {}
        for _, (origin, dest, duration, distance) in table.rows():
            # The table repeats 1382 pairs; the first occurrence is the one that counts.
            routes.setdefault((origin, dest), Route(
                "" if duration in NA_TOKENS else duration, "" if distance in NA_TOKENS else distance))
        return routes

    @cached_property
    def flights(self) -> FlightIndex:
        return FlightIndex.open(self.flights_path(), cache_dir("travelplanner"))

    # ------------------------------------------------------------ lookups (section 3.3)

    def find_restaurants(self, name: str, city: str) -> list[Restaurant]:
        return [r for r in self.restaurants.get(city, ()) if name in r.name]

    def find_attractions(self, name: str, city: str) -> list[str]:
        return [a for a in self.attractions.get(city, ()) if name in a]

    def find_accommodations(self, name: str, city: str) -> list[Accommodation]:
        return [a for a in self.accommodations.get(city, ()) if name in a.name]

    def flight_exists(self, flight: str, origin: str, dest: str) -> bool:
        """Any row with this number, origin and destination; the date is never checked."""
        return any(o == origin and d == dest for _, o, d in self.flights.rows(flight))

    def flight_price(self, flight: str) -> float:
        """The price of the first row with this number, or 0 when there is none."""
        rows = self.flights.rows(flight)
        return rows[0][0] if rows else 0.0

    def ground_cost(self, origin: str, dest: str, mode: str) -> int | None:
        """Cost of self-driving or taxi from origin to dest (already paren-stripped); None if undefined."""
        route = self.routes.get((origin, dest))
        if route is None or not route.duration or not route.distance or "day" in route.duration:
            return None
        try:
            km = float(route.distance.replace("km", "").replace(",", ""))
        except ValueError:
            return None
        # int() truncates the double product exactly as the official scorer does.
        return int(km * 0.05) if mode == "self-driving" else int(km)
