"""The tamper-evident audit trail (审计): record, browse, verify.

Every change and every read of personal data appends one entry inside the caller's transaction,
so an entry exists exactly when the thing it describes happened. Each entry stores the SM3 hash
of its predecessor; :func:`verify_chain` recomputes the chain and names each edited, deleted or
reordered entry. Appends serialise on the single ``audit_head`` row (``FOR UPDATE``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from yikatong.audit.models import AuditEntry, AuditHead
from yikatong.audit.repository import AuditFilters, Page, search_entries
from yikatong.crypto.sm3 import sm3_hex
from yikatong.db import utcnow
from yikatong.errors import PermissionDenied
from yikatong.kit.actor import Actor, Permission

GENESIS_HASH = "0" * 64
HEAD_ID = 1


class Outcome:
    SUCCESS = "success"
    DENIED = "denied"
    FAILED = "failed"


_PAYLOAD_FIELDS = (
    "actor_kind",
    "actor_id",
    "actor_name",
    "actor_role",
    "actor_region",
    "action",
    "object_type",
    "object_id",
    "region_code",
    "outcome",
    "ip",
    "user_agent",
    "request_id",
    "detail",
)


def _canonical(occurred_at: dt.datetime, values: Sequence[object]) -> bytes:
    occurred = occurred_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    doc = [occurred, *values]
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def _payload(entry: AuditEntry) -> bytes:
    """Canonical bytes of everything an entry says (its position is bound by ``prev_hash``)."""
    return _canonical(entry.occurred_at, [getattr(entry, name) for name in _PAYLOAD_FIELDS])


def entry_hash(prev_hash: str, entry: AuditEntry) -> str:
    return sm3_hex(prev_hash.encode() + b"\n" + _payload(entry))


def _hash_values(prev_hash: str, values: Mapping[str, Any]) -> str:
    payload = _canonical(values["occurred_at"], [values[name] for name in _PAYLOAD_FIELDS])
    return sm3_hex(prev_hash.encode() + b"\n" + payload)


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    object_type: str | None = None,
    object_id: str | int | None = None,
    region_code: str | None = None,
    outcome: str = Outcome.SUCCESS,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry to the chain. ``detail`` must hold masked values only."""
    head = session.execute(
        select(AuditHead).where(AuditHead.id == HEAD_ID).with_for_update()
    ).scalar_one()
    entry = AuditEntry(
        id=head.last_id + 1,
        occurred_at=utcnow(),
        actor_kind=str(actor.kind),
        actor_id=actor.id,
        actor_name=actor.name,
        actor_role=actor.role,
        actor_region=actor.region_code,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        region_code=region_code,
        outcome=outcome,
        ip=actor.ip,
        user_agent=(actor.user_agent or "")[:200] or None,
        request_id=actor.request_id,
        detail=detail or {},
        prev_hash=head.last_hash,
        hash="",
    )
    entry.hash = entry_hash(head.last_hash, entry)
    head.last_id = entry.id
    head.last_hash = entry.hash
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class Pending:
    """One entry for :func:`record_many`: the arguments :func:`record` takes."""

    actor: Actor
    action: str
    object_type: str | None = None
    object_id: str | int | None = None
    region_code: str | None = None
    outcome: str = Outcome.SUCCESS
    detail: dict[str, Any] = field(default_factory=dict)


_ENTRIES = cast(Table, AuditEntry.__table__)
_HEAD = cast(Table, AuditHead.__table__)
_LOCK_HEAD = (
    select(_HEAD.c.last_id, _HEAD.c.last_hash).where(_HEAD.c.id == HEAD_ID).with_for_update()
)
_MOVE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == HEAD_ID)
    .values(last_id=bindparam("last_id"), last_hash=bindparam("last_hash"))
)


def record_many(session: Session, pending: Sequence[Pending]) -> int:
    """Append several entries with one lock of the head and one multi-row insert.

    The entries are exactly those :func:`record` would append one by one, in order (same
    fields, same chain, same time for all of them); the terminal gateway appends a whole
    batch of verifications this way. Returns the id of the last entry (0 when none).
    """
    if not pending:
        return 0
    connection = session.connection()
    last_id, last_hash = connection.execute(_LOCK_HEAD).one()
    occurred_at = utcnow()
    rows: list[dict[str, Any]] = []
    for item in pending:
        actor = item.actor
        last_id += 1
        values: dict[str, Any] = {
            "id": last_id,
            "occurred_at": occurred_at,
            "actor_kind": str(actor.kind),
            "actor_id": actor.id,
            "actor_name": actor.name,
            "actor_role": actor.role,
            "actor_region": actor.region_code,
            "action": item.action,
            "object_type": item.object_type,
            "object_id": None if item.object_id is None else str(item.object_id),
            "region_code": item.region_code,
            "outcome": item.outcome,
            "ip": actor.ip,
            "user_agent": (actor.user_agent or "")[:200] or None,
            "request_id": actor.request_id,
            "detail": item.detail,
            "prev_hash": last_hash,
        }
        last_hash = values["hash"] = _hash_values(last_hash, values)
        rows.append(values)
    connection.execute(insert(_ENTRIES), rows)
    connection.execute(_MOVE_HEAD, {"last_id": last_id, "last_hash": last_hash})
    # Core statements went around the session: a head it loaded earlier must be read again.
    head = session.identity_map.get(session.identity_key(AuditHead, HEAD_ID))
    if head is not None:
        session.expire(head)
    return int(last_id)


def deny(
    session: Session,
    actor: Actor,
    action: str,
    *,
    reason: str,
    object_type: str | None = None,
    object_id: str | int | None = None,
    region_code: str | None = None,
) -> PermissionDenied:
    """Audit a refused attempt and return the error to raise (it keeps the audit entry)."""
    record(
        session,
        actor,
        action,
        object_type=object_type,
        object_id=object_id,
        region_code=region_code,
        outcome=Outcome.DENIED,
        detail={"reason": reason},
    )
    return PermissionDenied(reason)


def require(session: Session, actor: Actor, permission: Permission, action: str) -> None:
    """Raise (after auditing the refusal) unless ``actor`` holds ``permission``."""
    if not actor.can(permission):
        raise deny(session, actor, action, reason=f"missing permission {permission.value}")


def browse(
    session: Session, actor: Actor, filters: AuditFilters, *, page: int = 1, per_page: int = 50
) -> Page[AuditEntry]:
    """Entries an auditor may see, newest first; browsing is itself audited."""
    require(session, actor, Permission.AUDIT_READ, "audit.browse")
    result = search_entries(session, filters, scope=actor.scope, page=page, per_page=per_page)
    record(
        session,
        actor,
        "audit.browse",
        object_type="audit_log",
        detail={"filters": filters.as_dict(), "page": page, "total": result.total},
    )
    return result


@dataclass(frozen=True)
class ChainProblem:
    entry_id: int
    kind: str  # "modified" | "deleted" | "reordered" | "truncated"
    message: str


@dataclass
class ChainReport:
    checked: int = 0
    last_id: int = 0
    problems: list[ChainProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _entries_in_order(session: Session, batch: int) -> Iterator[AuditEntry]:
    after = 0
    while True:
        rows = list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.id > after).order_by(AuditEntry.id).limit(batch)
            )
        )
        if not rows:
            return
        yield from rows
        after = rows[-1].id
        # Keep memory flat on long chains without touching the caller's other objects.
        for row in rows:
            session.expunge(row)


def verify_chain(
    session: Session,
    *,
    batch: int = 2000,
    progress: Callable[[int, int], None] | None = None,
) -> ChainReport:
    """Recompute the whole chain; name each edited, deleted or reordered entry."""
    head = session.get(AuditHead, HEAD_ID)
    total = head.last_id if head else 0
    report = ChainReport()
    expected_id = 1
    prev_hash = GENESIS_HASH
    for entry in _entries_in_order(session, batch):
        content_ok = entry_hash(entry.prev_hash, entry) == entry.hash
        if not content_ok:
            report.problems.append(
                ChainProblem(
                    entry.id, "modified", f"entry #{entry.id} was edited after it was written"
                )
            )
        elif entry.prev_hash != prev_hash:
            if entry.id > expected_id:
                missing = (
                    f"#{expected_id}"
                    if entry.id == expected_id + 1
                    else f"#{expected_id}–#{entry.id - 1}"
                )
                report.problems.append(
                    ChainProblem(entry.id, "deleted", f"entries {missing} were deleted")
                )
            else:
                report.problems.append(
                    ChainProblem(
                        entry.id,
                        "reordered",
                        f"entry #{entry.id} does not follow #{entry.id - 1}: "
                        "entries were reordered or replaced",
                    )
                )
        elif entry.id != expected_id:
            report.problems.append(
                ChainProblem(entry.id, "reordered", f"entry #{entry.id} was renumbered")
            )
        # Continue from what is stored so one problem is reported once, not cascaded.
        prev_hash = entry.hash
        expected_id = entry.id + 1
        report.checked += 1
        report.last_id = entry.id
        if progress is not None:
            progress(report.checked, total)
    if head is not None and (head.last_id != report.last_id or head.last_hash != prev_hash):
        report.problems.append(
            ChainProblem(
                report.last_id + 1,
                "truncated",
                f"the chain ends at #{report.last_id} but its head records #{head.last_id}: "
                "the newest entries were deleted",
            )
        )
    return report


def verify_for(
    session: Session, actor: Actor, *, progress: Callable[[int, int], None] | None = None
) -> ChainReport:
    """Verify the chain on behalf of ``actor`` (auditors and operators), auditing the check."""
    require(session, actor, Permission.AUDIT_VERIFY, "audit.verify")
    report = verify_chain(session, progress=progress)
    record(
        session,
        actor,
        "audit.verify",
        object_type="audit_log",
        outcome=Outcome.SUCCESS if report.ok else Outcome.FAILED,
        detail={"checked": report.checked, "problems": len(report.problems)},
    )
    return report
