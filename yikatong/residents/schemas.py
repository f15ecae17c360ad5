"""API shapes of the resident registry: masked unless revealed.

Request shapes check the form of each field (lengths, digits, characters) so the OpenAPI
document states them; the rules that need reference data or the database (check digit,
region scope, duplicates) are the service's, answered as ``invalid_resident`` and friends.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from yikatong.crypto.masking import mask_address, mask_id_number, mask_name, mask_phone
from yikatong.reference.regions import find_region, full_name
from yikatong.residents.models import STORED_CATEGORIES, Category, Resident, ResidentCategory
from yikatong.residents.service import age_on, categories_on
from yikatong.residents.validation import (
    ADDRESS_MAX,
    COUNTY_PATTERN,
    ID_NUMBER_PATTERN,
    NAME_MAX,
    NAME_PATTERN,
    PHONE_PATTERN,
    REFERENCE_MAX,
    SOURCE_MAX,
    TOWN_PATTERN,
)

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date_only(value: object) -> object:
    """Only ``YYYY-MM-DD``: pydantic would also take 0 or "0" as 1970-01-01 (a timestamp)."""
    if isinstance(value, dt.date) or (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        return value
    raise ValueError("Expected a date as YYYY-MM-DD")


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date_only)]
IdNumberIn = Annotated[
    str,
    Field(
        pattern=ID_NUMBER_PATTERN,
        description="18 characters (GB 11643); region, birth date and check digit are checked",
        examples=["441625199001011232"],
    ),
]
NameIn = Annotated[
    str,
    Field(
        min_length=1,
        max_length=NAME_MAX,
        pattern=NAME_PATTERN,
        description="As on the ID card: Chinese characters or letters, parts joined by ·",
        examples=["张小三"],
    ),
]
PhoneIn = Annotated[
    str, Field(pattern=PHONE_PATTERN, description="Mainland mobile", examples=["13812345678"])
]
AddressIn = Annotated[str, Field(min_length=1, max_length=ADDRESS_MAX)]
CountyIn = Annotated[
    str,
    Field(
        pattern=COUNTY_PATTERN,
        description="County of household registration (GB/T 2260), inside your region",
        examples=["441625"],
    ),
]
TownIn = Annotated[
    str, Field(pattern=TOWN_PATTERN, description="Township of that county", examples=["441625100"])
]


class ResidentOut(BaseModel):
    id: int
    name: str = Field(description="Masked: 张*三")
    id_number: str = Field(description="Masked: first 6 + ******** + last 4")
    sex: str
    age: int
    region_code: str
    region_name: str
    phone: str | None = Field(description="Masked: 138****5678")
    address: str | None = Field(description="Masked below the county level")
    status: str
    status_date: dt.date | None = Field(
        default=None, description="Date of death or emigration, when not active"
    )
    categories: list[Category] = Field(description="In force today; 'elderly' is derived")

    @classmethod
    def masked(cls, resident: Resident, today: dt.date) -> ResidentOut:
        return cls(
            id=resident.id,
            name=mask_name(resident.name),
            id_number=mask_id_number(resident.id_number),
            sex=resident.sex,
            age=age_on(resident.birth_date, today),
            region_code=resident.region_code,
            region_name=full_name(resident.region_code)
            if find_region(resident.region_code)
            else resident.region_code,
            phone=mask_phone(resident.phone) if resident.phone else None,
            address=mask_address(resident.address) if resident.address else None,
            status=resident.status,
            status_date=resident.status_date,
            categories=categories_on(resident, today),
        )


class ResidentPage(BaseModel):
    items: list[ResidentOut]
    total: int
    page: int
    per_page: int


class RevealedField(BaseModel):
    field: str
    value: str | None


class RegionCountOut(BaseModel):
    region_code: str
    region_name: str
    residents: int


class ResidentCreate(BaseModel):
    """A registration; the birth date and sex are read from the ID number."""

    model_config = ConfigDict(extra="forbid")

    id_number: IdNumberIn
    name: NameIn
    region_code: CountyIn
    town_code: TownIn | None = None
    phone: PhoneIn | None = None
    address: AddressIn | None = None


class ResidentChanges(BaseModel):
    """The fields to correct; omitted fields stay, ``null`` clears phone, address or town."""

    model_config = ConfigDict(extra="forbid")

    name: NameIn | None = None
    region_code: CountyIn | None = None
    town_code: TownIn | None = None
    phone: PhoneIn | None = None
    address: AddressIn | None = None


StoredCategory = Annotated[
    Category,
    Field(
        description="Any category but 'elderly', which follows from the birth date",
        json_schema_extra={"enum": [c.value for c in STORED_CATEGORIES]},
    ),
]


class CategoryGrant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: StoredCategory
    valid_from: IsoDate
    valid_to: IsoDate | None = Field(default=None, description="Last day; open-ended if null")
    source: str = Field(
        min_length=1,
        max_length=SOURCE_MAX,
        description="Who attested it (department, document)",
        examples=["东源县民政局"],
    )


class CategoryEnd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    valid_to: IsoDate = Field(description="The last day the category applies")


class CategoryOut(BaseModel):
    id: int
    category: Category
    valid_from: dt.date
    valid_to: dt.date | None
    source: str

    @classmethod
    def of(cls, period: ResidentCategory) -> CategoryOut:
        return cls(
            id=period.id,
            category=Category(period.category),
            valid_from=period.valid_from,
            valid_to=period.valid_to,
            source=period.source,
        )


class DepartureIn(BaseModel):
    """A death or emigration: the date and the document it is registered from."""

    model_config = ConfigDict(extra="forbid")

    date: IsoDate = Field(description="Date of death or of the move; not in the future")
    reference: str = Field(
        min_length=1,
        max_length=REFERENCE_MAX,
        description="Certificate or deregistration document number",
        examples=["粤河源死证2026-001234"],
    )


EXPORT_COLUMNS = (
    "id",
    "id_number",
    "name",
    "sex",
    "birth_date",
    "region_code",
    "town_code",
    "phone",
    "address",
    "categories",
    "status",
    "status_date",
)


def export_record(resident: Resident, today: dt.date, *, full: bool) -> dict[str, str]:
    """One exported row: personal fields masked unless ``full`` (an audited export)."""

    def shown(value: str | None, mask: Callable[[str], str]) -> str:
        if not value:
            return ""
        return value if full else mask(value)

    return {
        "id": str(resident.id),
        "id_number": shown(resident.id_number, mask_id_number),
        "name": shown(resident.name, mask_name),
        "sex": resident.sex,
        "birth_date": resident.birth_date.isoformat() if full else str(resident.birth_date.year),
        "region_code": resident.region_code,
        "town_code": resident.town_code or "",
        "phone": shown(resident.phone, mask_phone),
        "address": shown(resident.address, mask_address),
        # Stored categories only, so a full export can be imported elsewhere ('elderly'
        # follows from the birth date there too).
        "categories": ";".join(
            c.value for c in categories_on(resident, today) if c is not Category.ELDERLY
        ),
        "status": resident.status,
        "status_date": resident.status_date.isoformat() if resident.status_date else "",
    }
