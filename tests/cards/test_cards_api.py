"""The cards API: the counter flow over HTTP, 409 with allowed operations, signed blacklist."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import login, make_resident, make_staff
from yikatong.cards.service import blacklist_message
from yikatong.crypto.keystore import get_keyring
from yikatong.crypto.sm2 import SM2PublicKey
from yikatong.kit.actor import Role


def test_counter_flow_over_http(client: TestClient, session: Session) -> None:
    resident = make_resident(session, region_code="441625")
    clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441625")
    session.commit()
    csrf = {"X-CSRF-Token": login(client, clerk)}
    res = client.post(
        "/api/v1/cards/applications",
        headers=csrf,
        json={"resident_id": resident.id, "channel": "counter"},
    )
    assert res.status_code == 201, res.text
    application = res.json()
    assert application["status"] == "submitted"
    again = client.post(
        "/api/v1/cards/applications",
        headers=csrf,
        json={"resident_id": resident.id, "channel": "instant"},
    )
    assert again.status_code == 409
    assert again.json()["code"] == "duplicate_application"
    for step in ("checked", "in_production", "ready"):
        res = client.post(
            f"/api/v1/cards/applications/{application['id']}/steps", headers=csrf, json={"to": step}
        )
        assert res.status_code == 200, res.text
    card_id = res.json()["card_id"]
    assert [s["to_status"] for s in res.json()["trail"]] == [
        "submitted",
        "checked",
        "in_production",
        "ready",
    ]
    bad = client.post(
        f"/api/v1/cards/{card_id}/issue",
        headers=csrf,
        json={"bank_code": "102", "bank_account": "6212261234567890123"},
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "bank_account"
    ok = client.post(
        f"/api/v1/cards/{card_id}/issue",
        headers=csrf,
        json={"bank_code": "102", "bank_account": "6212261234567890128"},
    )
    assert ok.status_code == 200, ok.text
    card = ok.json()
    assert card["state"] == "issued"
    assert card["bank_account"] == "621226*********0128"
    illegal = client.post(
        f"/api/v1/cards/{card_id}/operations",
        headers=csrf,
        json={"operation": "cancel_temporary_loss"},
    )
    assert illegal.status_code == 409
    body = illegal.json()
    assert body["code"] == "illegal_card_transition"
    assert "report_temporary_loss" in body["allowed"]
    lost = client.post(
        f"/api/v1/cards/{card_id}/operations",
        headers=csrf,
        json={"operation": "report_temporary_loss", "outlet": "东源县社保大厅"},
    )
    assert lost.status_code == 200
    assert lost.json()["card"]["state"] == "temporary_loss"


def test_blacklist_is_signed_and_incremental(client: TestClient, session: Session) -> None:
    start = client.get("/api/v1/blacklist").json()["version"]
    resident = make_resident(session, region_code="441625")
    clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441625")
    session.commit()
    from tests.card_factories import issued_card

    card = issued_card(session, clerk.actor(), resident.id)
    from yikatong.cards import service
    from yikatong.cards.lifecycle import Operation

    service.operate(session, clerk.actor(), card.id, Operation.REPORT_FORMAL_LOSS, reason="lost")
    session.commit()
    res = client.get("/api/v1/blacklist", params={"since": start})
    assert res.status_code == 200
    body = res.json()
    assert body["added"] == [card.token]
    assert body["version"] == start + 1
    public = get_keyring().platform_signing_key.public_key()
    assert body["key_fingerprint"] == public.fingerprint()
    message = blacklist_message(
        body["since"], body["version"], body["added"], body["removed"], body["issued_at"]
    )
    SM2PublicKey.from_bytes(public.to_bytes()).verify(bytes.fromhex(body["signature"]), message)
    tampered = blacklist_message(
        body["since"], body["version"], [], body["removed"], body["issued_at"]
    )
    assert not public.is_valid(bytes.fromhex(body["signature"]), tampered)
    nothing_new = client.get("/api/v1/blacklist", params={"since": body["version"]}).json()
    assert (nothing_new["added"], nothing_new["removed"]) == ([], [])


def test_lifecycle_table_is_published(client: TestClient) -> None:
    rows = client.get("/api/v1/cards/lifecycle").json()
    assert {
        "state": "temporary_loss",
        "operation": "cancel_temporary_loss",
        "to": "previous",
    } in rows
