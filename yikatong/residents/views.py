"""The clerks' resident registry pages: search (masked), one resident, reveal a field, and the
write side: register, correct, categories, death and emigration (with a confirmation step).

Every form posts with its CSRF token and, when the service refuses, is shown again with the
message next to each field (``field_errors``). ID and phone numbers travel only in POST
bodies, never in a URL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from yikatong.crypto.masking import mask_id_number, mask_phone
from yikatong.deps import DbSession, StaffActor, counties_within, verify_csrf
from yikatong.errors import N_, InvalidInput, NotFound, PermissionDenied, YikatongError
from yikatong.kit.actor import Actor, Permission
from yikatong.kit.params import PageNumber, RowId
from yikatong.reference.regions import find_region, towns_of
from yikatong.residents import service
from yikatong.residents.errors import (
    FieldProblem,
    InvalidResident,
    RegionOutOfScope,
    ResidentNotActive,
)
from yikatong.residents.models import STORED_CATEGORIES, Category, Resident, ResidentStatus
from yikatong.residents.schemas import ResidentOut
from yikatong.residents.validation import (
    REFERENCE_MAX,
    ResidentInput,
    check_text,
    china_today,
    is_mobile,
    normalize_phone,
)
from yikatong.web.i18n import LazyString, gettext, lazy_gettext, translate_message
from yikatong.web.navigation import NavItem, register_nav
from yikatong.web.templating import is_htmx_partial, render

router = APIRouter(prefix="/staff/residents", include_in_schema=False)

register_nav(
    NavItem(
        "residents",
        lazy_gettext("Residents"),
        "/staff/residents",
        permission=Permission.RESIDENTS_READ.value,
        icon="id",
        order=10,
    )
)

# What the detail page says after a change (?done=...); unknown values show nothing.
DONE_MESSAGES: dict[str, LazyString] = {
    "registered": lazy_gettext("The resident is registered."),
    "updated": lazy_gettext("The changes are saved."),
    "category_granted": lazy_gettext("The category is granted."),
    "category_ended": lazy_gettext("The category period is ended."),
    "deceased": lazy_gettext("The death is registered. Any card of the resident is cancelled."),
    "emigrated": lazy_gettext(
        "The emigration is registered. Any card of the resident is cancelled."
    ),
}
# The two departures a clerk can register: URL word -> (status, done key).
DEPARTURES: dict[str, tuple[ResidentStatus, str]] = {
    "death": (ResidentStatus.DECEASED, "deceased"),
    "emigration": (ResidentStatus.EMIGRATED, "emigrated"),
}


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class _Message:
    """A msgid and its parameters, translated when the page renders (in the page's language)."""

    __slots__ = ("msgid", "params")

    def __init__(self, msgid: str, params: Mapping[str, Any] | None = None) -> None:
        self.msgid = msgid
        self.params = dict(params or {})

    def __str__(self) -> str:
        # A category travels as its code ("low_income"); show it in the page's language.
        params = {
            k: gettext(v) if k == "category" and isinstance(v, str) else v
            for k, v in self.params.items()
        }
        return translate_message(self.msgid, params)


def _field_errors(error: YikatongError | None) -> dict[str, _Message | str]:
    """{field: message} of a refusal, translated where the error says which rule it broke."""
    if error is None:
        return {}
    found: dict[str, _Message | str] = {}
    problems: tuple[FieldProblem, ...] = getattr(error, "problems", ())
    for problem in problems:
        found.setdefault(problem.field, _Message(problem.message, problem.params))
    for item in error.extra.get("errors", []):
        found.setdefault(str(item["field"]), str(item["message"]))
    return found


def _settle(session: Session, error: YikatongError) -> None:
    """Keep what the refusal recorded (audited denials), undo everything else."""
    if error.keep_changes:
        session.commit()
    else:
        session.rollback()


def _not_for_the_form(error: YikatongError) -> bool:
    """Refusals that are not about what was typed: shown as an error page, not on the form."""
    if isinstance(error, RegionOutOfScope):
        return False
    return isinstance(error, NotFound | PermissionDenied)


def _done(resident_id: int, what: str, anchor: str = "") -> RedirectResponse:
    return RedirectResponse(f"/staff/residents/{resident_id}?done={what}{anchor}", status_code=303)


def _date(value: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidResident(
            [FieldProblem(field, "not_a_date", N_("Enter a date as YYYY-MM-DD"))]
        ) from None


def _town_options(actor: Actor, county: str) -> list[tuple[str, str]]:
    """The towns of ``county`` when it is a county the actor covers, else none."""
    region = find_region(county) if county else None
    if region is None or region.level != "county" or not actor.covers(county):
        return []
    return [(t.code, t.name) for t in towns_of(county)]


# --- search ------------------------------------------------------------------------------------


def _search_page(
    request: Request,
    session: Session,
    actor: Actor,
    q: str,
    region_code: str,
    category: str,
    page: int,
) -> Response:
    """One box: an 18-character ID number or a mobile number searches exactly, anything else
    a name prefix."""
    text = q.strip()
    is_id = len(text) == 18 and text[:17].isdigit()
    phone = normalize_phone(text)
    is_phone = not is_id and is_mobile(phone)
    try:
        chosen = Category(category) if category else None
    except ValueError:
        raise InvalidInput("Unknown category", field="category") from None
    query = service.ResidentQuery(
        id_number=text if is_id else None,
        phone=phone if is_phone else None,
        name=None if is_id or is_phone or not text else text,
        region_code=region_code or None,
        category=chosen,
    )
    result = service.search(session, actor, query, page=page, per_page=20)
    today = _today()
    regions = counties_within(actor)
    # An ID or phone number never goes into a URL (history, logs, referrers) and is not echoed
    # back: the page shows it masked.
    form = {"q": "" if is_id or is_phone else q, "region_code": region_code, "category": category}
    linkable = {k: v for k, v in form.items() if v}
    context = {
        "items": [ResidentOut.masked(r, today) for r in result.items],
        "page": result,
        "form": form,
        "regions": regions,
        "categories": list(Category),
        "query": urlencode(linkable),
        "searched_id": mask_id_number(text) if is_id else None,
        "searched_phone": mask_phone(phone) if is_phone else None,
        "can_write": actor.can(Permission.RESIDENTS_WRITE),
    }
    template = "residents/_results.html" if is_htmx_partial(request) else "residents/search.html"
    return render(request, template, context)


@router.get("")
def search(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    q: Annotated[str, Query(max_length=64)] = "",
    region_code: Annotated[str, Query(max_length=9)] = "",
    category: Annotated[str, Query(max_length=32)] = "",
    page: PageNumber = 1,
) -> Response:
    """Browse by name prefix, county and category (pageable, linkable)."""
    return _search_page(request, session, actor, q, region_code, category, page)


@router.post("", dependencies=[Depends(verify_csrf)])
def search_posted(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    q: Annotated[str, Form(max_length=64)] = "",
    region_code: Annotated[str, Form(max_length=9)] = "",
    category: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """The search form posts, so an ID or phone number typed into it stays out of every URL."""
    return _search_page(request, session, actor, q, region_code, category, 1)


# --- register and correct ----------------------------------------------------------------------


def _form_page(
    request: Request,
    actor: Actor,
    *,
    form: dict[str, str],
    resident: ResidentOut | None = None,
    error: YikatongError | None = None,
) -> Response:
    """The registration form (``resident`` None) or the correction form of ``resident``."""
    return render(
        request,
        "residents/form.html",
        {
            "form": form,
            "resident": resident,
            "regions": counties_within(actor),
            "towns": _town_options(actor, form.get("region_code", "")),
            "error": error,
            "field_errors": _field_errors(error),
            "existing_id": error.extra.get("resident_id") if error else None,
        },
        status_code=error.status if error else 200,
    )


@router.get("/new")
def register_form(request: Request, session: DbSession, actor: StaffActor) -> Response:
    """The empty registration form."""
    service.require_write(session, actor, "resident.register")
    counties = counties_within(actor)
    default = counties[0][0] if len(counties) == 1 else ""
    return _form_page(request, actor, form={"region_code": default})


@router.post("/new", dependencies=[Depends(verify_csrf)])
def register(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    id_number: Annotated[str, Form(max_length=32)] = "",
    name: Annotated[str, Form(max_length=64)] = "",
    region_code: Annotated[str, Form(max_length=12)] = "",
    town_code: Annotated[str, Form(max_length=12)] = "",
    phone: Annotated[str, Form(max_length=32)] = "",
    address: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Register; the new resident's page opens on success."""
    form = {
        "id_number": id_number,
        "name": name,
        "region_code": region_code,
        "town_code": town_code,
        "phone": phone,
        "address": address,
    }
    try:
        resident = service.register(
            session,
            actor,
            ResidentInput(
                id_number=id_number,
                name=name,
                region_code=region_code,
                town_code=town_code or None,
                phone=phone or None,
                address=address or None,
            ),
        )
    except YikatongError as exc:
        _settle(session, exc)
        if _not_for_the_form(exc):
            raise
        return _form_page(request, actor, form=form, error=exc)
    return _done(resident.id, "registered")


@router.get("/towns")
def town_options(
    request: Request,
    actor: StaffActor,
    region_code: Annotated[str, Query(max_length=12)] = "",
) -> Response:
    """The town <option>s of a county (htmx swaps them in when the county changes)."""
    return render(
        request,
        "residents/_towns.html",
        {"towns": _town_options(actor, region_code), "selected": ""},
    )


@router.get("/{resident_id}")
def detail(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    resident_id: RowId,
    done: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    resident = service.get(session, actor, resident_id)
    return _detail_page(request, actor, resident, done=done)


def _periods(resident: Resident, today: dt.date) -> list[dict[str, Any]]:
    rows = []
    for period in sorted(resident.categories, key=lambda c: (c.valid_from, c.category, c.id)):
        if period.valid_from > today:
            state = "upcoming"
        elif period.valid_to is not None and period.valid_to < today:
            state = "ended"
        else:
            state = "current"
        rows.append(
            {
                "id": period.id,
                "category": period.category,
                "valid_from": period.valid_from,
                "valid_to": period.valid_to,
                "source": period.source,
                "state": state,
            }
        )
    return rows


def _detail_page(
    request: Request,
    actor: Actor,
    resident: Resident,
    *,
    done: str = "",
    error: YikatongError | None = None,
    grant_form: dict[str, str] | None = None,
    end_for: int | None = None,
) -> Response:
    """One resident; a refused category change is shown on the panel it came from."""
    today = china_today()
    errors = _field_errors(error)
    return render(
        request,
        "residents/detail.html",
        {
            "resident": ResidentOut.masked(resident, _today()),
            "can_reveal": actor.can(Permission.RESIDENTS_READ_SENSITIVE),
            "can_write": actor.can(Permission.RESIDENTS_WRITE),
            "is_active": resident.status == ResidentStatus.ACTIVE.value,
            "birth_date": resident.birth_date,
            "status_date": resident.status_date,
            "periods": _periods(resident, today),
            "category_options": [(c.value, _Message(c.value)) for c in STORED_CATEGORIES],
            "today": today.isoformat(),
            "done": DONE_MESSAGES.get(done),
            "error": error,
            "grant_form": grant_form or {"valid_from": today.isoformat()},
            "grant_errors": errors if end_for is None else {},
            "end_for": end_for,
            "end_errors": errors if end_for is not None else {},
        },
        status_code=error.status if error else 200,
    )


def _edit_form(resident: Resident) -> dict[str, str]:
    # Names, phones and addresses are not filled in: the form shows them masked, and a clerk
    # types only what changes (nothing sensitive is revealed by opening the form).
    return {"region_code": resident.region_code, "town_code": resident.town_code or ""}


@router.get("/{resident_id}/edit")
def edit_form(
    request: Request, session: DbSession, actor: StaffActor, resident_id: RowId
) -> Response:
    """The correction form, current values masked."""
    service.require_write(session, actor, "resident.update")
    resident = service.get(session, actor, resident_id)
    return _form_page(
        request, actor, form=_edit_form(resident), resident=ResidentOut.masked(resident, _today())
    )


@router.post("/{resident_id}/edit", dependencies=[Depends(verify_csrf)])
def edit(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    resident_id: RowId,
    name: Annotated[str, Form(max_length=64)] = "",
    region_code: Annotated[str, Form(max_length=12)] = "",
    town_code: Annotated[str, Form(max_length=12)] = "",
    phone: Annotated[str, Form(max_length=32)] = "",
    address: Annotated[str, Form(max_length=256)] = "",
    clear_phone: Annotated[bool, Form()] = False,
    clear_address: Annotated[bool, Form()] = False,
) -> Response:
    """Save the fields that were filled in (blank name, phone, address: unchanged)."""
    changes: dict[str, str | None] = {"region_code": region_code, "town_code": town_code or None}
    if name.strip():
        changes["name"] = name
    if clear_phone:
        changes["phone"] = None
    elif phone.strip():
        changes["phone"] = phone
    if clear_address:
        changes["address"] = None
    elif address.strip():
        changes["address"] = address
    try:
        service.update(session, actor, resident_id, changes)
    except YikatongError as exc:
        _settle(session, exc)
        if _not_for_the_form(exc):
            raise
        resident = service.get(session, actor, resident_id)
        form = {
            "name": name,
            "region_code": region_code,
            "town_code": town_code,
            "phone": phone,
            "address": address,
        }
        return _form_page(
            request, actor, form=form, resident=ResidentOut.masked(resident, _today()), error=exc
        )
    return _done(resident_id, "updated")


# --- categories --------------------------------------------------------------------------------


@router.post("/{resident_id}/categories", dependencies=[Depends(verify_csrf)])
def grant_category(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    resident_id: RowId,
    category: Annotated[str, Form(max_length=32)] = "",
    valid_from: Annotated[str, Form(max_length=10)] = "",
    valid_to: Annotated[str, Form(max_length=10)] = "",
    source: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Grant a category for a period (the panel on the resident's page)."""
    form = {"category": category, "valid_from": valid_from, "valid_to": valid_to, "source": source}
    try:
        service.require_write(session, actor, "resident.category.grant")
        problems: list[FieldProblem] = []
        if not category:
            problems.append(FieldProblem("category", "required", N_("Choose a category")))
        days: dict[str, dt.date | None] = {"valid_from": None, "valid_to": None}
        for field, value in (("valid_from", valid_from), ("valid_to", valid_to)):
            if field == "valid_to" and not value.strip():
                continue
            try:
                days[field] = _date(value, field)
            except InvalidResident as exc:
                problems += exc.problems
        start = days["valid_from"]
        if problems or start is None:
            raise InvalidResident(problems)
        service.grant_category(
            session, actor, resident_id, category, start, days["valid_to"], source
        )
    except YikatongError as exc:
        _settle(session, exc)
        if _not_for_the_form(exc):
            raise
        resident = service.get(session, actor, resident_id)
        return _detail_page(request, actor, resident, error=exc, grant_form=form)
    return _done(resident_id, "category_granted", "#categories")


@router.post("/{resident_id}/categories/{category_id}/end", dependencies=[Depends(verify_csrf)])
def end_category(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    resident_id: RowId,
    category_id: RowId,
    valid_to: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """End a category period on the given day."""
    try:
        service.end_category(session, actor, resident_id, category_id, _date(valid_to, "valid_to"))
    except YikatongError as exc:
        _settle(session, exc)
        if _not_for_the_form(exc):
            raise
        resident = service.get(session, actor, resident_id)
        return _detail_page(request, actor, resident, error=exc, end_for=category_id)
    return _done(resident_id, "category_ended", "#categories")


# --- death and emigration -----------------------------------------------------------------------


def _departure_page(
    request: Request,
    actor: Actor,
    resident: Resident,
    kind: str,
    *,
    step: str,
    form: dict[str, str],
    error: YikatongError | None = None,
) -> Response:
    return render(
        request,
        "residents/departure.html",
        {
            "resident": ResidentOut.masked(resident, _today()),
            "birth_date": resident.birth_date,
            "kind": kind,
            "step": step,
            "form": form,
            "today": china_today().isoformat(),
            "error": error,
            "field_errors": _field_errors(error),
        },
        status_code=error.status if error else 200,
    )


def _departure_form(
    request: Request, session: Session, actor: Actor, resident_id: int, kind: str
) -> Response:
    service.require_write(session, actor, f"resident.{kind}")
    resident = service.get(session, actor, resident_id)
    if resident.status != ResidentStatus.ACTIVE.value:
        # Nothing to register: the page says so instead of offering a form that must fail.
        error = ResidentNotActive(
            N_("The resident is already registered as {status}"),
            params={"status": resident.status},
        )
        return _departure_page(request, actor, resident, kind, step="form", form={}, error=error)
    return _departure_page(
        request, actor, resident, kind, step="form", form={"date": china_today().isoformat()}
    )


def _departure_date(date: str, reference: str) -> dt.date:
    """The date typed; when it is not one, the reference is checked too, so the form names
    every bad field at once."""
    try:
        return _date(date, "date")
    except InvalidResident as exc:
        _clean, found = check_text(reference, "reference", max_length=REFERENCE_MAX, required=True)
        raise InvalidResident([*exc.problems, *found]) from None


def _departure_check(
    request: Request,
    session: Session,
    actor: Actor,
    resident_id: int,
    kind: str,
    date: str,
    reference: str,
) -> Response:
    """Step 1: every check, then a page restating what will happen; nothing changes yet."""
    status, _done_key = DEPARTURES[kind]
    form = {"date": date, "reference": reference}
    try:
        resident = service.preview_departure(
            session, actor, resident_id, status, _departure_date(date, reference), reference
        )
    except YikatongError as exc:
        _settle(session, exc)
        if _not_for_the_form(exc):
            raise
        resident = service.get(session, actor, resident_id)
        return _departure_page(request, actor, resident, kind, step="form", form=form, error=exc)
    return _departure_page(request, actor, resident, kind, step="confirm", form=form)


def _departure_confirmed(
    request: Request,
    session: Session,
    actor: Actor,
    resident_id: int,
    kind: str,
    date: str,
    reference: str,
) -> Response:
    """Step 2: register it; the card domain cancels the card in the same transaction."""
    status, done_key = DEPARTURES[kind]
    form = {"date": date, "reference": reference}
    register_departure = (
        service.register_death if status is ResidentStatus.DECEASED else service.register_emigration
    )
    try:
        register_departure(session, actor, resident_id, _departure_date(date, reference), reference)
    except YikatongError as exc:
        _settle(session, exc)
        if _not_for_the_form(exc):
            raise
        resident = service.get(session, actor, resident_id)
        return _departure_page(request, actor, resident, kind, step="form", form=form, error=exc)
    return _done(resident_id, done_key)


DateForm = Annotated[str, Form(max_length=10)]
ReferenceForm = Annotated[str, Form(max_length=128)]


@router.get("/{resident_id}/death")
def death_form(
    request: Request, session: DbSession, actor: StaffActor, resident_id: RowId
) -> Response:
    """Register a death: date and certificate."""
    return _departure_form(request, session, actor, resident_id, "death")


@router.post("/{resident_id}/death", dependencies=[Depends(verify_csrf)])
def death_check(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    resident_id: RowId,
    date: DateForm = "",
    reference: ReferenceForm = "",
) -> Response:
    """Check a death registration and ask for confirmation."""
    return _departure_check(request, session, actor, resident_id, "death", date, reference)


@router.post("/{resident_id}/death/confirm", dependencies=[Depends(verify_csrf)])
def death_confirm(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    resident_id: RowId,
    date: DateForm = "",
    reference: ReferenceForm = "",
) -> Response:
    """Register the confirmed death."""
    return _departure_confirmed(request, session, actor, resident_id, "death", date, reference)


@router.get("/{resident_id}/emigration")
def emigration_form(
    request: Request, session: DbSession, actor: StaffActor, resident_id: RowId
) -> Response:
    """Register an emigration: date and deregistration document."""
    return _departure_form(request, session, actor, resident_id, "emigration")


@router.post("/{resident_id}/emigration", dependencies=[Depends(verify_csrf)])
def emigration_check(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    resident_id: RowId,
    date: DateForm = "",
    reference: ReferenceForm = "",
) -> Response:
    """Check an emigration and ask for confirmation."""
    return _departure_check(request, session, actor, resident_id, "emigration", date, reference)


@router.post("/{resident_id}/emigration/confirm", dependencies=[Depends(verify_csrf)])
def emigration_confirm(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    resident_id: RowId,
    date: DateForm = "",
    reference: ReferenceForm = "",
) -> Response:
    """Register the confirmed emigration."""
    return _departure_confirmed(request, session, actor, resident_id, "emigration", date, reference)


# --- reveal -------------------------------------------------------------------------------------


@router.post("/{resident_id}/reveal", dependencies=[Depends(verify_csrf)])
def reveal(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    resident_id: RowId,
    field: Annotated[str, Form(max_length=16)],
) -> Response:
    """Show one unmasked value in place (htmx); the reveal is audited."""
    value = service.reveal(session, actor, resident_id, field)
    return render(request, "residents/_revealed.html", {"value": value, "field": field})
