"""FastAPI dependencies shared by the API and the pages: session, actor, CSRF.

The request owns the transaction through :func:`get_db`; every other dependency that needs the
database receives the same session (FastAPI caches a dependency per request).
"""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from yikatong.crypto.keystore import resolve_secret_key
from yikatong.crypto.sm3 import hmac_sm3
from yikatong.db import session_factory, transaction
from yikatong.errors import AuthenticationRequired, CsrfFailed
from yikatong.kit.actor import Actor, Permission, Role
from yikatong.reference.regions import counties_of, find_region, full_name
from yikatong.settings import get_settings
from yikatong.staff import service as staff_service
from yikatong.staff.errors import SessionExpired
from yikatong.staff.models import StaffMember
from yikatong.web.i18n import LazyString, lazy_gettext

SESSION_COOKIE = "yk_session"
PENDING_COOKIE = "yk_login"
CSRF_COOKIE = "yk_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def get_db(request: Request) -> Iterator[Session]:
    """One session per request; commit when the handler returns, roll back when it raises."""
    factory = getattr(request.app.state, "session_factory", None) or session_factory()
    with factory() as session, transaction(session):
        yield session


DbSession = Annotated[Session, Depends(get_db)]


def request_actor(request: Request) -> Actor:
    """The anonymous caller with the request's facts, before any login."""
    client = request.client.host if request.client else None
    return Actor.anonymous(
        ip=client,
        user_agent=request.headers.get("user-agent"),
        request_id=getattr(request.state, "request_id", None),
    )


ROLE_LABELS = {
    Role.PLATFORM_ADMIN: lazy_gettext("Platform administrator"),
    Role.COUNTER_CLERK: lazy_gettext("Counter clerk"),
    Role.DEPARTMENT_ADMIN: lazy_gettext("Department administrator"),
    Role.AUDITOR: lazy_gettext("Auditor"),
    Role.LEADERSHIP: lazy_gettext("Leadership"),
}


@dataclass(frozen=True)
class ConsolePrincipal:
    """What the console templates know of the logged-in staff member."""

    actor: Actor
    username: str
    display_name: str
    role: str
    role_label: str | LazyString
    region_code: str
    region_name: str
    department: str | None

    def can(self, permission: str) -> bool:
        return self.actor.can(Permission(permission))

    @classmethod
    def of(cls, member: StaffMember, actor: Actor) -> ConsolePrincipal:
        region = find_region(member.region_code)
        return cls(
            actor=actor,
            username=member.username,
            display_name=member.display_name,
            role=member.role,
            role_label=ROLE_LABELS[Role(member.role)],
            region_code=member.region_code,
            region_name=full_name(member.region_code) if region else member.region_code,
            department=member.department,
        )


def optional_staff(request: Request, session: DbSession) -> Actor | None:
    """The staff actor behind the session cookie, or None."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        row, member = staff_service.resolve(session, token)
    except SessionExpired:
        return None
    actor = staff_service.actor_for(member, row, request_actor(request))
    request.state.principal = ConsolePrincipal.of(member, actor)
    return actor


def require_staff(actor: Annotated[Actor | None, Depends(optional_staff)]) -> Actor:
    if actor is None:
        raise AuthenticationRequired("Please log in to the staff console")
    return actor


StaffActor = Annotated[Actor, Depends(require_staff)]


PORTAL_COOKIE = "yk_portal"


@dataclass(frozen=True)
class PortalUser:
    """What portal pages know of the signed-in resident (the name masked by default)."""

    actor: Actor
    resident_id: int
    masked_name: str
    session_row_id: int


def optional_resident(request: Request, session: DbSession) -> Actor | None:
    """The resident behind the portal cookie, or None."""
    from yikatong.portal import service as portal_service

    token = request.cookies.get(PORTAL_COOKIE)
    if not token:
        return None
    try:
        row, resident = portal_service.resolve(session, token)
    except portal_service.PortalSessionExpired:
        return None
    actor = portal_service.actor_for(resident, row, request_actor(request))
    request.state.portal_user = PortalUser(actor, resident.id, actor.name, row.id)
    return actor


def require_resident(actor: Annotated[Actor | None, Depends(optional_resident)]) -> Actor:
    if actor is None:
        from yikatong.portal.service import PortalSessionExpired

        raise PortalSessionExpired("Please log in to the resident portal")
    return actor


ResidentActor = Annotated[Actor, Depends(require_resident)]


# --- CSRF: signed double submit. The browser holds a random nonce in an HttpOnly cookie; forms
# carry HMAC-SM3(secret, nonce). A foreign site can make the browser send the cookie but cannot
# read the page to learn the token.


def new_csrf_nonce() -> str:
    return secrets.token_urlsafe(24)


_secret: tuple[object, bytes] | None = None  # (the settings it came from, the secret key)


def csrf_token_for(nonce: str) -> str:
    global _secret  # noqa: PLW0603 - a cache of one, renewed when the settings change
    settings = get_settings()
    if _secret is None or _secret[0] is not settings:
        _secret = (settings, resolve_secret_key(settings))
    return _csrf_token(_secret[1], nonce)


@functools.lru_cache(maxsize=4096)
def _csrf_token(secret: bytes, nonce: str) -> str:
    # Each request needs its page token and an API client sends the same nonce every time.
    return hmac_sm3(secret, b"csrf:" + nonce.encode()).hex()


async def verify_csrf(request: Request) -> None:
    """Refuse unsafe requests without the page's CSRF token (header or form field)."""
    if request.method not in UNSAFE_METHODS:
        return
    nonce = request.cookies.get(CSRF_COOKIE)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not nonce or not sent or not hmac.compare_digest(sent, csrf_token_for(nonce)):
        raise CsrfFailed()


async def verify_csrf_if_cookie_session(request: Request) -> None:
    """API calls authenticated by the browser cookie need the CSRF header too."""
    if request.cookies.get(SESSION_COOKIE):
        await verify_csrf(request)


def region_label(code: str) -> str:
    return full_name(code) if find_region(code) else code


def counties_within(actor: Actor) -> list[tuple[str, str]]:
    """(code, name) of the counties an actor's region spans: a city's counties, else its own."""
    region = find_region(actor.region_code)
    if region is not None and region.level == "city":
        return [(c.code, c.name) for c in counties_of(region.code)]
    return [(actor.region_code, region_label(actor.region_code))]
