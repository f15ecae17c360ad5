"""The clerks' resident registry pages: search (masked), one resident, reveal a field."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from yikatong.crypto.masking import mask_id_number
from yikatong.deps import DbSession, StaffActor, counties_within, verify_csrf
from yikatong.errors import InvalidInput
from yikatong.kit.actor import Actor, Permission
from yikatong.kit.params import PageNumber, RowId
from yikatong.residents import service
from yikatong.residents.models import Category
from yikatong.residents.schemas import ResidentOut
from yikatong.web.i18n import lazy_gettext
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


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _search_page(
    request: Request,
    session: Session,
    actor: Actor,
    q: str,
    region_code: str,
    category: str,
    page: int,
) -> Response:
    """One box: an 18-character ID number searches exactly, anything else a name prefix."""
    text = q.strip()
    is_id = len(text) == 18 and text[:17].isdigit()
    try:
        chosen = Category(category) if category else None
    except ValueError:
        raise InvalidInput("Unknown category", field="category") from None
    query = service.ResidentQuery(
        id_number=text if is_id else None,
        name=None if is_id or not text else text,
        region_code=region_code or None,
        category=chosen,
    )
    result = service.search(session, actor, query, page=page, per_page=20)
    today = _today()
    regions = counties_within(actor)
    # An ID number never goes into a URL (history, logs, referrers) and is not echoed back:
    # the page shows it masked.
    form = {"q": "" if is_id else q, "region_code": region_code, "category": category}
    linkable = {k: v for k, v in form.items() if v}
    context = {
        "items": [ResidentOut.masked(r, today) for r in result.items],
        "page": result,
        "form": form,
        "regions": regions,
        "categories": list(Category),
        "query": urlencode(linkable),
        "searched_id": mask_id_number(text) if is_id else None,
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
    """The search form posts, so an ID number typed into it stays out of every URL."""
    return _search_page(request, session, actor, q, region_code, category, 1)


@router.get("/{resident_id}")
def detail(request: Request, session: DbSession, actor: StaffActor, resident_id: RowId) -> Response:
    resident = service.get(session, actor, resident_id)
    return render(
        request,
        "residents/detail.html",
        {
            "resident": ResidentOut.masked(resident, _today()),
            "can_reveal": actor.can(Permission.RESIDENTS_READ_SENSITIVE),
            "birth_date": resident.birth_date,
        },
    )


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
