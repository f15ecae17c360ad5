"""E-card API (/api/v1/ecard): published keys for terminals, online verification, counter use.

``GET /keys`` is public: offline terminals fetch the platform verification keys from it.
Online verification needs a logged-in staff member with ``cards:read`` for now (service hall
desks and terminals signed in as staff); it runs through the verification gateway, which
batches the database work of concurrent requests. Every verification is audited.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from yikatong.db import session_factory, utcnow
from yikatong.deps import (
    SESSION_COOKIE,
    DbSession,
    StaffActor,
    request_actor,
    verify_csrf,
    verify_csrf_if_cookie_session,
)
from yikatong.ecard import service
from yikatong.ecard.gateway import gateway_for
from yikatong.ecard.models import ECardLevel
from yikatong.ecard.schemas import (
    ECardIssueIn,
    ECardOut,
    KeysOut,
    PublishedKeyOut,
    VerificationOut,
    VerifyIn,
)
from yikatong.errors import AuthenticationRequired
from yikatong.kit.params import RowId

router = APIRouter(tags=["ecard"])


@router.get("/keys", response_model=KeysOut)
def keys() -> KeysOut:
    """The platform's SM2 verification keys (pending, active and recently retired)."""
    now = utcnow()
    return KeysOut(
        keys=[PublishedKeyOut.of(key) for key in service.published_keys(now)], generated_at=now
    )


def _inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON schema for ``openapi_extra``, its enums referring to the components."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return schema


@router.post(
    "/verify",
    response_model=VerificationOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline_schema(VerifyIn)}},
        }
    },
)
async def verify(request: Request) -> Response:
    """Verify a scanned QR code online: signature, validity, purpose, card, e-card, replay.

    Body: ``{"code": "YKT1:...", "purpose": "identity" | "payment" | "medical"}``. The caller
    is a staff session (cookie plus ``X-CSRF-Token``); an expired one answers 401.

    Served by the verification gateway (:mod:`yikatong.ecard.gateway`): no dependency solving
    or thread hop before the signature check, and the database work of concurrent requests
    committed in batches. The function reads its own body so that the terminals' hottest
    path costs as little as FastAPI allows; the checks are those of every other endpoint
    (401 before 403 ``csrf_failed`` before 422 on the body).
    """
    credential = request.cookies.get(SESSION_COOKIE)
    if not credential:
        raise AuthenticationRequired("Please log in to the staff console")
    await verify_csrf(request)
    try:
        body = VerifyIn.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        ) from None
    factory = getattr(request.app.state, "session_factory", None) or session_factory()
    gateway = gateway_for(request.app.state, factory)
    result = await gateway.verify(credential, request_actor(request), body.code, body.purpose)
    return Response(VerificationOut.of(result).model_dump_json(), media_type="application/json")


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
