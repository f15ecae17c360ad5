"""The counter workbench pages: the card file, applications, issue, operations."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import make_resident, make_staff
from tests.pages import csrf_from, sign_in
from yikatong.audit.models import AuditEntry
from yikatong.cards import repository
from yikatong.cards.models import CardState
from yikatong.kit.actor import Role

ACCOUNT = "6212261234567890128"


def _file(client: TestClient, resident_id: int) -> str:
    res = client.get(f"/staff/cards/residents/{resident_id}")
    assert res.status_code == 200, res.text
    return res.text


def test_application_to_issue_through_the_pages(client: TestClient, session: Session) -> None:
    resident = make_resident(session, region_code="441625", name="彭一")
    clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441625")
    session.commit()
    sign_in(client, clerk)
    page = _file(client, resident.id)
    assert "彭*" in page
    res = client.post(
        f"/staff/cards/residents/{resident.id}/applications",
        data={"csrf_token": csrf_from(page), "channel": "counter"},
        follow_redirects=False,
    )
    assert res.status_code == 303
    application = repository.open_application_of(session, resident.id)
    assert application is not None
    for step in ("checked", "in_production", "ready"):
        res = client.post(
            f"/staff/cards/applications/{application.id}/steps",
            data={"csrf_token": csrf_from(page), "to": step},
            follow_redirects=False,
        )
        assert res.status_code == 303, res.text
    session.expire_all()
    card = repository.live_card_of(session, resident.id)
    assert card is not None
    assert card.state == CardState.READY
    page = _file(client, resident.id)
    assert "/issue" in page
    bad = client.post(
        f"/staff/cards/{card.id}/issue",
        data={
            "csrf_token": csrf_from(page),
            "bank_code": "102",
            "bank_account": "6212261234567890123",
        },
    )
    assert bad.status_code == 422
    assert "is-invalid" in bad.text
    ok = client.post(
        f"/staff/cards/{card.id}/issue",
        data={"csrf_token": csrf_from(page), "bank_code": "102", "bank_account": ACCOUNT},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    page = _file(client, resident.id)
    assert "621226*********0128" in page
    assert ACCOUNT not in page


def test_irreversible_operation_needs_confirmation(client: TestClient, session: Session) -> None:
    resident = make_resident(session, region_code="441625", name="彭二")
    clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441625")
    session.commit()
    sign_in(client, clerk)
    page = _file(client, resident.id)
    res = client.post(
        f"/staff/cards/residents/{resident.id}/instant",
        data={"csrf_token": csrf_from(page), "bank_code": "102", "bank_account": ACCOUNT},
        follow_redirects=False,
    )
    assert res.status_code == 303, res.text
    session.expire_all()
    card = repository.live_card_of(session, resident.id)
    assert card is not None
    assert card.state == CardState.ISSUED
    page = _file(client, resident.id)
    refused = client.post(
        f"/staff/cards/{card.id}/operations",
        data={"csrf_token": csrf_from(page), "operation": "report_formal_loss"},
    )
    assert refused.status_code == 422
    session.expire_all()
    assert repository.live_card_of(session, resident.id).state == CardState.ISSUED  # type: ignore[union-attr]
    done = client.post(
        f"/staff/cards/{card.id}/operations",
        data={
            "csrf_token": csrf_from(page),
            "operation": "report_formal_loss",
            "confirm": "1",
            "reason": "stolen",
        },
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    session.expire_all()
    assert repository.cards_of(session, resident.id)[0].state == CardState.FORMAL_LOSS


def test_resident_page_links_to_the_card_file(client: TestClient, session: Session) -> None:
    resident = make_resident(session, region_code="441625", name="彭三")
    clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441625")
    session.commit()
    sign_in(client, clerk)
    page = client.get(f"/staff/residents/{resident.id}")
    assert f'href="/staff/cards/residents/{resident.id}"' in page.text


def test_a_refused_form_keeps_its_audit_entry(client: TestClient, session: Session) -> None:
    """A denial shown on the page is still in the audit trail: the savepoint keeps it."""
    resident = make_resident(session, region_code="441625")
    admin = make_staff(session, Role.DEPARTMENT_ADMIN, region_code="441625")
    session.commit()
    sign_in(client, admin)
    page = _file(client, resident.id)
    res = client.post(
        f"/staff/cards/residents/{resident.id}/applications",
        data={"csrf_token": csrf_from(page), "channel": "counter"},
        follow_redirects=False,
    )
    assert res.status_code == 403
    session.expire_all()
    assert repository.open_application_of(session, resident.id) is None
    denied = session.scalars(
        select(AuditEntry).where(
            AuditEntry.actor_id == str(admin.member.id), AuditEntry.outcome == "denied"
        )
    ).all()
    assert [entry.action for entry in denied] == ["card.apply"]
