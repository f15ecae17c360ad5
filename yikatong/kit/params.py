"""Typed query/path parameters shared by the API and the pages.

Bounds keep hostile values from reaching the database (an offset or id beyond a 64-bit integer
is a 422 here, not an overflow there).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from yikatong.kit.pagination import MAX_PAGE, MAX_PER_PAGE

MAX_ROW_ID = 2**63 - 1

PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page number, from 1")]
PerPage = Annotated[int, Query(ge=1, le=MAX_PER_PAGE, description="Items per page")]
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
