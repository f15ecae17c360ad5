"""E-card API (/api/v1/ecard): published keys for terminals, online verification, counter use.

``GET /keys`` is public: offline terminals fetch the platform verification keys from it.
Online verification needs a logged-in staff member with ``cards:read`` for now (service hall
desks); the terminal gateway of a later issue will call the same service with its own actor.
Every verification is audited.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from yikatong.db import utcnow
from yikatong.deps import DbSession, StaffActor, verify_csrf_if_cookie_session
from yikatong.ecard import service
from yikatong.ecard.models import ECardLevel
from yikatong.ecard.schemas import (
    ECardIssueIn,
    ECardOut,
    KeysOut,
    PublishedKeyOut,
    VerificationOut,
    VerifyIn,
)
from yikatong.kit.params import RowId

router = APIRouter(tags=["ecard"])


@router.get("/keys", response_model=KeysOut)
def keys() -> KeysOut:
    """The platform's SM2 verification keys (pending, active and recently retired)."""
    now = utcnow()
    return KeysOut(
        keys=[PublishedKeyOut.of(key) for key in service.published_keys(now)], generated_at=now
    )


@router.post(
    "/verify",
    response_model=VerificationOut,
    dependencies=[Depends(verify_csrf_if_cookie_session)],
)
def verify(body: VerifyIn, session: DbSession, actor: StaffActor) -> VerificationOut:
    """Verify a scanned QR code online: signature, validity, purpose, card, e-card, replay."""
    return VerificationOut.of(service.verify_online(session, actor, body.code, body.purpose))


@router.get("/residents/{resident_id}", response_model=ECardOut)
def read(resident_id: RowId, session: DbSession, actor: StaffActor) -> ECardOut:
    """The resident's e-card in use."""
    return ECardOut.of(service.get_ecard(session, actor, resident_id), utcnow())


@router.post(
    "/residents/{resident_id}",
    response_model=ECardOut,
    status_code=201,
    dependencies=[Depends(verify_csrf_if_cookie_session)],
)
def issue(
    resident_id: RowId, body: ECardIssueIn, session: DbSession, actor: StaffActor
) -> ECardOut:
    """Issue the e-card at the counter; the holder types the password on the PIN pad."""
    ecard = service.issue_ecard(session, actor, resident_id, body.password, ECardLevel(body.level))
    return ECardOut.of(ecard, utcnow())
