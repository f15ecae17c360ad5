"""The e-card API: public keys, staff-only online verification, counter issuance."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.ecard.conftest import Holder, MakeHolder
from tests.factories import login, make_staff
from yikatong.deps import CSRF_HEADER
from yikatong.ecard import service
from yikatong.ecard.models import ECardLevel
from yikatong.ecard.qr import Purpose
from yikatong.kit.actor import Role


def signed_in(client: TestClient, session: Session, role: Role = Role.COUNTER_CLERK) -> None:
    token = login(client, make_staff(session, role, region_code="441600"))
    client.headers[CSRF_HEADER] = token


def test_verify_needs_a_staff_session(client: TestClient) -> None:
    res = client.post("/api/v1/ecard/verify", json={"code": "YKT1:", "purpose": "identity"})
    assert res.status_code == 401
    assert res.json()["code"] == "authentication_required"


def test_verify_through_the_api(client: TestClient, session: Session, holder: Holder) -> None:
    text = service.issue_code(session, holder.actor, holder.resident.id, Purpose.IDENTITY).text
    signed_in(client, session)
    body = {"code": text, "purpose": "identity"}
    res = client.post("/api/v1/ecard/verify", json=body)
    assert res.status_code == 200, res.text
    result = res.json()
    assert result["token"] == holder.card.token
    assert result["holder_name"] == "张*三"
    assert result["purpose"] == "identity"
    assert holder.resident.id_number not in res.text

    replay = client.post("/api/v1/ecard/verify", json=body)
    assert replay.status_code == 409
    assert replay.headers["content-type"] == "application/problem+json"
    assert replay.json()["code"] == "qr_replayed"

    malformed = client.post("/api/v1/ecard/verify", json={"code": text[:-2], "purpose": "identity"})
    assert malformed.status_code == 422
    assert malformed.json()["code"] == "qr_malformed"
    assert malformed.json()["reason"] == "truncated"


def test_verify_refuses_roles_without_cards_read(
    client: TestClient, session: Session, holder: Holder
) -> None:
    text = service.issue_code(session, holder.actor, holder.resident.id, Purpose.IDENTITY).text
    signed_in(client, session, Role.AUDITOR)
    res = client.post("/api/v1/ecard/verify", json={"code": text, "purpose": "identity"})
    assert res.status_code == 403
    assert res.json()["code"] == "permission_denied"


def test_verify_needs_the_csrf_header_with_a_cookie_session(
    client: TestClient, session: Session
) -> None:
    signed_in(client, session)
    del client.headers[CSRF_HEADER]
    res = client.post("/api/v1/ecard/verify", json={"code": "YKT1:", "purpose": "identity"})
    assert res.status_code == 403
    assert res.json()["code"] == "csrf_failed"


def test_issue_and_read_at_the_counter(
    client: TestClient, session: Session, make_holder: MakeHolder
) -> None:
    holder = make_holder(bank_activated=True, level=None)
    signed_in(client, session)
    url = f"/api/v1/ecard/residents/{holder.resident.id}"
    assert client.get(url).json()["code"] == "ecard_not_found"
    weak = client.post(url, json={"password": "123456", "level": 2})
    assert weak.status_code == 422
    assert weak.json()["code"] == "ecard_weak_password"
    created = client.post(url, json={"password": "480263", "level": 2})
    assert created.status_code == 201, created.text
    assert created.json()["level"] == ECardLevel.PAYMENT
    assert created.json()["status"] == "active"
    assert "password" not in created.text
    again = client.post(url, json={"password": "480263"})
    assert again.status_code == 409
    assert again.json()["code"] == "ecard_exists"
    read = client.get(url)
    assert read.status_code == 200
    assert read.json()["card_id"] == holder.card.id
    assert read.json()["locked_until"] is None
