"""The profile of the city a deployment serves: names, centre, population and age structure.

Read from ``reference/data/profile_<region code>.json``; the demo generator draws residents
from it so that counties and ages look like the real city. Which figures are census facts
and which are estimates is recorded in the file itself (``verified`` / ``estimated``).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from yikatong.errors import N_, NotFound
from yikatong.reference import regions

# The oldest age the demo draws for the open-ended top band (85+).
OLDEST_AGE = 100


class ProfileNotFound(NotFound):
    """No city profile is shipped for the configured region code."""

    code = "city_profile_not_found"
    title = N_("No city profile for this region")


@dataclass(frozen=True, slots=True)
class AgeBand:
    """Share of residents whose age is ``lowest``..``highest`` (``None``: no upper bound)."""

    lowest: int
    highest: int | None
    share: float


@dataclass(frozen=True, slots=True)
class CityProfile:
    region_code: str
    name_zh: str
    name_en: str
    centre_lat: float
    centre_lon: float
    census_date: date
    population: int
    male: int
    female: int
    population_by_county: dict[str, int]
    age_bands: tuple[AgeBand, ...]
    verified: tuple[str, ...]
    estimated: tuple[str, ...]

    def county_weights(self) -> dict[str, float]:
        """Each county's share of the population."""
        return {code: n / self.population for code, n in self.population_by_county.items()}

    def draw_county(self, rng: random.Random) -> str:
        """A county code drawn in proportion to population."""
        codes = list(self.population_by_county)
        return rng.choices(codes, weights=[self.population_by_county[c] for c in codes])[0]

    def draw_age(self, rng: random.Random) -> int:
        """An age in years drawn from the age structure (uniform within a band)."""
        band = rng.choices(self.age_bands, weights=[b.share for b in self.age_bands])[0]
        return rng.randint(band.lowest, band.highest if band.highest is not None else OLDEST_AGE)


def _band(raw: dict[str, Any]) -> AgeBand:
    highest = raw["to"]
    return AgeBand(int(raw["from"]), None if highest is None else int(highest), float(raw["share"]))


def _check(profile: CityProfile) -> None:
    where = f"profile_{profile.region_code}.json"
    counted = sum(profile.population_by_county.values())
    if counted != profile.population:
        raise ValueError(f"{where}: counties sum to {counted}, not {profile.population}")
    if profile.male + profile.female != profile.population:
        raise ValueError(f"{where}: male + female differs from the population")
    for code in profile.population_by_county:
        if not regions.contains(profile.region_code, code):
            raise ValueError(f"{where}: county {code} is outside {profile.region_code}")
    if abs(sum(b.share for b in profile.age_bands) - 1) > 1e-6:
        raise ValueError(f"{where}: age shares do not sum to 1")
    expected_lowest = 0
    for band in profile.age_bands:
        if band.lowest != expected_lowest:
            raise ValueError(f"{where}: age bands leave a gap or overlap at {band.lowest}")
        expected_lowest = (band.highest or 0) + 1
    if profile.age_bands[-1].highest is not None:
        raise ValueError(f"{where}: the last age band must be open-ended")


@cache
def load_profile(region_code: str) -> CityProfile:
    """The profile of the city ``region_code``; :class:`ProfileNotFound` if none is shipped."""
    source = resources.files("yikatong.reference").joinpath("data", f"profile_{region_code}.json")
    if not (region_code.isascii() and region_code.isdigit()) or not source.is_file():
        raise ProfileNotFound(
            f"no city profile for region {region_code!r}: expected "
            f"yikatong/reference/data/profile_{region_code}.json"
        )
    raw = json.loads(source.read_text(encoding="utf-8"))
    census = raw["census"]
    profile = CityProfile(
        region_code=raw["region_code"],
        name_zh=raw["name"]["zh"],
        name_en=raw["name"]["en"],
        centre_lat=float(raw["centre"]["lat"]),
        centre_lon=float(raw["centre"]["lon"]),
        census_date=date.fromisoformat(census["reference_date"]),
        population=int(census["population"]),
        male=int(census["male"]),
        female=int(census["female"]),
        population_by_county={code: int(n) for code, n in raw["population_by_county"].items()},
        age_bands=tuple(_band(b) for b in raw["age_structure"]),
        verified=tuple(raw["verified"]),
        estimated=tuple(raw["estimated"]),
    )
    if profile.region_code != region_code:
        raise ValueError(f"profile_{region_code}.json describes {profile.region_code}")
    _check(profile)
    return profile
