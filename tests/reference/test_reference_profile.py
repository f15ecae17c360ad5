"""The shipped Heyuan profile and the profile loader."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date

import pytest

from yikatong.reference import regions
from yikatong.reference.profile import ProfileNotFound, load_profile


def test_heyuan_profile_is_consistent() -> None:
    profile = load_profile("441600")
    assert (profile.name_zh, profile.name_en) == ("河源市", "Heyuan")
    assert profile.population == 2_837_686
    assert profile.census_date == date(2020, 11, 1)
    assert sum(profile.population_by_county.values()) == profile.population
    assert set(profile.population_by_county) == {c.code for c in regions.counties_of("441600")}
    assert sum(b.share for b in profile.age_bands) == pytest.approx(1)
    assert (profile.age_bands[0].lowest, profile.age_bands[-1].highest) == (0, None)
    assert 23 < profile.centre_lat < 24.5
    assert 114 < profile.centre_lon < 115.5
    assert profile.estimated
    assert profile.verified


def test_age_structure_matches_the_census_aggregates() -> None:
    bands = load_profile("441600").age_bands

    def share(lowest: int, highest: int | None) -> float:
        return sum(
            b.share
            for b in bands
            if b.lowest >= lowest and (highest is None or (b.highest or 999) <= highest)
        )

    assert share(0, 14) == pytest.approx(0.2528)
    assert share(15, 59) == pytest.approx(0.5825)
    assert share(60, None) == pytest.approx(0.1647)
    assert share(65, None) == pytest.approx(0.1174)


def test_draws_follow_the_profile() -> None:
    profile = load_profile("441600")
    rng = random.Random(7)
    counties = Counter(profile.draw_county(rng) for _ in range(20_000))
    for code, weight in profile.county_weights().items():
        assert counties[code] / 20_000 == pytest.approx(weight, abs=0.02)
    ages = [profile.draw_age(rng) for _ in range(20_000)]
    assert all(0 <= a <= 100 for a in ages)
    assert sum(a < 15 for a in ages) / len(ages) == pytest.approx(0.2528, abs=0.02)


@pytest.mark.parametrize("code", ["440100", "999999", "../x"])
def test_missing_profile_is_a_clear_error(code: str) -> None:
    with pytest.raises(ProfileNotFound, match=r"profile_.*\.json") as caught:
        load_profile(code)
    assert caught.value.code == "city_profile_not_found"
