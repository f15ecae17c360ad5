"""API shapes of the resident registry: masked unless revealed."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from yikatong.crypto.masking import mask_address, mask_id_number, mask_name, mask_phone
from yikatong.reference.regions import find_region, full_name
from yikatong.residents.models import Category, Resident
from yikatong.residents.service import age_on, categories_on


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
    categories: list[Category]

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
