"""Staff login: two factors, lockout, replay refusal, sessions."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from tests.factories import PASSWORD, make_staff
from yikatong.audit.models import AuditEntry
from yikatong.errors import InvalidInput, PermissionDenied
from yikatong.kit.actor import Actor, Role
from yikatong.settings import get_settings
from yikatong.staff import service
from yikatong.staff.errors import AccountLocked, LoginFailed, SessionExpired, UsernameTaken

WHO = Actor.anonymous(ip="10.1.2.3", user_agent="pytest")


def test_two_step_login_gives_a_fresh_active_session(session: Session) -> None:
    clerk = make_staff(session)
    pending, pending_token = service.start_login(
        session, username=clerk.username, password=PASSWORD, actor=WHO
    )
    assert pending.stage == service.STAGE_PASSWORD_OK
    with pytest.raises(SessionExpired):
        service.resolve(session, pending_token)  # half a login is no login
    row, token = service.finish_login(
        session, pending_token=pending_token, code=clerk.code(), actor=WHO
    )
    assert token != pending_token
    assert row.stage == service.STAGE_ACTIVE
    resolved_row, member = service.resolve(session, token)
    assert (resolved_row.id, member.id) == (row.id, clerk.member.id)
    with pytest.raises(SessionExpired):
        service.finish_login(session, pending_token=pending_token, code=clerk.code(), actor=WHO)


def test_wrong_password_is_counted_and_audited(session: Session) -> None:
    clerk = make_staff(session)
    with pytest.raises(LoginFailed) as caught:
        service.login(
            session, username=clerk.username, password="wrong-pass-1", code=clerk.code(), actor=WHO
        )
    assert caught.value.keep_changes
    assert clerk.member.failed_logins == 1
    entry = session.query(AuditEntry).order_by(AuditEntry.id.desc()).first()
    assert entry is not None
    assert (entry.action, entry.outcome, entry.ip) == ("staff.login", "failed", "10.1.2.3")


def test_unknown_user_fails_like_a_wrong_password(session: Session) -> None:
    with pytest.raises(LoginFailed):
        service.login(session, username="nobody", password=PASSWORD, code="123456", actor=WHO)


def test_lockout_after_repeated_failures(session: Session) -> None:
    clerk = make_staff(session)
    limit = get_settings().login_max_failures
    for _ in range(limit - 1):
        with pytest.raises(LoginFailed):
            service.login(
                session,
                username=clerk.username,
                password="bad-password-9",
                code=clerk.code(),
                actor=WHO,
            )
    with pytest.raises(AccountLocked):
        service.login(
            session,
            username=clerk.username,
            password="bad-password-9",
            code=clerk.code(),
            actor=WHO,
        )
    # Even the right password and code are refused while locked.
    with pytest.raises(AccountLocked):
        service.login(
            session, username=clerk.username, password=PASSWORD, code=clerk.code(), actor=WHO
        )
    service.unlock(session, Actor.system("tests"), clerk.username)
    service.login(session, username=clerk.username, password=PASSWORD, code=clerk.code(), actor=WHO)


def test_wrong_code_counts_towards_lockout(session: Session) -> None:
    clerk = make_staff(session)
    with pytest.raises(LoginFailed):
        service.login(session, username=clerk.username, password=PASSWORD, code="000000", actor=WHO)
    assert clerk.member.failed_logins == 1


def test_a_code_is_accepted_once(session: Session) -> None:
    clerk = make_staff(session)
    code = clerk.code()
    service.login(session, username=clerk.username, password=PASSWORD, code=code, actor=WHO)
    with pytest.raises(LoginFailed):
        service.login(session, username=clerk.username, password=PASSWORD, code=code, actor=WHO)


def test_code_from_the_previous_step_is_accepted(session: Session) -> None:
    clerk = make_staff(session)
    service.login(
        session,
        username=clerk.username,
        password=PASSWORD,
        code=clerk.code(step_offset=-1),
        actor=WHO,
    )


def test_idle_and_expired_sessions_end(session: Session) -> None:
    clerk = make_staff(session)
    row, token = service.login(
        session, username=clerk.username, password=PASSWORD, code=clerk.code(), actor=WHO
    )
    row.last_seen_at -= service.IDLE_TIMEOUT + dt.timedelta(seconds=1)
    with pytest.raises(SessionExpired):
        service.resolve(session, token)
    row.last_seen_at = dt.datetime.now(dt.UTC)
    service.resolve(session, token)
    row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with pytest.raises(SessionExpired):
        service.resolve(session, token)


def test_logout_and_disable_end_sessions(session: Session) -> None:
    clerk = make_staff(session)
    _, token = service.login(
        session, username=clerk.username, password=PASSWORD, code=clerk.code(), actor=WHO
    )
    service.logout(session, token, clerk.actor())
    with pytest.raises(SessionExpired):
        service.resolve(session, token)
    _, token = service.login(
        session,
        username=clerk.username,
        password=PASSWORD,
        code=clerk.code(step_offset=1),
        actor=WHO,
    )
    service.set_active(session, Actor.system("tests"), clerk.username, active=False)
    with pytest.raises(SessionExpired):
        service.resolve(session, token)


def test_create_staff_rules(session: Session) -> None:
    admin = make_staff(session, Role.PLATFORM_ADMIN, region_code="441625")
    with pytest.raises(InvalidInput) as weak:
        service.create_staff(
            session,
            admin.actor(),
            username="new.clerk",
            display_name="新",
            role=Role.COUNTER_CLERK,
            region_code="441625",
            password="short",
        )
    assert weak.value.extra["errors"][0]["field"] == "password"
    with pytest.raises(InvalidInput):
        service.create_staff(
            session,
            admin.actor(),
            username="Bad Name",
            display_name="新",
            role=Role.COUNTER_CLERK,
            region_code="441625",
            password=PASSWORD,
        )
    # A county admin cannot create accounts for another county.
    with pytest.raises(PermissionDenied):
        service.create_staff(
            session,
            admin.actor(),
            username="other.clerk",
            display_name="新",
            role=Role.COUNTER_CLERK,
            region_code="441602",
            password=PASSWORD,
        )
    service.create_staff(
        session,
        admin.actor(),
        username="new.clerk",
        display_name="新",
        role=Role.COUNTER_CLERK,
        region_code="441625",
        password=PASSWORD,
    )
    with pytest.raises(UsernameTaken):
        service.create_staff(
            session,
            admin.actor(),
            username="new.clerk",
            display_name="新",
            role=Role.COUNTER_CLERK,
            region_code="441625",
            password=PASSWORD,
        )


def test_clerk_cannot_manage_staff(session: Session) -> None:
    clerk = make_staff(session)
    with pytest.raises(PermissionDenied):
        service.create_staff(
            session,
            clerk.actor(),
            username="x.y",
            display_name="x",
            role=Role.AUDITOR,
            region_code="441600",
            password=PASSWORD,
        )


def test_totp_secret_is_encrypted_at_rest(session: Session) -> None:
    from sqlalchemy import text

    clerk = make_staff(session)
    raw = session.execute(
        text("SELECT totp_secret FROM staff WHERE id = :i"), {"i": clerk.member.id}
    ).scalar_one()
    assert clerk.totp_secret.encode() not in bytes(raw)


def test_names_cannot_hold_control_characters(session: Session) -> None:
    with pytest.raises(InvalidInput):
        service.create_staff(
            session,
            Actor.system("tests"),
            username="ctl.user",
            display_name="a\x00b",
            role=Role.AUDITOR,
            region_code="441600",
            password=PASSWORD,
        )


def test_attempts_on_unknown_names_are_visible_to_the_city_auditor(session: Session) -> None:
    from yikatong.audit import service as audit
    from yikatong.audit.repository import AuditFilters

    with pytest.raises(LoginFailed):
        service.login(session, username="ghost", password="x", code="123456", actor=WHO)
    auditor = make_staff(session, Role.AUDITOR, region_code="441600")
    page = audit.browse(
        session, auditor.actor(), AuditFilters(action="staff.login", outcome="failed")
    )
    assert any(e.detail.get("username") == "ghost" for e in page.items)
