"""Staff login and account API (/api/v1/auth, /api/v1/staff)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from yikatong.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    DbSession,
    StaffActor,
    csrf_token_for,
    new_csrf_nonce,
    request_actor,
    verify_csrf_if_cookie_session,
)
from yikatong.kit.params import PageNumber, PerPage
from yikatong.settings import get_settings
from yikatong.staff import service
from yikatong.staff.errors import SessionExpired
from yikatong.staff.schemas import LoginRequest, Me, StaffCreate, StaffCreated, StaffOut, StaffPage

router = APIRouter(tags=["staff"])


def set_session_cookies(response: Response, token: str) -> str:
    """Set the session cookie and a fresh CSRF nonce; returns the CSRF token for that nonce."""
    settings = get_settings()
    secure = settings.secure_cookies
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        secure=secure,
        samesite="lax",
        max_age=settings.session_hours * 3600,
        path="/",
    )
    nonce = new_csrf_nonce()
    response.set_cookie(CSRF_COOKIE, nonce, httponly=True, secure=secure, samesite="lax", path="/")
    return csrf_token_for(nonce)


def _me(request: Request, token: str) -> Me:
    principal = request.state.principal
    return Me(
        username=principal.username,
        display_name=principal.display_name,
        role=principal.role,
        region_code=principal.region_code,
        region_name=principal.region_name,
        department=principal.department,
        permissions=sorted(p.value for p in principal.actor.permissions),
        csrf_token=token,
    )


@router.post("/auth/login", response_model=Me)
def login(body: LoginRequest, request: Request, response: Response, session: DbSession) -> Me:
    """Log in with user name, password and TOTP code; sets the session cookie."""
    from yikatong.deps import ConsolePrincipal
    from yikatong.staff.models import StaffMember

    row, token = service.login(
        session,
        username=body.username,
        password=body.password,
        code=body.code,
        actor=request_actor(request),
    )
    member = session.get(StaffMember, row.staff_id)
    if member is None:  # pragma: no cover - the row was created in this transaction
        raise SessionExpired()
    request.state.principal = ConsolePrincipal.of(
        member, service.actor_for(member, row, request_actor(request))
    )
    csrf = set_session_cookies(response, token)
    return _me(request, csrf)


@router.post("/auth/logout", status_code=204, dependencies=[Depends(verify_csrf_if_cookie_session)])
def logout(request: Request, response: Response, session: DbSession, actor: StaffActor) -> None:
    """End the current session."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        service.logout(session, token, actor)
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.get("/auth/me", response_model=Me)
def me(request: Request, actor: StaffActor) -> Me:
    """The logged-in staff member, with the CSRF token for unsafe requests."""
    nonce = request.cookies.get(CSRF_COOKIE) or ""
    return _me(request, csrf_token_for(nonce))


@router.get("/staff", response_model=StaffPage)
def list_staff(
    session: DbSession, actor: StaffActor, page: PageNumber = 1, per_page: PerPage = 50
) -> StaffPage:
    """Staff accounts in the caller's region."""
    result = service.list_staff(session, actor, page=page, per_page=per_page)
    return StaffPage(
        items=[StaffOut.model_validate(m) for m in result.items],
        total=result.total,
        page=result.page,
        per_page=result.per_page,
    )


@router.post(
    "/staff",
    response_model=StaffCreated,
    status_code=201,
    dependencies=[Depends(verify_csrf_if_cookie_session)],
)
def create_staff(body: StaffCreate, session: DbSession, actor: StaffActor) -> StaffCreated:
    """Create a staff account; the TOTP secret is returned once."""
    created = service.create_staff(
        session,
        actor,
        username=body.username,
        display_name=body.display_name,
        role=body.role,
        region_code=body.region_code,
        password=body.password,
        department=body.department,
    )
    return StaffCreated(
        staff=StaffOut.model_validate(created.member),
        totp_secret=created.totp_secret,
        totp_uri=service.totp_uri(created.member),
    )


@router.post(
    "/staff/{username}/unlock",
    response_model=StaffOut,
    dependencies=[Depends(verify_csrf_if_cookie_session)],
)
def unlock(username: str, session: DbSession, actor: StaffActor) -> StaffOut:
    """Lift a login lockout."""
    return StaffOut.model_validate(service.unlock(session, actor, username))
