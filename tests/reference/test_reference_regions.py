"""Integrity of the shipped region tables and the region lookups."""

from __future__ import annotations

import csv
from collections import Counter
from importlib import resources

import pytest

from yikatong.errors import InvalidInput
from yikatong.reference import regions
from yikatong.reference.regions import UnknownRegion

HEYUAN_COUNTIES = {
    "441602": "源城区",
    "441621": "紫金县",
    "441622": "龙川县",
    "441623": "连平县",
    "441624": "和平县",
    "441625": "东源县",
}
# Township-level divisions per county in the 2023 statistical codes.
HEYUAN_TOWN_COUNTS = {
    "441602": 8,
    "441621": 18,
    "441622": 24,
    "441623": 13,
    "441624": 17,
    "441625": 21,
}


def _csv(name: str) -> list[dict[str, str]]:
    text = resources.files("yikatong.reference").joinpath("data", name).read_text("utf-8")
    return list(csv.DictReader(text.splitlines()))


def test_codes_are_unique_across_all_tables() -> None:
    codes = [r["code"] for r in _csv("regions_44.csv")] + [
        r["code"] for r in _csv("towns_4416.csv")
    ]
    assert len(codes) == len(set(codes))


def test_guangdong_shape() -> None:
    levels = Counter(item.level for item in regions.all_regions() if len(item.code) == 6)
    assert levels == {"province": 1, "city": 21, "county": 122}
    assert regions.region("440000").parent is None


@pytest.mark.parametrize("item", regions.all_regions(), ids=lambda r: r.code)
def test_every_region_is_well_formed(item: regions.Region) -> None:
    assert item.name
    assert item.name.strip() == item.name
    assert len(item.code) == (9 if item.level == "town" else 6)
    assert item.code.isdigit()
    if item.parent is not None:
        parent = regions.region(item.parent)
        assert item.code.startswith(regions.scope_prefix(parent.code))
        assert regions.LEVELS.index(parent.level) == regions.LEVELS.index(item.level) - 1


def test_heyuan_has_its_six_county_level_divisions() -> None:
    counties = regions.counties_of("441600")
    assert {c.code: c.name for c in counties} == HEYUAN_COUNTIES


def test_heyuan_towns() -> None:
    counts = {code: len(regions.towns_of(code)) for code in HEYUAN_COUNTIES}
    assert counts == HEYUAN_TOWN_COUNTS
    assert sum(counts.values()) == 101
    for row in _csv("towns_4416.csv"):
        assert row["code"][:6] == row["county"]
    names = {t.name for t in regions.towns_of("441625")}
    assert {"仙塘镇", "新回龙镇", "漳溪畲族乡"} <= names
    assert regions.region("441602001").name == "上城街道"


def test_historical_codes_are_not_current() -> None:
    rows = _csv("regions_44_historical.csv")
    assert len({r["code"] for r in rows}) == len(rows)
    for row in rows:
        assert row["code"].startswith("44")
        assert regions.find_region(row["code"]) is None
    former = regions.historical_region("442525")
    assert former is not None
    assert former.name == "河源县"


def test_lookup_and_names() -> None:
    assert regions.region("441625") == regions.Region("441625", "东源县", "county", "441600")
    assert regions.find_region("999999") is None
    assert regions.full_name("441625") == "广东省河源市东源县"
    assert regions.full_name("441625100") == "广东省河源市东源县仙塘镇"
    assert regions.full_name("441900") == "广东省东莞市"
    assert [r.code for r in regions.ancestry("441625100")] == [
        "440000",
        "441600",
        "441625",
        "441625100",
    ]
    assert [r.code for r in regions.children("440000")][:2] == ["440100", "440200"]
    assert regions.children("441625100") == []
    assert regions.towns_of("440103") == []  # towns are shipped for Heyuan only


def test_unknown_region_is_a_stable_invalid_input() -> None:
    with pytest.raises(UnknownRegion) as caught:
        regions.region("441699")
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.code == "unknown_region"
    assert caught.value.status == 422
    assert caught.value.extra["errors"][0]["field"] == "region_code"
    with pytest.raises(UnknownRegion, match=r"6 .* or 9"):
        regions.region("4416")


def test_level_mismatch_is_reported() -> None:
    with pytest.raises(UnknownRegion, match="county, not a city"):
        regions.counties_of("441625")
    with pytest.raises(UnknownRegion, match="city, not a county"):
        regions.towns_of("441600")


@pytest.mark.parametrize(
    ("code", "prefix"),
    [
        ("440000", "44"),
        ("441600", "4416"),
        ("441900", "4419"),
        ("441625", "441625"),
        ("441625001", "441625001"),
        ("110000", "11"),
    ],
)
def test_scope_prefix(code: str, prefix: str) -> None:
    assert regions.scope_prefix(code) == prefix


@pytest.mark.parametrize(
    "bad", ["", "4416", "44160", "4416000", "44162510", "44162510x", "４４１６００"]
)
def test_scope_prefix_rejects_malformed_codes(bad: str) -> None:
    with pytest.raises(UnknownRegion):
        regions.scope_prefix(bad)


@pytest.mark.parametrize(
    ("outer", "inner", "inside"),
    [
        ("440000", "441625100", True),
        ("441600", "441625", True),
        ("441600", "441600", True),
        ("441625", "441625100", True),
        ("441625", "441625", True),
        ("441600", "441302", False),
        ("441625", "441621100", False),
        ("441625100", "441625", False),
        ("441625100", "441625101", False),
        ("110000", "441625", False),
    ],
)
def test_contains(outer: str, inner: str, inside: bool) -> None:
    assert regions.contains(outer, inner) is inside
