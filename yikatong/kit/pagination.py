"""A page of results, shared by every listing (API and pages render the same object)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

MAX_PER_PAGE = 200
MAX_PAGE = 100_000


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def clamp(page: int, per_page: int) -> tuple[int, int]:
    """Page and size inside their bounds (services get the same protection as the edges)."""
    return min(max(1, page), MAX_PAGE), min(max(1, per_page), MAX_PER_PAGE)
