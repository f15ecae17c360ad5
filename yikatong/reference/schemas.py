"""Response and request bodies of the reference-data API."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from yikatong.reference.regions import Level


class RegionOut(BaseModel):
    """An administrative division."""

    model_config = ConfigDict(frozen=True)

    code: str = Field(description="GB/T 2260 code (6 digits) or statistical town code (9 digits)")
    name: str = Field(description="Official Chinese name, e.g. 东源县")
    level: Level
    parent: str | None = Field(description="Code of the enclosing region; null for the province")
    full_name: str = Field(description="Names from the province down, e.g. 广东省河源市东源县")


class RegionDetail(RegionOut):
    """A division with the divisions directly inside it."""

    children: list[RegionOut]


class IdNumberCheckIn(BaseModel):
    """A resident ID number to check; spaces and full-width characters are accepted."""

    id_number: str = Field(min_length=1, max_length=64)


class IdNumberCheckOut(BaseModel):
    """What a valid ID number says; the number itself is only returned masked."""

    valid: Literal[True] = True
    id_number_masked: str = Field(
        description="First 6 + 8 asterisks + last 4", examples=["441625********123X"]
    )
    region_code: str = Field(description="Address code (first 6 digits)")
    region_name: str | None = Field(
        description="Full name of the address code if known; a former Guangdong code ends in 旧代码"
    )
    birth_date: date
    sex: Literal["male", "female"]
