"""The auditors' browser: filters, htmx fragments, chain verification from the page."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import make_staff
from tests.pages import csrf_from, sign_in
from yikatong.kit.actor import Role


def test_auditor_browses_and_filters(client: TestClient, session: Session) -> None:
    auditor = make_staff(session, Role.AUDITOR)
    session.commit()
    sign_in(client, auditor)
    page = client.get("/staff/audit")
    assert page.status_code == 200
    assert "staff.login" in page.text
    fragment = client.get("/staff/audit?action=staff.create", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert "staff.create" in fragment.text
    assert "staff.login" not in fragment.text.split("<tbody>", 1)[1]


def test_bad_date_filter_is_a_readable_error(client: TestClient, session: Session) -> None:
    auditor = make_staff(session, Role.AUDITOR)
    session.commit()
    sign_in(client, auditor)
    res = client.get("/staff/audit?since=yesterday")
    assert res.status_code == 422
    assert "YYYY-MM-DD" in res.text


def test_verify_from_the_page(client: TestClient, session: Session) -> None:
    auditor = make_staff(session, Role.AUDITOR)
    session.commit()
    sign_in(client, auditor)
    page = client.get("/staff/audit")
    res = client.post(
        "/staff/audit/verify",
        data={"csrf_token": csrf_from(page.text)},
        headers={"HX-Request": "true"},
    )
    assert res.status_code == 200
    assert "alert-success" in res.text


def test_clerk_is_refused_the_audit_browser(client: TestClient, session: Session) -> None:
    clerk = make_staff(session)
    session.commit()
    sign_in(client, clerk)
    res = client.get("/staff/audit")
    assert res.status_code == 403
