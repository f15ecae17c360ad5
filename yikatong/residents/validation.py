"""The registry's field rules, in one place for the service, the import and the API schemas.

Each ``check_*`` function normalises what a person typed (full-width digits from Chinese input
methods, spaces, ``+86``, look-alike middle dots) and returns the clean value with the
:class:`FieldProblem` items it breaks, so a form or an import row can report every bad field
at once. Nothing here touches the database; scope is judged on the :class:`Actor`.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from yikatong.errors import N_
from yikatong.kit.actor import Actor
from yikatong.reference import regions
from yikatong.reference.idnumber import InvalidIdNumber, ParsedIdNumber, parse_id_number
from yikatong.residents.errors import FieldProblem
from yikatong.residents.models import Category
from yikatong.residents.repository import NewResident

NAME_MAX = 32
ADDRESS_MAX = 128
SOURCE_MAX = 64
REFERENCE_MAX = 64

MIDDLE_DOT = "·"
# Dots that input methods produce where an ethnic-minority name (e.g. 买买提·艾力) needs U+00B7.
_DOT_LOOKALIKES = str.maketrans(dict.fromkeys("・･•‧∙⋅", MIDDLE_DOT))
# CJK ideographs (basic, extensions A to H, and 〇) and Latin letters: what a name on a resident
# ID card is written in. Rare extension-B characters do occur in names.
NAME_CHARS = "\u3007\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0002ebef\U00030000-\U000323afA-Za-z"
NAME_PATTERN = f"^[{NAME_CHARS}]+(?:{MIDDLE_DOT}[{NAME_CHARS}]+)*$"
_NAME = re.compile(NAME_PATTERN)
PHONE_PATTERN = r"^1[3-9][0-9]{9}$"
_PHONE = re.compile(PHONE_PATTERN)
ID_NUMBER_PATTERN = r"^[0-9]{17}[0-9Xx]$"
COUNTY_PATTERN = r"^[0-9]{6}$"
TOWN_PATTERN = r"^[0-9]{9}$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CHINA = ZoneInfo("Asia/Shanghai")

# The ID number's own reasons (reference.idnumber) with messages a clerk can act on.
_ID_MESSAGES = {
    "length": N_("An ID number has 18 characters, this one has {actual}"),
    "characters": N_("The first 17 characters are digits, the last a digit or X"),
    "region": N_("Digits 1-6 are not a region code that was ever issued"),
    "birth_date": N_("Digits 7-14 are not a possible date of birth"),
    "check_digit": N_("The check character does not match: a digit was probably mistyped"),
}


def china_today() -> dt.date:
    """Today's civil date in China (a death on the evening of the 1st is not the 2nd in UTC)."""
    return dt.datetime.now(_CHINA).date()


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def normalize_name(value: str) -> str:
    """NFKC (full-width letters), no surrounding space, look-alike dots made U+00B7."""
    return unicodedata.normalize("NFKC", value).strip().translate(_DOT_LOOKALIKES)


def check_name(value: str | None, field: str = "name") -> tuple[str, list[FieldProblem]]:
    """1-32 CJK characters or letters, parts joined by single middle dots."""
    if _blank(value):
        return "", [FieldProblem(field, "required", N_("Enter the name as on the ID card"))]
    name = normalize_name(value or "")
    if len(name) > NAME_MAX:
        return name, [
            FieldProblem(field, "too_long", N_("At most {max} characters"), {"max": NAME_MAX})
        ]
    if not _NAME.match(name):
        return name, [
            FieldProblem(
                field,
                "characters",
                N_("Only Chinese characters, letters and the middle dot · between parts"),
            )
        ]
    return name, []


def normalize_phone(value: str) -> str:
    """Digits only: full-width digits folded, spaces and dashes dropped, +86 / 0086 removed."""
    text = "".join(unicodedata.normalize("NFKC", value).split()).replace("-", "")
    for prefix in ("+86", "0086"):
        if text.startswith(prefix):
            return text[len(prefix) :]
    if len(text) == 13 and text.startswith("861"):
        return text[2:]
    return text


def is_mobile(value: str) -> bool:
    """Whether ``value`` (already normalised) is a mainland mobile number."""
    return bool(_PHONE.match(value))


def check_phone(value: str | None, field: str = "phone") -> tuple[str | None, list[FieldProblem]]:
    """Optional; when given, a mainland mobile number (11 digits, 13-19...)."""
    if _blank(value):
        return None, []
    phone = normalize_phone(value or "")
    if not is_mobile(phone):
        return phone, [
            FieldProblem(
                field, "not_a_mobile", N_("A mainland mobile number: 11 digits starting 13-19")
            )
        ]
    return phone, []


def check_text(
    value: str | None, field: str, *, max_length: int, required: bool = False
) -> tuple[str | None, list[FieldProblem]]:
    """Free text (address, source, reference): one line, bounded, surrounding space dropped."""
    if _blank(value):
        if required:
            return None, [FieldProblem(field, "required", N_("Required"))]
        return None, []
    text = (value or "").strip()
    if _CONTROL.search(text):
        return text, [
            FieldProblem(field, "characters", N_("Contains characters that are not allowed"))
        ]
    if len(text) > max_length:
        return text, [
            FieldProblem(field, "too_long", N_("At most {max} characters"), {"max": max_length})
        ]
    return text, []


def check_id_number(
    value: str | None, today: dt.date, field: str = "id_number"
) -> tuple[ParsedIdNumber | None, list[FieldProblem]]:
    """GB 11643: length, characters, region part, birth date, MOD 11-2 check character."""
    if _blank(value):
        return None, [FieldProblem(field, "required", N_("Enter the 18-character ID number"))]
    try:
        return parse_id_number(value or "", today=today), []
    except InvalidIdNumber as exc:
        params = {"actual": exc.extra["actual"]} if exc.reason == "length" else {}
        message = _ID_MESSAGES.get(exc.reason, N_("Not a valid resident ID number"))
        return None, [FieldProblem(field, exc.reason, message, params)]


def check_county(
    value: str | None, actor: Actor, field: str = "region_code"
) -> tuple[str | None, list[FieldProblem]]:
    """A current county-level code (GB/T 2260) inside the actor's region."""
    if _blank(value):
        return None, [
            FieldProblem(
                field, "required", N_("Choose the county or district of household registration")
            )
        ]
    code = (value or "").strip()
    found = regions.find_region(code)
    if found is None:
        return None, [
            FieldProblem(
                field,
                "unknown_region",
                N_("{code} is not a current county or district code"),
                {"code": code[:12]},
            )
        ]
    if found.level != "county":
        return None, [
            FieldProblem(
                field, "not_a_county", N_("{code} is not a county or district"), {"code": code}
            )
        ]
    if not actor.covers(code):
        return None, [
            FieldProblem(field, "out_of_scope", N_("Outside the area you are responsible for"))
        ]
    return code, []


def check_town(
    value: str | None, county: str | None, field: str = "town_code"
) -> tuple[str | None, list[FieldProblem]]:
    """Optional; when given, a township of ``county``."""
    if _blank(value):
        return None, []
    code = (value or "").strip()
    found = regions.find_region(code)
    if found is None or found.level != "town":
        return None, [
            FieldProblem(
                field,
                "unknown_region",
                N_("{code} is not a current town code"),
                {"code": code[:12]},
            )
        ]
    if county is not None and found.parent != county:
        return None, [
            FieldProblem(field, "not_in_county", N_("{code} is not in that county"), {"code": code})
        ]
    return code, []


def check_date_not_future(day: dt.date, today: dt.date, field: str = "date") -> list[FieldProblem]:
    if day > today:
        return [FieldProblem(field, "future", N_("Cannot be in the future"))]
    return []


def check_categories(
    values: Sequence[str], field: str = "categories"
) -> tuple[list[Category], list[FieldProblem]]:
    """Category codes that may be stored (never 'elderly', which follows from the age)."""
    found: list[Category] = []
    problems: list[FieldProblem] = []
    for raw in values:
        value = raw.strip().lower()
        if not value:
            continue
        try:
            category = Category(value)
        except ValueError:
            problems.append(
                FieldProblem(
                    field,
                    "unknown_category",
                    N_("Unknown category {value}"),
                    {"value": value[:32]},
                )
            )
            continue
        if category is Category.ELDERLY:
            problems.append(
                FieldProblem(field, "derived", N_("Follows from the birth date; not granted"))
            )
        elif category not in found:
            found.append(category)
    return found, problems


@dataclass(frozen=True)
class ResidentInput:
    """What a clerk or an import row gives to register a resident (raw, as typed)."""

    id_number: str
    name: str
    region_code: str
    phone: str | None = None
    address: str | None = None
    town_code: str | None = None


def check_registration(
    data: ResidentInput,
    actor: Actor,
    today: dt.date,
    *,
    categories: Sequence[Category] = (),
    source: str = "registry",
) -> tuple[NewResident | None, list[FieldProblem]]:
    """Every rule of a new registration; the birth date and sex come from the ID number."""
    parsed, problems = check_id_number(data.id_number, today)
    name, found = check_name(data.name)
    problems += found
    county, found = check_county(data.region_code, actor)
    problems += found
    town, found = check_town(data.town_code, county)
    problems += found
    phone, found = check_phone(data.phone)
    problems += found
    address, found = check_text(data.address, "address", max_length=ADDRESS_MAX)
    problems += found
    if problems or parsed is None or county is None:
        return None, problems
    return (
        NewResident(
            id_number=parsed.number,
            name=name,
            sex=parsed.sex,
            birth_date=parsed.birth_date,
            region_code=county,
            town_code=town,
            phone=phone,
            address=address,
            categories=tuple((c, today, None) for c in categories),
            source=source,
        ),
        [],
    )
