"""API edge of the reference data: regions and ID-number checks (mounted at /api/v1/reference)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from yikatong.errors import NotFound
from yikatong.reference import regions
from yikatong.reference.idnumber import parse_id_number
from yikatong.reference.schemas import IdNumberCheckIn, IdNumberCheckOut, RegionDetail, RegionOut
from yikatong.settings import get_settings

router = APIRouter(tags=["reference"])

_CODE_PATTERN = r"^\d{6}(\d{3})?$"


def _out(item: regions.Region) -> RegionOut:
    return RegionOut(
        code=item.code,
        name=item.name,
        level=item.level,
        parent=item.parent,
        full_name=regions.full_name(item.code),
    )


def _region_name(code: str) -> str | None:
    if regions.find_region(code) is not None:
        return regions.full_name(code)
    former = regions.historical_region(code)
    if former is not None:
        return f"广东省{former.name}（旧代码）"
    return None


@router.get("/regions", response_model=list[RegionOut])
def list_regions(
    parent: Annotated[
        str | None,
        Query(pattern=_CODE_PATTERN, description="Parent code; default: the configured city"),
    ] = None,
) -> list[RegionOut]:
    """List the regions directly inside a parent (default: the counties of the configured city)."""
    code = parent if parent is not None else get_settings().region_code
    return [_out(item) for item in regions.children(code)]


@router.get("/regions/{code}", response_model=RegionDetail)
def get_region(code: Annotated[str, Path(pattern=_CODE_PATTERN)]) -> RegionDetail:
    """Show one region with its full name and the regions directly inside it."""
    item = regions.find_region(code)
    if item is None:
        # A missing resource in the path is a 404; UnknownRegion (422) is for codes in input.
        raise NotFound("No region with code {code}", params={"code": code})
    return RegionDetail(
        **_out(item).model_dump(), children=[_out(child) for child in regions.children(code)]
    )


@router.post("/id-numbers/check", response_model=IdNumberCheckOut)
def check_id_number(body: IdNumberCheckIn) -> IdNumberCheckOut:
    """Check a resident ID number and return what it encodes (the number only masked)."""
    parsed = parse_id_number(body.id_number)
    return IdNumberCheckOut(
        id_number_masked=parsed.masked,
        region_code=parsed.region_code,
        region_name=_region_name(parsed.region_code),
        birth_date=parsed.birth_date,
        sex=parsed.sex,
    )
