"""Errors of the resident registry, each with a stable code (documented at /problems/<code>).

Field-level failures carry :class:`FieldProblem` items: the English message is a msgid with
``{name}`` fields so the pages can show it translated next to its field, while the API and
the CLI get the formatted English in ``errors[]``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from yikatong.errors import N_, Conflict, InvalidInput, PermissionDenied


@dataclass(frozen=True)
class FieldProblem:
    """One field that breaks a rule: ``reason`` is a stable machine word, ``message`` a msgid."""

    field: str
    reason: str
    message: str
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def text(self) -> str:
        """The English message with its parameters filled in."""
        return self.message.format(**self.params) if self.params else self.message

    def as_error(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason, "message": self.text}


class InvalidResident(InvalidInput):
    """One or more details of a resident break the registry's rules; ``errors`` names each
    field with a ``reason`` (e.g. ``check_digit``, ``not_a_county``, ``not_a_mobile``)."""

    code = "invalid_resident"
    title = N_("Some details are not valid")

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        if not problems:
            raise ValueError("InvalidResident needs at least one problem")
        fields = ", ".join(dict.fromkeys(p.field for p in problems))
        super().__init__(
            N_("Check these fields: {fields}"),
            params={"fields": fields},
            errors=[p.as_error() for p in problems],
        )
        self.problems = tuple(problems)


class RegionOutOfScope(PermissionDenied):
    """The household region lies outside the region the member of staff is responsible for."""

    code = "region_out_of_scope"
    title = N_("That region is outside the area you are responsible for")

    def __init__(
        self, detail: str, *, params: Mapping[str, Any] | None = None, field: str = "region_code"
    ) -> None:
        super().__init__(detail, params=params)
        self.extra["errors"] = [{"field": field, "message": self.detail}]
        self.problems = (
            FieldProblem(field, "out_of_scope", N_("Outside the area you are responsible for")),
        )


class ResidentExists(Conflict):
    """A resident with this ID number is already registered (anywhere in the registry)."""

    code = "resident_exists"
    title = N_("A resident with this ID number is already registered")

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail, errors=[{"field": "id_number", "message": detail}], **extra)
        self.problems = (
            FieldProblem("id_number", "exists", N_("This ID number is already registered")),
        )


class ResidentNotActive(Conflict):
    """The change needs a living resident still registered here, and this one is not."""

    code = "resident_not_active"
    title = N_("The resident is no longer active in the registry")


class CategoryOverlap(Conflict):
    """The resident already holds this category during part of the requested period."""

    code = "category_overlap"
    title = N_("The resident already holds this category in that period")

    def __init__(self, category: str, start: dt.date, end: dt.date | None) -> None:
        if end is None:
            message = N_("Overlaps the period of {category} from {start}, which has no end")
        else:
            message = N_("Overlaps the period of {category} from {start} to {end}")
        params = {
            "category": category,
            "start": start.isoformat(),
            "end": end.isoformat() if end else "",
        }
        super().__init__(message, params=params, category=category)
        self.extra["errors"] = [{"field": "valid_from", "message": self.detail}]
        self.problems = (FieldProblem("valid_from", "overlap", message, params),)


class DerivedCategory(InvalidInput):
    """'elderly' follows from the birth date and is never stored."""

    code = "category_derived"
    title = N_("This category follows from the birth date and cannot be granted")

    def __init__(self, detail: str) -> None:
        super().__init__(detail, field="category")
        self.problems = (
            FieldProblem("category", "derived", N_("Follows from the birth date; not granted")),
        )


class CategoryAlreadyEnded(Conflict):
    """The category period already ends on or before the requested end date."""

    code = "category_ended"
    title = N_("This category period has already ended")

    def __init__(self, detail: str, *, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(detail, params=params)
        self.extra["errors"] = [{"field": "valid_to", "message": self.detail}]
        self.problems = (
            FieldProblem("valid_to", "already_ended", N_("The period already ends by then")),
        )


class ImportFileInvalid(InvalidInput):
    """The import file cannot be read as a table of residents (type, encoding, header)."""

    code = "import_file_invalid"
    title = N_("The file cannot be imported")

    def __init__(self, detail: str, *, row: int = 1, field: str = "file") -> None:
        super().__init__(detail, field=field, row=row)
        self.row = row
        self.field = field
