"""Staff accounts and two-factor login (等保三级: password + TOTP, lockout, idle timeout).

Login is two steps for people (password, then the six-digit code from the authenticator app)
and one step for API clients (both at once). A failed attempt is counted and audited even though
the request fails: :class:`LoginFailed` keeps the transaction's changes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import secrets
from dataclasses import dataclass
from typing import NoReturn

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from yikatong.audit import service as audit
from yikatong.crypto.sm3 import sm3
from yikatong.db import utcnow
from yikatong.errors import InvalidInput, NotFound
from yikatong.kit.actor import ROLE_PERMISSIONS, Actor, ActorKind, Permission, Role
from yikatong.kit.pagination import Page, clamp
from yikatong.reference.regions import find_region
from yikatong.settings import get_settings
from yikatong.staff.errors import AccountLocked, LoginFailed, SessionExpired, UsernameTaken
from yikatong.staff.models import StaffMember, StaffSession

STAGE_PASSWORD_OK = "password_ok"  # noqa: S105 - a session stage, not a password
STAGE_ACTIVE = "active"
SECOND_FACTOR_WINDOW = dt.timedelta(minutes=5)
IDLE_TIMEOUT = dt.timedelta(minutes=30)
LAST_SEEN_RESOLUTION = dt.timedelta(seconds=60)
USERNAME_RE = re.compile(r"^[a-z][a-z0-9_.-]{2,63}$")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
ISSUER = "yikatong"

_hasher = PasswordHasher()
# Verified against when the user name is unknown, so timing does not reveal which names exist.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def check_password_policy(password: str) -> None:
    """At least 10 characters mixing letters and digits (等保 password complexity)."""
    if len(password) < 10:
        raise InvalidInput("Password must have at least 10 characters", field="password")
    if not (re.search(r"[A-Za-z]", password) and re.search(r"\d", password)):
        raise InvalidInput("Password must mix letters and digits", field="password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _token_hash(token: str) -> bytes:
    return sm3(token.encode())


def totp_uri(member: StaffMember) -> str:
    """The otpauth:// URI an authenticator app scans to enrol."""
    return pyotp.TOTP(member.totp_secret).provisioning_uri(name=member.username, issuer_name=ISSUER)


def current_totp(member: StaffMember) -> str:
    """The code valid now (operators' CLI, demo logins and tests)."""
    return pyotp.TOTP(member.totp_secret).now()


@dataclass(frozen=True)
class NewStaff:
    member: StaffMember
    totp_secret: str


def create_staff(
    session: Session,
    actor: Actor,
    *,
    username: str,
    display_name: str,
    role: Role,
    region_code: str,
    password: str,
    department: str | None = None,
) -> NewStaff:
    """Create an account inside the actor's region; returns the TOTP secret to show once."""
    audit.require(session, actor, Permission.STAFF_MANAGE, "staff.create")
    username = username.strip().lower()
    if not USERNAME_RE.match(username):
        raise InvalidInput(
            "User name: 3-64 lower-case letters, digits, '.', '_' or '-', starting with a letter",
            field="username",
        )
    if not display_name.strip():
        raise InvalidInput("Display name is required", field="display_name")
    if CONTROL_CHARACTERS.search(display_name + (department or "")):
        raise InvalidInput("Names cannot contain control characters", field="display_name")
    if find_region(region_code) is None:
        raise InvalidInput(f"Unknown region code {region_code}", field="region_code")
    if not actor.covers(region_code):
        raise audit.deny(
            session,
            actor,
            "staff.create",
            reason="region outside the actor's scope",
            region_code=region_code,
        )
    check_password_policy(password)
    if session.scalar(select(StaffMember.id).where(StaffMember.username == username)):
        raise UsernameTaken(f"User name {username} is already taken")
    secret = pyotp.random_base32()
    member = StaffMember(
        username=username,
        display_name=display_name.strip(),
        role=Role(role).value,
        region_code=region_code,
        department=department,
        password_hash=hash_password(password),
        totp_secret=secret,
        failed_logins=0,
        is_active=True,
    )
    session.add(member)
    session.flush()
    audit.record(
        session,
        actor,
        "staff.create",
        object_type="staff",
        object_id=member.id,
        region_code=region_code,
        detail={"username": username, "role": member.role},
    )
    return NewStaff(member, secret)


def _locked(member: StaffMember, now: dt.datetime) -> bool:
    return member.locked_until is not None and member.locked_until > now


def _count_failure(session: Session, member: StaffMember, actor: Actor, step: str) -> NoReturn:
    settings = get_settings()
    now = utcnow()
    member.failed_logins += 1
    locked = member.failed_logins >= settings.login_max_failures
    if locked:
        member.locked_until = now + dt.timedelta(minutes=settings.login_lockout_minutes)
        member.failed_logins = 0
    audit.record(
        session,
        actor,
        "staff.login",
        object_type="staff",
        object_id=member.id,
        region_code=member.region_code,
        outcome=audit.Outcome.FAILED,
        detail={"step": step, "locked": locked},
    )
    session.flush()
    if locked:
        raise AccountLocked(
            f"Too many failed attempts; the account is locked for "
            f"{settings.login_lockout_minutes} minutes"
        )
    raise LoginFailed()


def _check_password(session: Session, username: str, password: str, actor: Actor) -> StaffMember:
    member = session.scalar(
        select(StaffMember).where(StaffMember.username == username.strip().lower())
    )
    if member is None or not member.is_active:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password)
        # Filed under the deployment's city so its auditors see attempts on unknown names.
        audit.record(
            session,
            actor,
            "staff.login",
            region_code=get_settings().region_code,
            outcome=audit.Outcome.FAILED,
            detail={"step": "password", "username": username[:64]},
        )
        raise LoginFailed()
    if _locked(member, utcnow()):
        audit.record(
            session,
            actor,
            "staff.login",
            object_type="staff",
            object_id=member.id,
            region_code=member.region_code,
            outcome=audit.Outcome.DENIED,
            detail={"step": "password", "reason": "locked"},
        )
        raise AccountLocked("The account is locked after repeated failed logins; try later")
    try:
        _hasher.verify(member.password_hash, password)
    except (VerificationError, InvalidHashError):
        _count_failure(session, member, actor, "password")
    if _hasher.check_needs_rehash(member.password_hash):
        member.password_hash = hash_password(password)
    return member


def _check_code(session: Session, member: StaffMember, code: str, actor: Actor) -> None:
    code = code.strip().replace(" ", "")
    totp = pyotp.TOTP(member.totp_secret)
    now = utcnow()
    accepted_step = None
    if re.fullmatch(r"\d{6}", code):
        # One step of clock drift either way, and never a step already used.
        current = totp.timecode(now)
        for step in (current - 1, current, current + 1):
            if secrets.compare_digest(totp.generate_otp(step), code) and (
                member.totp_last_step is None or step > member.totp_last_step
            ):
                accepted_step = step
                break
    if accepted_step is None:
        _count_failure(session, member, actor, "totp")
    member.totp_last_step = accepted_step


def _new_session(
    session: Session, member: StaffMember, stage: str, lifetime: dt.timedelta, actor: Actor
) -> tuple[StaffSession, str]:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = StaffSession(
        token_hash=_token_hash(token),
        staff_id=member.id,
        stage=stage,
        created_at=now,
        expires_at=now + lifetime,
        last_seen_at=now,
        ip=actor.ip,
        user_agent=(actor.user_agent or "")[:200] or None,
    )
    session.add(row)
    session.flush()
    return row, token


def _complete_login(
    session: Session, member: StaffMember, actor: Actor
) -> tuple[StaffSession, str]:
    member.failed_logins = 0
    member.locked_until = None
    member.last_login_at = utcnow()
    row, token = _new_session(
        session, member, STAGE_ACTIVE, dt.timedelta(hours=get_settings().session_hours), actor
    )
    audit.record(
        session,
        actor_for(member, row, actor),
        "staff.login",
        object_type="staff",
        object_id=member.id,
        region_code=member.region_code,
    )
    return row, token


def start_login(
    session: Session, *, username: str, password: str, actor: Actor
) -> tuple[StaffSession, str]:
    """First factor: a correct password opens a five-minute window for the code."""
    member = _check_password(session, username, password, actor)
    return _new_session(session, member, STAGE_PASSWORD_OK, SECOND_FACTOR_WINDOW, actor)


def finish_login(
    session: Session, *, pending_token: str, code: str, actor: Actor
) -> tuple[StaffSession, str]:
    """Second factor: the TOTP code turns the pending session into a fresh, active one."""
    pending = _find_session(session, pending_token, STAGE_PASSWORD_OK)
    member = session.get(StaffMember, pending.staff_id)
    if member is None or not member.is_active:
        raise SessionExpired()
    if _locked(member, utcnow()):
        raise AccountLocked("The account is locked after repeated failed logins; try later")
    _check_code(session, member, code, actor)
    # A new token after the second factor: the half-authenticated one is never promoted.
    pending.revoked_at = utcnow()
    return _complete_login(session, member, actor)


def login(
    session: Session, *, username: str, password: str, code: str, actor: Actor
) -> tuple[StaffSession, str]:
    """Both factors at once (API clients)."""
    member = _check_password(session, username, password, actor)
    _check_code(session, member, code, actor)
    return _complete_login(session, member, actor)


def _usable(
    row_stage: str,
    revoked_at: dt.datetime | None,
    expires_at: dt.datetime,
    last_seen_at: dt.datetime,
    stage: str,
    now: dt.datetime,
) -> bool:
    """Whether a session row of ``row_stage`` still serves as a ``stage`` session at ``now``."""
    return (
        row_stage == stage
        and revoked_at is None
        and expires_at > now
        and not (stage == STAGE_ACTIVE and last_seen_at + IDLE_TIMEOUT <= now)
    )


def _find_session(session: Session, token: str, stage: str) -> StaffSession:
    row = session.scalar(select(StaffSession).where(StaffSession.token_hash == _token_hash(token)))
    if row is None or not _usable(
        row.stage, row.revoked_at, row.expires_at, row.last_seen_at, stage, utcnow()
    ):
        raise SessionExpired()
    return row


def resolve(session: Session, token: str) -> tuple[StaffSession, StaffMember]:
    """The active session and member behind a cookie token, or :class:`SessionExpired`."""
    row = _find_session(session, token, STAGE_ACTIVE)
    member = session.get(StaffMember, row.staff_id)
    if member is None or not member.is_active:
        raise SessionExpired()
    now = utcnow()
    if now - row.last_seen_at >= LAST_SEEN_RESOLUTION:
        row.last_seen_at = now
    return row, member


# Built once, read as plain columns: terminals resolve their session with every batch.
_ACTIVE_SESSION = (
    select(
        StaffSession.id,
        StaffSession.stage,
        StaffSession.revoked_at,
        StaffSession.expires_at,
        StaffSession.last_seen_at,
        StaffMember.id,
        StaffMember.username,
        StaffMember.role,
        StaffMember.region_code,
        StaffMember.is_active,
    )
    .join(StaffMember, StaffMember.id == StaffSession.staff_id)
    .where(StaffSession.token_hash == bindparam("token_hash"))
)
_TOUCH_SESSION = (
    update(StaffSession)
    .where(StaffSession.id == bindparam("session_id"))
    .values(last_seen_at=bindparam("now"))
)


def resolve_actor(session: Session, token: str, request_actor: Actor) -> Actor:
    """The actor behind an active session token, with the request's facts, in one query.

    The same rules as :func:`resolve` (stage, revocation, expiry, idle timeout, active
    member; ``last_seen_at`` kept to the minute) without loading ORM objects: the
    verification gateway calls it for every batch. Raises :class:`SessionExpired`.
    """
    found = (
        session.connection().execute(_ACTIVE_SESSION, {"token_hash": _token_hash(token)}).first()
    )
    now = utcnow()
    if found is None:
        raise SessionExpired()
    (
        session_id,
        stage,
        revoked_at,
        expires_at,
        last_seen_at,
        staff_id,
        username,
        role,
        region,
        active,
    ) = found
    if not active or not _usable(stage, revoked_at, expires_at, last_seen_at, STAGE_ACTIVE, now):
        raise SessionExpired()
    if now - last_seen_at >= LAST_SEEN_RESOLUTION:
        session.connection().execute(_TOUCH_SESSION, {"session_id": session_id, "now": now})
    return Actor(
        kind=ActorKind.STAFF,
        id=str(staff_id),
        name=username,
        role=role,
        region_code=region,
        permissions=ROLE_PERMISSIONS[Role(role)],
        ip=request_actor.ip,
        user_agent=request_actor.user_agent,
        request_id=request_actor.request_id,
        session_id=session_id,
    )


def logout(session: Session, token: str, actor: Actor) -> None:
    row = session.scalar(select(StaffSession).where(StaffSession.token_hash == _token_hash(token)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(session, actor, "staff.logout", object_type="staff", object_id=row.staff_id)


def actor_for(member: StaffMember, row: StaffSession | None, request_actor: Actor) -> Actor:
    """The actor a staff member acts as, carrying the request's facts (ip, request id)."""
    return Actor(
        kind=ActorKind.STAFF,
        id=str(member.id),
        name=member.username,
        role=member.role,
        region_code=member.region_code,
        permissions=ROLE_PERMISSIONS[Role(member.role)],
        ip=request_actor.ip,
        user_agent=request_actor.user_agent,
        request_id=request_actor.request_id,
        session_id=row.id if row else None,
    )


def list_staff(
    session: Session, actor: Actor, *, page: int = 1, per_page: int = 50
) -> Page[StaffMember]:
    """Staff accounts inside the actor's region."""
    audit.require(session, actor, Permission.STAFF_READ, "staff.list")
    page, per_page = clamp(page, per_page)
    cond = StaffMember.region_code.startswith(actor.scope)
    total = session.scalar(select(func.count()).select_from(StaffMember).where(cond)) or 0
    items = session.scalars(
        select(StaffMember)
        .where(cond)
        .order_by(StaffMember.username)
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return Page(items=items, total=total, page=page, per_page=per_page)


def find_by_username(session: Session, username: str) -> StaffMember | None:
    return session.scalar(select(StaffMember).where(StaffMember.username == username))


def get_by_username(session: Session, actor: Actor, username: str) -> StaffMember:
    member = find_by_username(session, username)
    if member is None or not actor.covers(member.region_code):
        raise NotFound(f"No staff account {username}")
    return member


def unlock(session: Session, actor: Actor, username: str) -> StaffMember:
    """Lift a lockout (解锁) before it expires."""
    audit.require(session, actor, Permission.STAFF_MANAGE, "staff.unlock")
    member = get_by_username(session, actor, username)
    member.locked_until = None
    member.failed_logins = 0
    audit.record(
        session,
        actor,
        "staff.unlock",
        object_type="staff",
        object_id=member.id,
        region_code=member.region_code,
    )
    return member


def set_active(session: Session, actor: Actor, username: str, *, active: bool) -> StaffMember:
    """Disable or re-enable an account; disabling ends its sessions at once."""
    audit.require(session, actor, Permission.STAFF_MANAGE, "staff.set_active")
    member = get_by_username(session, actor, username)
    member.is_active = active
    if not active:
        now = utcnow()
        for row in session.scalars(
            select(StaffSession).where(
                StaffSession.staff_id == member.id, StaffSession.revoked_at.is_(None)
            )
        ):
            row.revoked_at = now
    audit.record(
        session,
        actor,
        "staff.set_active",
        object_type="staff",
        object_id=member.id,
        region_code=member.region_code,
        detail={"active": active},
    )
    return member
