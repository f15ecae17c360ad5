"""The resident portal: registration, login, my card, loss report, e-card QR code."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.card_factories import issued_card
from tests.factories import make_resident, make_staff
from tests.pages import csrf_from
from yikatong.cards import repository
from yikatong.cards.models import CardState
from yikatong.kit.actor import Role
from yikatong.portal.models import ResidentAccount

PASSWORD = "Portal2026pw"


@pytest.fixture
def holder(session: Session):  # type: ignore[no-untyped-def]
    resident = make_resident(
        session, region_code="441625", name="林小雨", sex="female", phone="13900001111"
    )
    clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441625").actor()
    card = issued_card(session, clerk, resident.id, active=True)
    session.commit()
    return resident, card


def _register(client: TestClient, resident, card, **override: str):  # type: ignore[no-untyped-def]
    page = client.get("/portal/register")
    data = {
        "csrf_token": csrf_from(page.text),
        "id_number": resident.id_number,
        "card_number": card.card_number,
        "phone": "139 0000 1111",
        "password": PASSWORD,
    }
    data.update(override)
    return client.post("/portal/register", data=data, follow_redirects=False)


def _login(client: TestClient, resident, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    page = client.get("/portal/login")
    return client.post(
        "/portal/login",
        data={
            "csrf_token": csrf_from(page.text),
            "id_number": resident.id_number,
            "password": password,
        },
        follow_redirects=False,
    )


def test_registration_needs_all_three_facts(client: TestClient, session: Session, holder) -> None:  # type: ignore[no-untyped-def]
    resident, card = holder
    wrong = _register(client, resident, card, phone="13900002222")
    assert wrong.status_code == 401
    assert session.get(ResidentAccount, resident.id) is None
    ok = _register(client, resident, card)
    assert ok.status_code == 303
    assert session.get(ResidentAccount, resident.id) is not None


def test_login_home_and_loss_report(client: TestClient, session: Session, holder) -> None:  # type: ignore[no-untyped-def]
    resident, card = holder
    _register(client, resident, card)
    assert _login(client, resident, "wrong-pass-1").status_code == 401
    res = _login(client, resident)
    assert res.status_code == 303
    home = client.get("/portal")
    assert home.status_code == 200
    assert card.card_number in home.text
    assert resident.id_number not in home.text
    lost = client.post(
        "/portal/card/loss", data={"csrf_token": csrf_from(home.text)}, follow_redirects=False
    )
    assert lost.status_code == 303
    session.expire_all()
    assert repository.live_card_of(session, resident.id).state == CardState.TEMPORARY_LOSS  # type: ignore[union-attr]


def test_portal_lockout(client: TestClient, session: Session, holder) -> None:  # type: ignore[no-untyped-def]
    resident, card = holder
    _register(client, resident, card)
    codes = [_login(client, resident, f"wrong-pass-{i}").status_code for i in range(5)]
    assert codes[-1] == 429
    assert _login(client, resident).status_code == 429


def test_ecard_issue_and_qr_code(client: TestClient, session: Session, holder) -> None:  # type: ignore[no-untyped-def]
    resident, card = holder
    _register(client, resident, card)
    _login(client, resident)
    page = client.get("/portal/ecard")
    assert page.status_code == 200
    weak = client.post(
        "/portal/ecard",
        data={"csrf_token": csrf_from(page.text), "password": "123456", "password_again": "123456"},
    )
    assert weak.status_code == 422
    ok = client.post(
        "/portal/ecard",
        data={"csrf_token": csrf_from(page.text), "password": "582947", "password_again": "582947"},
        follow_redirects=False,
    )
    assert ok.status_code == 303, ok.text
    page = client.get("/portal/ecard")
    assert 'hx-get="/portal/ecard/code?purpose=identity"' in page.text
    assert "林*雨" in page.text
    fragment = client.get("/portal/ecard/code?purpose=identity", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<svg" in fragment.text
    match = re.search(r'hx-trigger="every (\d+)s"', fragment.text)
    assert match is not None
    assert 5 <= int(match.group(1)) < 60
    locked = client.get("/portal/ecard/code?purpose=payment", headers={"HX-Request": "true"})
    assert "<svg" not in locked.text  # payment codes need the e-card password first


def test_portal_requires_login(client: TestClient) -> None:
    res = client.get("/portal", follow_redirects=False)
    assert res.status_code == 303
    assert res.headers["location"].startswith("/portal/login?next=/portal")


def test_code_panel_explains_a_lost_card(client: TestClient, session: Session, holder) -> None:  # type: ignore[no-untyped-def]
    resident, card = holder
    _register(client, resident, card)
    _login(client, resident)
    page = client.get("/portal/ecard")
    client.post(
        "/portal/ecard",
        data={"csrf_token": csrf_from(page.text), "password": "582947", "password_again": "582947"},
    )
    home = client.get("/portal")
    client.post("/portal/card/loss", data={"csrf_token": csrf_from(home.text)})
    fragment = client.get("/portal/ecard/code?purpose=identity", headers={"HX-Request": "true"})
    assert fragment.status_code == 200  # swapped in by htmx, replacing the dead code
    assert "<svg" not in fragment.text
    assert 'role="alert"' in fragment.text
