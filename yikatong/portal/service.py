"""The resident portal: real-name registration, login, sessions (居民服务门户).

Registration proves three things the resident holds: the ID number, the number printed on
their live card and the mobile number on record. Login is ID number + password; payment-level
actions additionally need the e-card password (:func:`unlock_payment`). Failed attempts are
counted and audited even though the request fails (``keep_changes``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import secrets
from typing import NoReturn

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yikatong.audit import service as audit
from yikatong.audit.models import AuditEntry
from yikatong.cards import repository as cards_repository
from yikatong.crypto.masking import mask_name
from yikatong.crypto.sm3 import sm3
from yikatong.db import utcnow
from yikatong.errors import N_, AuthenticationRequired, InvalidInput, RateLimited
from yikatong.kit.actor import Actor
from yikatong.portal.models import ResidentAccount, ResidentSession
from yikatong.reference.idnumber import normalize as normalize_id_number
from yikatong.residents.models import Resident, ResidentStatus
from yikatong.residents.repository import find_by_id_number
from yikatong.settings import get_settings

SESSION_LIFETIME = dt.timedelta(hours=2)
IDLE_TIMEOUT = dt.timedelta(minutes=20)
PAYMENT_WINDOW = dt.timedelta(minutes=5)
LAST_SEEN_RESOLUTION = dt.timedelta(seconds=60)
MAX_REGISTRATION_FAILURES = 5

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class PortalLoginFailed(AuthenticationRequired):
    """Wrong ID number or password; the attempt was counted."""

    code = "portal_login_failed"
    title = N_("Wrong ID number or password")
    keep_changes = True


class PortalLocked(RateLimited):
    """Too many failed attempts for this resident."""

    code = "portal_locked"
    title = N_("Too many failed attempts; try again later")
    keep_changes = True


class RegistrationFailed(AuthenticationRequired):
    """The ID number, card number and mobile number do not belong together."""

    code = "portal_registration_failed"
    title = N_("These details do not match our records")
    keep_changes = True


class PortalSessionExpired(AuthenticationRequired):
    """The portal session is missing, expired or ended."""

    code = "portal_session_expired"
    title = N_("Please log in")


def check_password_policy(password: str) -> None:
    if len(password) < 8 or not re.search(r"[A-Za-z]", password) or not re.search(r"\d", password):
        raise InvalidInput("At least 8 characters mixing letters and digits", field="password")


def _token_hash(token: str) -> bytes:
    return sm3(token.encode())


def _recent_registration_failures(session: Session, resident_id: int) -> int:
    since = utcnow() - dt.timedelta(minutes=get_settings().login_lockout_minutes)
    return (
        session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(
                AuditEntry.action == "portal.register",
                AuditEntry.outcome == audit.Outcome.FAILED,
                AuditEntry.object_id == str(resident_id),
                AuditEntry.occurred_at >= since,
            )
        )
        or 0
    )


def _registration_failed(session: Session, actor: Actor, resident: Resident | None) -> NoReturn:
    audit.record(
        session,
        actor,
        "portal.register",
        object_type="resident",
        object_id=resident.id if resident else None,
        region_code=resident.region_code if resident else get_settings().region_code,
        outcome=audit.Outcome.FAILED,
    )
    raise RegistrationFailed()


def register(
    session: Session,
    actor: Actor,
    *,
    id_number: str,
    card_number: str,
    phone: str,
    password: str,
) -> ResidentAccount:
    """Open a portal account for the resident who holds these three facts."""
    check_password_policy(password)
    resident = find_by_id_number(session, normalize_id_number(id_number))
    if resident is None or resident.status != ResidentStatus.ACTIVE:
        _registration_failed(session, actor, None)
    if _recent_registration_failures(session, resident.id) >= MAX_REGISTRATION_FAILURES:
        raise PortalLocked()
    card = cards_repository.live_card_of(session, resident.id)
    phone_ok = resident.phone is not None and secrets.compare_digest(
        resident.phone, re.sub(r"\D", "", phone)
    )
    card_ok = (
        card is not None
        and card.issue_date is not None
        and secrets.compare_digest(card.card_number, card_number.strip().upper())
    )
    if not (phone_ok and card_ok):
        _registration_failed(session, actor, resident)
    account = session.get(ResidentAccount, resident.id)
    if account is None:
        account = ResidentAccount(resident_id=resident.id, password_hash="", failed_logins=0)
        session.add(account)
    # Registering again with the same three facts resets a forgotten password.
    account.password_hash = _hasher.hash(password)
    account.failed_logins = 0
    account.locked_until = None
    session.flush()
    audit.record(
        session,
        actor,
        "portal.register",
        object_type="resident",
        object_id=resident.id,
        region_code=resident.region_code,
    )
    return account


def login(
    session: Session, actor: Actor, *, id_number: str, password: str
) -> tuple[ResidentSession, str]:
    """ID number + password; five failures lock the account for a while."""
    settings = get_settings()
    resident = find_by_id_number(session, normalize_id_number(id_number))
    account = session.get(ResidentAccount, resident.id) if resident is not None else None
    now = utcnow()
    if resident is None or account is None or resident.status != ResidentStatus.ACTIVE:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password)
        audit.record(
            session,
            actor,
            "portal.login",
            outcome=audit.Outcome.FAILED,
            region_code=settings.region_code,
        )
        raise PortalLoginFailed()
    if account.locked_until is not None and account.locked_until > now:
        raise PortalLocked()
    try:
        _hasher.verify(account.password_hash, password)
    except (VerificationError, InvalidHashError):
        account.failed_logins += 1
        if account.failed_logins >= settings.login_max_failures:
            account.locked_until = now + dt.timedelta(minutes=settings.login_lockout_minutes)
            account.failed_logins = 0
        audit.record(
            session,
            actor,
            "portal.login",
            object_type="resident",
            object_id=resident.id,
            region_code=resident.region_code,
            outcome=audit.Outcome.FAILED,
        )
        session.flush()
        if account.locked_until is not None and account.locked_until > now:
            raise PortalLocked() from None
        raise PortalLoginFailed() from None
    account.failed_logins = 0
    account.last_login_at = now
    token = secrets.token_urlsafe(32)
    row = ResidentSession(
        token_hash=_token_hash(token),
        resident_id=resident.id,
        created_at=now,
        expires_at=now + SESSION_LIFETIME,
        last_seen_at=now,
        ip=actor.ip,
        user_agent=(actor.user_agent or "")[:200] or None,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor_for(resident, row, actor),
        "portal.login",
        object_type="resident",
        object_id=resident.id,
        region_code=resident.region_code,
    )
    return row, token


def resolve(session: Session, token: str) -> tuple[ResidentSession, Resident]:
    row = session.scalar(
        select(ResidentSession).where(ResidentSession.token_hash == _token_hash(token))
    )
    now = utcnow()
    if (
        row is None
        or row.revoked_at is not None
        or row.expires_at <= now
        or row.last_seen_at + IDLE_TIMEOUT <= now
    ):
        raise PortalSessionExpired()
    resident = session.get(Resident, row.resident_id)
    if resident is None or resident.status != ResidentStatus.ACTIVE:
        raise PortalSessionExpired()
    if now - row.last_seen_at >= LAST_SEEN_RESOLUTION:
        row.last_seen_at = now
    return row, resident


def logout(session: Session, token: str, actor: Actor) -> None:
    row = session.scalar(
        select(ResidentSession).where(ResidentSession.token_hash == _token_hash(token))
    )
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(
            session, actor, "portal.logout", object_type="resident", object_id=row.resident_id
        )


def actor_for(resident: Resident, row: ResidentSession | None, request_actor: Actor) -> Actor:
    return Actor.resident(
        resident.id,
        mask_name(resident.name),
        resident.region_code,
        ip=request_actor.ip,
        user_agent=request_actor.user_agent,
        request_id=request_actor.request_id,
        session_id=row.id if row else None,
    )


def unlock_payment(session: Session, row: ResidentSession) -> None:
    """Remember, for a few minutes, that the e-card password was just given."""
    row.payment_verified_until = utcnow() + PAYMENT_WINDOW


def payment_unlocked(row: ResidentSession) -> bool:
    return row.payment_verified_until is not None and row.payment_verified_until > utcnow()
