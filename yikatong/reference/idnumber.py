"""Resident identity numbers (公民身份号码, GB 11643-1999).

An ID number has 18 characters: a 6-digit address code (GB/T 2260), the 8-digit birth date
YYYYMMDD, a 3-digit sequence (odd for men, even for women) and an ISO 7064 MOD 11-2 check
character (0-9 or X).

Address-code rule. People keep the number they were issued even after the county in it is
abolished or recoded, so only codes that were *never* valid can be rejected:

* outside Guangdong only the province is checked: 11-15, 21-23, 31-37, 41-46, 50-54, 61-65,
  71 (Taiwan), 81/82 (Hong Kong, Macao) and 83 (used by residence permits for Taiwan
  residents, 830000);
* inside Guangdong (44) the code must be a current region of ours, a Guangdong code used at
  any time since 1980 (``regions_44_historical.csv``), or a prefecture code ``44xx00`` or its
  city-districts code ``44xx01`` (市辖区) for a current or historical prefecture.

Failures raise :class:`InvalidIdNumber` whose ``reason`` (length, characters, region,
birth_date, check_digit) and parameters let the edges translate the message; messages never
repeat the whole number.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

from yikatong.errors import N_, InvalidInput
from yikatong.reference import regions

Sex = Literal["male", "female"]

LENGTH = 18
EARLIEST_BIRTH = date(1900, 1, 1)
# Birth dates are civil dates in China; "today" must not roll over at UTC midnight.
_CHINA = ZoneInfo("Asia/Shanghai")

# ISO 7064 MOD 11-2 weights 2^(17-i) mod 11 for positions 1-17, and the check character
# for each weighted sum mod 11.
WEIGHTS: tuple[int, ...] = tuple(pow(2, 17 - i, 11) for i in range(17))
_CHECK_CHARS = "10X98765432"

PROVINCE_CODES: frozenset[str] = frozenset(
    [f"{n}" for n in range(11, 16)]
    + [f"{n}" for n in range(21, 24)]
    + [f"{n}" for n in range(31, 38)]
    + [f"{n}" for n in range(41, 47)]
    + [f"{n}" for n in range(50, 55)]
    + [f"{n}" for n in range(61, 66)]
    + ["71", "81", "82", "83"]
)


class InvalidIdNumber(InvalidInput):
    """The resident ID number is malformed, has an impossible part, or a wrong check digit."""

    code = "invalid_id_number"
    title = N_("Invalid resident ID number")

    def __init__(self, detail: str, *, reason: str, **params: Any) -> None:
        super().__init__(detail, field="id_number", reason=reason, **params)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ParsedIdNumber:
    """A valid ID number and what it says about its holder."""

    number: str = field(repr=False)  # kept out of repr so logs and tracebacks stay masked
    region_code: str
    birth_date: date
    sex: Sex

    @property
    def masked(self) -> str:
        """First 6 characters, 8 asterisks, last 4: the platform's display form."""
        return mask_id_number(self.number)

    def age_on(self, day: date) -> int:
        """Age in whole years on ``day`` (a 29 February birthday counts from 1 March)."""
        had_birthday = (day.month, day.day) >= (self.birth_date.month, self.birth_date.day)
        return day.year - self.birth_date.year - (0 if had_birthday else 1)


def mask_id_number(number: str) -> str:
    """``441625********1234``: the form used on screens and in logs."""
    return f"{number[:6]}********{number[-4:]}" if len(number) >= 10 else "*" * len(number)


def normalize(value: str) -> str:
    """Fold full-width characters (common from Chinese input methods), drop spaces, upper-case."""
    return "".join(unicodedata.normalize("NFKC", value).split()).upper()


def check_digit(body: str) -> str:
    """The MOD 11-2 check character for the first 17 digits of a number."""
    total = sum(int(digit) * weight for digit, weight in zip(body[:17], WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def region_problem(code: str) -> str | None:
    """Why a 6-digit address code cannot appear in an ID number, or ``None`` if it can."""
    province = code[:2]
    if province not in PROVINCE_CODES:
        return f"the first two digits {province} are not a PRC province code"
    if province != "44":
        return None
    if regions.find_region(code) is not None or regions.historical_region(code) is not None:
        return None
    prefecture = code[:4] + "00"
    if code[4:] in ("00", "01") and (
        regions.find_region(prefecture) is not None
        or regions.historical_region(prefecture) is not None
    ):
        return None
    return f"{code} is not a current or former (since 1980) Guangdong region code"


def _today() -> date:
    return datetime.now(_CHINA).date()


def parse_id_number(value: str, *, today: date | None = None) -> ParsedIdNumber:
    """Validate ``value`` (spaces and full-width forms allowed) and return its parts."""
    number = normalize(value)
    if len(number) != LENGTH:
        hint = " (15-digit first-generation numbers must be converted)" if len(number) == 15 else ""
        raise InvalidIdNumber(
            f"an ID number has 18 characters, this one has {len(number)}{hint}",
            reason="length",
            expected=LENGTH,
            actual=len(number),
        )
    for position, char in enumerate(number, start=1):
        allowed = char.isascii() and (char.isdigit() or (position == LENGTH and char == "X"))
        if not allowed:
            raise InvalidIdNumber(
                f"character {position} is {char!r}; the first 17 must be digits and the "
                "18th a digit or X",
                reason="characters",
                position=position,
            )
    region_code = number[:6]
    problem = region_problem(region_code)
    if problem is not None:
        raise InvalidIdNumber(
            f"address code (digits 1-6): {problem}", reason="region", region_code=region_code
        )
    birth = _birth_date(number, today or _today())
    expected = check_digit(number)
    if number[17] != expected:
        raise InvalidIdNumber(
            f"the check character (18th) should be {expected}, not {number[17]}: "
            "a digit was probably mistyped",
            reason="check_digit",
            expected=expected,
        )
    return ParsedIdNumber(
        number=number,
        region_code=region_code,
        birth_date=birth,
        sex="male" if int(number[16]) % 2 else "female",
    )


def _birth_date(number: str, today: date) -> date:
    try:
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidIdNumber(
            "the birth date (digits 7-14, YYYYMMDD) is not a real calendar date",
            reason="birth_date",
            problem="not_a_date",
        ) from None
    if birth > today:
        raise InvalidIdNumber(
            "the birth date (digits 7-14) is in the future", reason="birth_date", problem="future"
        )
    if birth < EARLIEST_BIRTH:
        raise InvalidIdNumber(
            "the birth date (digits 7-14) is before 1900",
            reason="birth_date",
            problem="before_1900",
        )
    return birth


def is_valid_id_number(value: str, *, today: date | None = None) -> bool:
    """Whether :func:`parse_id_number` accepts ``value``."""
    try:
        parse_id_number(value, today=today)
    except InvalidIdNumber:
        return False
    return True


# make_id_number builds hundreds of thousands of numbers for the demo data, so the weighted
# sum is assembled from precomputed parts instead of 17 multiplications per call.
def _part_sums(width: int, weights: tuple[int, ...], count: int) -> tuple[int, ...]:
    return tuple(
        sum(int(d) * w for d, w in zip(f"{n:0{width}d}", weights, strict=True))
        for n in range(count)
    )


_MONTH_SUMS = _part_sums(2, WEIGHTS[10:12], 13)
_DAY_SUMS = _part_sums(2, WEIGHTS[12:14], 32)
_SEQUENCE_SUMS = _part_sums(3, WEIGHTS[14:17], 1000)


@cache
def _region_sum(region_code: str) -> int:
    if not (region_code.isascii() and region_code.isdigit() and len(region_code) == 6):
        raise ValueError(f"region code must be 6 digits, got {region_code!r}")
    problem = region_problem(region_code)
    if problem is not None:
        raise ValueError(f"cannot issue an ID number for {region_code}: {problem}")
    return sum(int(d) * w for d, w in zip(region_code, WEIGHTS[:6], strict=True))


@cache
def _year_sum(year: int) -> int:
    if not EARLIEST_BIRTH.year <= year <= 9999:
        raise ValueError(f"birth year must be 1900 or later, got {year}")
    return sum(int(d) * w for d, w in zip(f"{year:04d}", WEIGHTS[6:10], strict=True))


def make_id_number(region_code: str, birth: date, sequence: int) -> str:
    """Build a valid ID number; ``sequence`` 0-999, odd for a man and even for a woman.

    The caller must not pass a future birth date (it is not checked, to keep this fast).
    """
    if not 0 <= sequence <= 999:
        raise ValueError(f"sequence must be 0-999, got {sequence}")
    year, month, day = birth.year, birth.month, birth.day
    total = (
        _region_sum(region_code)
        + _year_sum(year)
        + _MONTH_SUMS[month]
        + _DAY_SUMS[day]
        + _SEQUENCE_SUMS[sequence]
    )
    return f"{region_code}{year:04d}{month:02d}{day:02d}{sequence:03d}{_CHECK_CHARS[total % 11]}"
