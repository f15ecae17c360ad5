"""The auditors' audit-trail browser, with filters (htmx swaps the results) and chain check."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from yikatong.audit import service
from yikatong.audit.repository import AuditFilters
from yikatong.deps import DbSession, StaffActor, verify_csrf
from yikatong.errors import InvalidInput
from yikatong.kit.actor import Permission
from yikatong.kit.params import PageNumber
from yikatong.settings import get_settings
from yikatong.web.i18n import lazy_gettext
from yikatong.web.navigation import NavItem, register_nav
from yikatong.web.templating import is_htmx_partial, render

router = APIRouter(prefix="/staff/audit", include_in_schema=False)

register_nav(
    NavItem(
        "audit",
        lazy_gettext("Audit trail"),
        "/staff/audit",
        permission=Permission.AUDIT_READ.value,
        icon="shield",
        order=90,
    )
)

OUTCOMES = ("success", "denied", "failed")


def _local_day_start(value: str, field: str) -> dt.datetime | None:
    """A date typed on the page is a day in the city's time zone; storage is UTC."""
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidInput("Dates are written YYYY-MM-DD", field=field) from None
    zone = ZoneInfo(get_settings().timezone)
    return dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC)


@router.get("")
def browse(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    actor_name: Annotated[str, Query(alias="actor", max_length=64)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    object_type: Annotated[str, Query(max_length=32)] = "",
    object_id: Annotated[str, Query(max_length=64)] = "",
    outcome: Annotated[str, Query(max_length=16)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    page: PageNumber = 1,
) -> Response:
    until_start = _local_day_start(until, "until")
    filters = AuditFilters(
        actor=actor_name or None,
        action=action or None,
        object_type=object_type or None,
        object_id=object_id or None,
        outcome=outcome if outcome in OUTCOMES else None,
        since=_local_day_start(since, "since"),
        until=until_start + dt.timedelta(days=1) if until_start else None,
    )
    result = service.browse(session, actor, filters, page=page, per_page=50)
    form = {
        "actor": actor_name,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "outcome": outcome,
        "since": since,
        "until": until,
    }
    query = urlencode({k: v for k, v in form.items() if v})
    template = "audit/_results.html" if is_htmx_partial(request) else "audit/browse.html"
    return render(
        request,
        template,
        {
            "page": result,
            "form": form,
            "outcomes": OUTCOMES,
            "query": query,
            "can_verify": actor.can(Permission.AUDIT_VERIFY),
            "report": None,
        },
    )


@router.post("/verify", dependencies=[Depends(verify_csrf)])
def verify(request: Request, session: DbSession, actor: StaffActor) -> Response:
    """Recompute the chain and show the result in place."""
    report = service.verify_for(session, actor)
    return render(request, "audit/_verify.html", {"report": report})
