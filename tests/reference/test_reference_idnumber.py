"""Resident ID number parsing, generation and agreement with python-stdnum."""

from __future__ import annotations

import random
import sys
import time
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import ric

from yikatong.errors import InvalidInput
from yikatong.reference import regions
from yikatong.reference.idnumber import (
    InvalidIdNumber,
    ParsedIdNumber,
    check_digit,
    is_valid_id_number,
    make_id_number,
    mask_id_number,
    parse_id_number,
    region_problem,
)

TODAY = date(2025, 6, 1)


@pytest.mark.parametrize(
    ("number", "region", "birth", "sex"),
    [
        ("11010519491231002X", "110105", date(1949, 12, 31), "female"),  # GB 11643 example
        ("360426199101010071", "360426", date(1991, 1, 1), "male"),
        ("441602198506150028", "441602", date(1985, 6, 15), "female"),
        ("441625200002290048", "441625", date(2000, 2, 29), "female"),
        ("442525197001010033", "442525", date(1970, 1, 1), "male"),  # 河源县, abolished 1988
        ("441601198810010023", "441601", date(1988, 10, 1), "female"),  # 市辖区 form
        ("810000199512310013", "810000", date(1995, 12, 31), "male"),
    ],
)
def test_known_valid_numbers(number: str, region: str, birth: date, sex: str) -> None:
    parsed = parse_id_number(number, today=TODAY)
    assert (parsed.number, parsed.region_code, parsed.birth_date, parsed.sex) == (
        number,
        region,
        birth,
        sex,
    )
    # Only the check digit is compared: stdnum's own validate() also demands that the county
    # existed in the birth year, which rejects real numbers issued after a recoding.
    assert ric.calc_check_digit(number) == number[-1]


def test_input_is_normalized() -> None:
    parsed = parse_id_number(" 1101 0519 4912 3100 2x\t", today=TODAY)
    assert parsed.number == "11010519491231002X"
    assert (
        parse_id_number("１１０１０５１９４９１２３１００２ｘ", today=TODAY).number == parsed.number
    )


def test_masking_and_repr_hide_the_number() -> None:
    parsed = parse_id_number("441602198506150028", today=TODAY)
    assert parsed.masked == "441602********0028"
    assert "19850615" not in repr(parsed)
    assert mask_id_number("123") == "***"


def test_age_on() -> None:
    parsed = ParsedIdNumber("", "441625", date(2000, 2, 29), "female")
    assert parsed.age_on(date(2021, 2, 28)) == 20
    assert parsed.age_on(date(2021, 3, 1)) == 21
    assert parsed.age_on(date(2024, 2, 29)) == 24
    assert parsed.age_on(date(2000, 2, 29)) == 0


def _reason(value: str) -> InvalidIdNumber:
    with pytest.raises(InvalidIdNumber) as caught:
        parse_id_number(value, today=TODAY)
    error = caught.value
    assert isinstance(error, InvalidInput)
    assert error.code == "invalid_id_number"
    assert error.extra["errors"] == [{"field": "id_number", "message": error.detail}]
    return error


@pytest.mark.parametrize(("value", "length"), [("", 0), ("4416021985061500", 16), ("4" * 19, 19)])
def test_wrong_length(value: str, length: int) -> None:
    error = _reason(value)
    assert error.reason == "length"
    assert f"has {length}" in error.detail


def test_fifteen_digit_numbers_get_a_hint() -> None:
    assert "first-generation" in _reason("441602850615002").detail


@pytest.mark.parametrize(
    ("value", "position"),
    [("44160219850615002A", 18), ("X41602198506150028", 1), ("4416021985061500X8", 17)],
)
def test_bad_characters(value: str, position: int) -> None:
    error = _reason(value)
    assert error.reason == "characters"
    assert error.extra["position"] == position
    assert f"character {position}" in error.detail


@pytest.mark.parametrize(
    ("region", "fragment"),
    [
        ("991602", "not a PRC province code"),
        ("001602", "not a PRC province code"),
        ("441699", "Guangdong"),
        ("449999", "Guangdong"),
        ("447100", "Guangdong"),
    ],
)
def test_unknown_region(region: str, fragment: str) -> None:
    body = f"{region}19850615002"
    error = _reason(body + check_digit(body))
    assert error.reason == "region"
    assert fragment in error.detail
    assert error.extra["region_code"] == region


@pytest.mark.parametrize(
    "region",
    # current, abolished since 1980, prefecture and 市辖区 forms, other provinces (province only)
    ["441625", "442522", "440524", "441600", "441601", "442501", "442401", "320583", "659999"],
)
def test_accepted_regions(region: str) -> None:
    assert region_problem(region) is None


@pytest.mark.parametrize(
    ("birth", "problem"),
    [
        ("19850230", "not_a_date"),
        ("19851301", "not_a_date"),
        ("20250602", "future"),
        ("18991231", "before_1900"),
    ],
)
def test_impossible_birth_date(birth: str, problem: str) -> None:
    body = f"441602{birth}002"
    error = _reason(body + check_digit(body))
    assert error.reason == "birth_date"
    assert error.extra["problem"] == problem
    assert birth not in error.detail  # the date is personal data: not echoed


def test_wrong_check_digit_names_the_expected_one() -> None:
    error = _reason("441602198506150027")
    assert error.reason == "check_digit"
    assert error.extra["expected"] == "8"
    assert "should be 8, not 7" in error.detail


def test_today_defaults_to_china() -> None:
    assert is_valid_id_number("441602198506150028")
    assert not is_valid_id_number("441602198506150027")


def test_check_digit_agrees_with_stdnum_on_random_numbers() -> None:
    rng = random.Random(20240601)
    for _ in range(5_000):
        body = "".join(rng.choice("0123456789") for _ in range(17))
        assert check_digit(body) == ric.calc_check_digit(body + "0")


# County-level codes of Guangdong plus a few from elsewhere (checked by province only).
_REGION_CODES = sorted(
    [r.code for r in regions.all_regions() if r.level == "county"] + ["110105", "310115", "810000"]
)


@given(
    region=st.sampled_from(_REGION_CODES),
    birth=st.dates(min_value=date(1900, 1, 1), max_value=TODAY),
    sequence=st.integers(min_value=0, max_value=999),
)
def test_make_id_number_round_trips(region: str, birth: date, sequence: int) -> None:
    number = make_id_number(region, birth, sequence)
    parsed = parse_id_number(number, today=TODAY)
    assert (parsed.region_code, parsed.birth_date) == (region, birth)
    assert parsed.sex == ("male" if sequence % 2 else "female")
    assert ric.calc_check_digit(number) == number[-1]


@pytest.mark.parametrize(
    ("region", "birth", "sequence"),
    [
        ("4416", date(1990, 1, 1), 1),
        ("441699", date(1990, 1, 1), 1),
        ("441625", date(1899, 12, 31), 1),
        ("441625", date(1990, 1, 1), 1000),
        ("441625", date(1990, 1, 1), -1),
    ],
)
def test_make_id_number_rejects_bad_parts(region: str, birth: date, sequence: int) -> None:
    with pytest.raises(ValueError, match=r"must be|cannot issue"):
        make_id_number(region, birth, sequence)


@pytest.mark.skipif(sys.gettrace() is not None, reason="timing is meaningless under a tracer")
def test_make_id_number_is_fast() -> None:
    births = [date(1950 + i % 70, 1 + i % 12, 1 + i % 28) for i in range(1000)]
    counties = _REGION_CODES
    start = time.perf_counter()
    for i in range(100_000):
        make_id_number(counties[i % len(counties)], births[i % 1000], i % 1000)
    assert time.perf_counter() - start < 1.0
