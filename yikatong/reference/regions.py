"""GB/T 2260 administrative divisions of Guangdong and the township divisions of Heyuan.

The shipped tables are loaded once from ``reference/data``:

* ``regions_44.csv`` — the province, its 21 prefecture-level cities and 122 county-level
  divisions as currently valid (Ministry of Civil Affairs list, 2024);
* ``towns_4416.csv`` — every township-level division (街道/镇/乡) of Heyuan with its 9-digit
  statistical code (National Bureau of Statistics 统计用区划代码, 2023);
* ``regions_44_historical.csv`` — Guangdong codes in use since 1980 that are no longer valid.
  They are not part of the region tree: they exist only because residents keep ID numbers
  issued under them (see :mod:`yikatong.reference.idnumber`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal, get_args

from yikatong.errors import N_, InvalidInput

Level = Literal["province", "city", "county", "town"]
LEVELS: tuple[Level, ...] = get_args(Level)

_DATA = "data"


class UnknownRegion(InvalidInput):
    """The code is not a region code known to the reference data."""

    code = "unknown_region"
    title = N_("Unknown region code")

    def __init__(self, detail: str, *, field: str = "region_code") -> None:
        super().__init__(detail, field=field)


@dataclass(frozen=True, slots=True)
class Region:
    """One administrative division: 6-digit GB/T 2260 code, or 9-digit code for a town."""

    code: str
    name: str
    level: Level
    parent: str | None


@dataclass(frozen=True, slots=True)
class HistoricalRegion:
    """A Guangdong code that was valid at some time since 1980 but is no longer."""

    code: str
    name: str


@dataclass(frozen=True, slots=True)
class _Index:
    by_code: dict[str, Region]
    children: dict[str, tuple[Region, ...]]
    historical: dict[str, HistoricalRegion]


def _rows(filename: str) -> Iterator[dict[str, str]]:
    source = resources.files("yikatong.reference").joinpath(_DATA, filename)
    yield from csv.DictReader(source.read_text(encoding="utf-8").splitlines())


def _level(value: str) -> Level:
    for level in LEVELS:
        if level == value:
            return level
    raise ValueError(f"regions data: unknown level {value!r}")


@cache
def _index() -> _Index:
    regions: list[Region] = [
        Region(row["code"], row["name"], _level(row["level"]), row["parent"] or None)
        for row in _rows("regions_44.csv")
    ]
    regions += [
        Region(row["code"], row["name"], "town", row["county"]) for row in _rows("towns_4416.csv")
    ]
    by_code: dict[str, Region] = {}
    for item in regions:
        if item.code in by_code:
            raise ValueError(f"regions data: duplicate code {item.code}")
        by_code[item.code] = item
    grouped: dict[str, list[Region]] = {}
    for item in regions:
        if item.parent is not None:
            if item.parent not in by_code:
                raise ValueError(f"regions data: {item.code} has unknown parent {item.parent}")
            grouped.setdefault(item.parent, []).append(item)
    historical = {
        row["code"]: HistoricalRegion(row["code"], row["name"])
        for row in _rows("regions_44_historical.csv")
    }
    return _Index(
        by_code=by_code,
        children={
            code: tuple(sorted(kids, key=lambda r: r.code)) for code, kids in grouped.items()
        },
        historical=historical,
    )


def _check_shape(code: str) -> None:
    if not (code.isascii() and code.isdigit() and len(code) in (6, 9)):
        raise UnknownRegion(f"region code must be 6 (GB/T 2260) or 9 (town) digits, got {code!r}")


def find_region(code: str) -> Region | None:
    """The current region with this code, or ``None``."""
    return _index().by_code.get(code)


def region(code: str) -> Region:
    """The current region with this code; :class:`UnknownRegion` if there is none."""
    found = find_region(code)
    if found is None:
        _check_shape(code)
        raise UnknownRegion(f"{code} is not a region code in the reference data")
    return found


def all_regions() -> list[Region]:
    """Every current region, ordered by code."""
    return sorted(_index().by_code.values(), key=lambda r: r.code)


def children(code: str) -> list[Region]:
    """The regions directly below ``code``, ordered by code."""
    return list(_index().children.get(region(code).code, ()))


def _of_level(code: str, level: Level) -> Region:
    found = region(code)
    if found.level != level:
        raise UnknownRegion(f"{code} ({found.name}) is a {found.level}, not a {level}")
    return found


def counties_of(city_code: str) -> list[Region]:
    """The county-level divisions of a prefecture-level city."""
    return children(_of_level(city_code, "city").code)


def towns_of(county_code: str) -> list[Region]:
    """The township-level divisions of a county; empty where towns are not in the data."""
    return children(_of_level(county_code, "county").code)


def ancestry(code: str) -> list[Region]:
    """The region and its parents, outermost first."""
    chain = [region(code)]
    while (parent := chain[-1].parent) is not None:
        chain.append(region(parent))
    return chain[::-1]


def full_name(code: str) -> str:
    """The names from the province down, e.g. ``广东省河源市东源县``."""
    return "".join(item.name for item in ancestry(code))


def historical_region(code: str) -> HistoricalRegion | None:
    """The abolished Guangdong code ``code`` (valid at some time since 1980), or ``None``."""
    return _index().historical.get(code)


def scope_prefix(code: str) -> str:
    """The code prefix shared by every region inside ``code``.

    Derived from the shape of the code (GB/T 2260 pads the unused levels with zeros), so
    it works for codes the data does not list: 440000 -> ``44``, 441600 -> ``4416``,
    441625 -> ``441625``, 441625100 -> ``441625100``.
    """
    _check_shape(code)
    if len(code) == 6:
        if code[2:] == "0000":
            return code[:2]
        if code[4:] == "00":
            return code[:4]
    return code


def contains(outer_code: str, inner_code: str) -> bool:
    """Whether ``inner_code`` lies inside (or is) ``outer_code``, judged by the codes alone."""
    _check_shape(inner_code)
    return inner_code.startswith(scope_prefix(outer_code))
