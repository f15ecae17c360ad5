"""The audit trail: appends chain by SM3, and verification names each kind of tampering."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from tests.factories import make_staff
from yikatong.audit import service as audit
from yikatong.audit.models import AuditEntry, AuditHead
from yikatong.audit.repository import AuditFilters
from yikatong.crypto.sm3 import sm3_hex
from yikatong.errors import PermissionDenied
from yikatong.kit.actor import Actor, Role

SYSTEM = Actor.system("tests")


def _write(session: Session, n: int) -> list[AuditEntry]:
    return [
        audit.record(
            session,
            SYSTEM,
            "test.event",
            object_type="thing",
            object_id=i,
            detail={"n": i, "说明": "中文"},
        )
        for i in range(n)
    ]


def _drop_guards(session: Session) -> None:
    """Play a DBA with full rights: remove the append-only triggers (rolled back after)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("DROP TRIGGER audit_log_append_only ON audit_log"))
    else:
        session.execute(text("DROP TRIGGER audit_log_no_update"))
        session.execute(text("DROP TRIGGER audit_log_no_delete"))


def test_entries_chain_from_the_previous_hash(session: Session) -> None:
    first, second = _write(session, 2)
    assert second.id == first.id + 1
    assert second.prev_hash == first.hash
    assert first.hash == audit.entry_hash(first.prev_hash, first)
    assert len(first.hash) == 64
    head = session.get(AuditHead, audit.HEAD_ID)
    assert head is not None
    assert (head.last_id, head.last_hash) == (second.id, second.hash)


def test_hash_is_sm3_of_previous_and_payload(session: Session) -> None:
    (entry,) = _write(session, 1)
    assert entry.hash == sm3_hex(entry.prev_hash.encode() + b"\n" + audit._payload(entry))


def test_intact_chain_verifies(session: Session) -> None:
    _write(session, 5)
    report = audit.verify_chain(session)
    assert report.ok, report.problems
    assert report.checked >= 5


def test_database_refuses_update_and_delete(session: Session) -> None:
    (entry,) = _write(session, 1)
    session.commit()
    with pytest.raises(DBAPIError), session.begin_nested():
        session.execute(text("UPDATE audit_log SET action = 'x' WHERE id = :i"), {"i": entry.id})
    with pytest.raises(DBAPIError), session.begin_nested():
        session.execute(text("DELETE FROM audit_log WHERE id = :i"), {"i": entry.id})


def test_edited_entry_is_named(session: Session) -> None:
    entries = _write(session, 5)
    session.flush()
    _drop_guards(session)
    target = entries[2].id
    session.execute(text("UPDATE audit_log SET object_id = '999' WHERE id = :i"), {"i": target})
    session.expire_all()
    report = audit.verify_chain(session)
    assert [(p.entry_id, p.kind) for p in report.problems] == [(target, "modified")]


def test_deleted_entries_are_named(session: Session) -> None:
    entries = _write(session, 6)
    session.flush()
    _drop_guards(session)
    gone = [entries[2].id, entries[3].id]
    session.execute(
        text("DELETE FROM audit_log WHERE id IN (:a, :b)"), {"a": gone[0], "b": gone[1]}
    )
    session.expire_all()
    report = audit.verify_chain(session)
    assert [(p.entry_id, p.kind) for p in report.problems] == [(entries[4].id, "deleted")]
    assert f"#{gone[0]}–#{gone[1]}" in report.problems[0].message


def test_reordered_entries_are_named(session: Session) -> None:
    entries = _write(session, 5)
    session.flush()
    _drop_guards(session)
    a, b = entries[1].id, entries[2].id
    # Swap the positions of two entries: every column but the id moves.
    session.execute(text("UPDATE audit_log SET id = -1 WHERE id = :a"), {"a": a})
    session.execute(text("UPDATE audit_log SET id = :a WHERE id = :b"), {"a": a, "b": b})
    session.execute(text("UPDATE audit_log SET id = :b WHERE id = -1"), {"b": b})
    session.expire_all()
    report = audit.verify_chain(session)
    kinds = {(p.entry_id, p.kind) for p in report.problems}
    assert (a, "reordered") in kinds
    assert all(kind == "reordered" for _, kind in kinds)


def test_truncated_tail_is_named(session: Session) -> None:
    entries = _write(session, 4)
    session.flush()
    _drop_guards(session)
    session.execute(text("DELETE FROM audit_log WHERE id = :i"), {"i": entries[-1].id})
    session.expire_all()
    report = audit.verify_chain(session)
    assert [p.kind for p in report.problems] == ["truncated"]


def test_browse_needs_audit_permission_and_is_audited(session: Session) -> None:
    clerk = make_staff(session, Role.COUNTER_CLERK)
    with pytest.raises(PermissionDenied):
        audit.browse(session, clerk.actor(), AuditFilters())
    denied = session.query(AuditEntry).order_by(AuditEntry.id.desc()).first()
    assert denied is not None
    assert (denied.action, denied.outcome) == ("audit.browse", "denied")

    auditor = make_staff(session, Role.AUDITOR)
    page = audit.browse(session, auditor.actor(), AuditFilters(action="audit.browse"))
    assert page.total >= 1
    last = session.query(AuditEntry).order_by(AuditEntry.id.desc()).first()
    assert last is not None
    assert (last.action, last.actor_name) == ("audit.browse", auditor.username)


def test_county_auditor_sees_only_their_county(session: Session) -> None:
    audit.record(session, SYSTEM, "test.place", region_code="441602")
    audit.record(session, SYSTEM, "test.place", region_code="441625")
    county_auditor = make_staff(session, Role.AUDITOR, region_code="441625")
    page = audit.browse(session, county_auditor.actor(), AuditFilters(action="test.place"))
    assert {e.region_code for e in page.items} == {"441625"}


def test_action_filter_wildcards_are_literal(session: Session) -> None:
    audit.record(session, SYSTEM, "test.wild", region_code="441602")
    auditor = make_staff(session, Role.AUDITOR)
    assert audit.browse(session, auditor.actor(), AuditFilters(action="%")).total == 0
    assert audit.browse(session, auditor.actor(), AuditFilters(action="test.wil")).total == 1
