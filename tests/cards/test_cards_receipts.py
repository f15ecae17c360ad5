"""Counter receipts (回执): rebuilt from the records, masked, audited, scoped, deterministic."""

from __future__ import annotations

import datetime as dt
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from tests.card_factories import issued_card
from tests.factories import StaffLogin, login, make_resident, make_staff
from tests.pages import csrf_from, sign_in
from yikatong.audit.models import AuditEntry
from yikatong.cards import receipts
from yikatong.cards import service as cards
from yikatong.cards.lifecycle import Operation
from yikatong.cards.models import ApplicationStatus, Card, CardEvent, Channel
from yikatong.cards.receipts import (
    IssueReceipt,
    ReceiptKind,
    ReceiptUnavailable,
    ReplacementReceipt,
)
from yikatong.cli import app as cli_app
from yikatong.errors import NotFound, PermissionDenied
from yikatong.kit.actor import Actor, Role
from yikatong.reference.idnumber import make_id_number

ACCOUNT = "6212261234567890128"  # Luhn-valid, 中国工商银行's BIN
OUTLET = "源城区社保服务大厅"
SHANGHAI = ZoneInfo("Asia/Shanghai")
PROXY_ID = make_id_number("441602", dt.date(1960, 3, 8), 77)


def pdf_text(data: bytes) -> str:
    """All text of a PDF, line breaks removed (values wrap inside table cells)."""
    reader = PdfReader(BytesIO(data))
    return "".join(page.extract_text() for page in reader.pages).replace("\n", "")


def _event(session: Session, card: Card, operation: Operation) -> CardEvent:
    return session.scalars(
        select(CardEvent).where(CardEvent.card_id == card.id, CardEvent.operation == operation)
    ).one()


def _local(moment: dt.datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def _ready_card(
    session: Session, clerk: Actor, resident_id: int, proxy: cards.Proxy | None = None
) -> Card:
    application = cards.apply(
        session, clerk, resident_id=resident_id, channel=Channel.COUNTER, proxy=proxy
    )
    for step in (
        ApplicationStatus.CHECKED,
        ApplicationStatus.IN_PRODUCTION,
        ApplicationStatus.READY,
    ):
        cards.advance(session, clerk, application.id, step)
    assert application.card_id is not None
    card = session.get(Card, application.card_id)
    assert card is not None
    return card


@pytest.fixture
def clerk_login(session: Session) -> StaffLogin:
    return make_staff(session, Role.COUNTER_CLERK, region_code="441602")


@pytest.fixture
def clerk(clerk_login: StaffLogin) -> Actor:
    return clerk_login.actor()


# --- the issue receipt (领卡回执) ---------------------------------------------------------------


def test_issue_receipt_says_what_the_records_say(session: Session, clerk: Actor) -> None:
    resident = make_resident(session, region_code="441602", name="张小三")
    proxy = cards.Proxy("李四", PROXY_ID, "子女")
    card = _ready_card(session, clerk, resident.id, proxy=proxy)
    cards.issue_card(
        session, clerk, card.id, bank_code="102", bank_account=ACCOUNT, outlet=OUTLET, proxy=proxy
    )
    event = _event(session, card, Operation.ISSUE)

    made = receipts.receipt(session, clerk, card.id, ReceiptKind.ISSUE)

    details = made.details
    assert isinstance(details, IssueReceipt)
    local_day = event.occurred_at.astimezone(SHANGHAI).strftime("%Y%m%d")
    assert details.reference == f"LK{local_day}{event.id:08d}"
    assert details.holder_name == "张*三"
    assert details.holder_id_number == resident.id_number[:6] + "*" * 8 + resident.id_number[-4:]
    assert details.bank == "中国工商银行"
    assert details.bank_account == "621226*********0128"
    assert details.proxy == receipts.ProxyOnReceipt(
        "李四", "子女", PROXY_ID[:6] + "*" * 8 + PROXY_ID[-4:]
    )
    assert (details.outlet, details.clerk) == (OUTLET, clerk.name)
    assert made.filename == f"receipt-issue-{card.card_number}.pdf"

    text = pdf_text(made.pdf)
    assert card.expiry_date is not None
    assert card.issue_date is not None
    for expected in (
        "社会保障卡领卡回执",
        "河源市社会保障卡居民服务“一卡通”",
        details.reference,
        card.card_number,
        "张*三",
        details.holder_id_number,
        "中国工商银行",
        "621226*********0128",
        card.issue_date.isoformat(),
        card.expiry_date.isoformat(),
        OUTLET,
        clerk.name,
        "代办领取",
        "李四",
        "子女",
        details.proxy.id_number if details.proxy else "?",
        _local(event.occurred_at),
        "持卡人（代办人）签名",
    ):
        assert expected in text, expected
    for secret in ("张小三", resident.id_number, ACCOUNT, PROXY_ID):
        assert secret not in text, secret

    meta = PdfReader(BytesIO(made.pdf)).metadata
    assert meta is not None
    assert meta.title == "社会保障卡领卡回执"
    assert meta.author == "河源市社会保障卡居民服务“一卡通”"
    assert meta.creation_date == event.occurred_at.replace(microsecond=0)


def test_issue_to_the_holder_in_person(session: Session, clerk: Actor) -> None:
    resident = make_resident(session, region_code="441602")
    card = issued_card(session, clerk, resident.id)
    made = receipts.receipt(session, clerk, card.id, ReceiptKind.ISSUE)
    assert isinstance(made.details, IssueReceipt)
    assert made.details.proxy is None
    text = pdf_text(made.pdf)
    assert "本人领取" in text
    assert "代办领取" not in text


def test_a_proxy_who_only_collected_is_named_without_an_id_number(
    session: Session, clerk: Actor
) -> None:
    """The ID number of a proxy is recorded when they apply; one who only collects the card is
    named on the trail, and the receipt says the number was not recorded."""
    resident = make_resident(session, region_code="441602")
    card = _ready_card(session, clerk, resident.id)
    cards.issue_card(
        session,
        clerk,
        card.id,
        bank_code="102",
        bank_account=ACCOUNT,
        proxy=cards.Proxy("王五", PROXY_ID, "配偶"),
    )
    made = receipts.receipt(session, clerk, card.id, ReceiptKind.ISSUE)
    assert isinstance(made.details, IssueReceipt)
    assert made.details.proxy == receipts.ProxyOnReceipt("王五", "配偶", None)
    text = pdf_text(made.pdf)
    assert "王五" in text
    assert "未登记" in text
    assert PROXY_ID not in text


def test_instant_issuance_has_an_issue_receipt(session: Session, clerk: Actor) -> None:
    resident = make_resident(session, region_code="441602")
    proxy = cards.Proxy("赵六", PROXY_ID, "监护人")
    card = cards.instant_issue(
        session,
        clerk,
        resident.id,
        bank_code="102",
        bank_account=ACCOUNT,
        outlet=OUTLET,
        proxy=proxy,
    )
    made = receipts.receipt(session, clerk, card.id, ReceiptKind.ISSUE)
    assert isinstance(made.details, IssueReceipt)
    assert made.details.proxy is not None
    assert made.details.proxy.id_number == PROXY_ID[:6] + "*" * 8 + PROXY_ID[-4:]
    assert card.card_number in pdf_text(made.pdf)


def test_no_issue_receipt_before_the_card_is_handed_over(session: Session, clerk: Actor) -> None:
    resident = make_resident(session, region_code="441602")
    card = _ready_card(session, clerk, resident.id)
    with pytest.raises(ReceiptUnavailable) as caught:
        receipts.receipt(session, clerk, card.id, ReceiptKind.ISSUE)
    assert caught.value.status == 409
    assert caught.value.extra["kind"] == "issue"


# --- the replacement receipt (补换卡受理回执) -----------------------------------------------------


def test_replacement_receipt_names_the_old_card_and_the_new_application(
    session: Session, clerk: Actor
) -> None:
    resident = make_resident(session, region_code="441602", name="陈大文")
    card = issued_card(session, clerk, resident.id, active=True)
    cards.operate(session, clerk, card.id, Operation.REPORT_FORMAL_LOSS, reason="被盗")
    result = cards.operate(
        session, clerk, card.id, Operation.REPLACE, reason="卡片遗失", outlet=OUTLET
    )
    assert result.new_application is not None
    event = _event(session, card, Operation.REPLACE)

    made = receipts.receipt(session, clerk, card.id, ReceiptKind.REPLACEMENT)

    details = made.details
    assert isinstance(details, ReplacementReceipt)
    local_day = event.occurred_at.astimezone(SHANGHAI).strftime("%Y%m%d")
    assert details.reference == f"BH{local_day}{event.id:08d}"
    assert details.operation is Operation.REPLACE
    assert details.old_state == "formal_loss"
    assert details.application_id == result.new_application.id
    assert details.channel is Channel.COUNTER
    assert details.collection_outlet == OUTLET
    assert OUTLET in details.next_steps
    text = pdf_text(made.pdf)
    for expected in (
        "社会保障卡补换卡受理回执",
        details.reference,
        "补卡",
        card.card_number,
        "正式挂失",
        "卡片遗失",
        f"申请编号{result.new_application.id}",
        "窗口申领",
        "陈*文",
        OUTLET,
        clerk.name,
        "无（本人办理）",
        _local(event.occurred_at),
        "申请人（代办人）签名",
    ):
        assert expected in text, expected
    assert "陈大文" not in text
    assert resident.id_number not in text


def test_renewal_by_post_shows_the_masked_mailing_address(session: Session, clerk: Actor) -> None:
    resident = make_resident(session, region_code="441602")
    card = issued_card(session, clerk, resident.id)
    address = "广东省河源市源城区文明路88号3栋502"
    cards.operate(
        session,
        clerk,
        card.id,
        Operation.RENEW,
        reason="信息变更",
        channel=Channel.ONLINE,
        mailing_address=address,
    )
    made = receipts.receipt(session, clerk, card.id, ReceiptKind.REPLACEMENT)
    assert isinstance(made.details, ReplacementReceipt)
    assert made.details.operation is Operation.RENEW
    assert made.details.mailing_address == "广东省河源市源城区******"
    assert made.details.collection_outlet is None
    text = pdf_text(made.pdf)
    for expected in ("换卡", "信息变更", "网上申领（邮寄）", "广东省河源市源城区******"):
        assert expected in text, expected
    assert "文明路88号" not in text


def test_no_replacement_receipt_for_a_card_still_in_use(session: Session, clerk: Actor) -> None:
    resident = make_resident(session, region_code="441602")
    card = issued_card(session, clerk, resident.id)
    with pytest.raises(ReceiptUnavailable) as caught:
        receipts.receipt(session, clerk, card.id, ReceiptKind.REPLACEMENT)
    assert caught.value.extra["kind"] == "replacement"


# --- authorisation, audit, determinism ------------------------------------------------------------


def test_viewing_a_receipt_is_audited(session: Session, clerk: Actor) -> None:
    resident = make_resident(session, region_code="441602")
    card = issued_card(session, clerk, resident.id)
    made = receipts.receipt(session, clerk, card.id, ReceiptKind.ISSUE)
    entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert entry is not None
    assert (entry.action, entry.object_type, entry.object_id) == (
        "card.receipt.issue",
        "card",
        str(card.id),
    )
    assert entry.actor_name == clerk.name
    assert entry.region_code == "441602"
    assert entry.detail == {"reference": made.details.reference}


def test_scope_and_permission(session: Session, clerk: Actor) -> None:
    resident = make_resident(session, region_code="441602")
    card = issued_card(session, clerk, resident.id)
    elsewhere = make_staff(session, Role.COUNTER_CLERK, region_code="441625").actor()
    with pytest.raises(NotFound):
        receipts.receipt(session, elsewhere, card.id, ReceiptKind.ISSUE)
    auditor = make_staff(session, Role.AUDITOR, region_code="441600").actor()
    with pytest.raises(PermissionDenied):
        receipts.receipt(session, auditor, card.id, ReceiptKind.ISSUE)
    denied = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert denied is not None
    assert (denied.action, denied.outcome) == ("card.receipt.issue", "denied")
    holder = Actor.resident(resident.id, resident.name, resident.region_code)
    with pytest.raises(PermissionDenied):  # receipts are printed at the counter
        receipts.receipt(session, holder, card.id, ReceiptKind.ISSUE)


def test_the_same_records_give_the_same_bytes(session: Session, clerk: Actor) -> None:
    first_holder = make_resident(session, region_code="441602")
    card = issued_card(session, clerk, first_holder.id)
    once = receipts.receipt(session, clerk, card.id, ReceiptKind.ISSUE).pdf
    session.expire_all()  # read everything back from the database the second time
    again = receipts.receipt(session, clerk, card.id, ReceiptKind.ISSUE).pdf
    assert once == again
    other = issued_card(session, clerk, make_resident(session, region_code="441602").id)
    assert receipts.receipt(session, clerk, other.id, ReceiptKind.ISSUE).pdf != once


# --- the API -------------------------------------------------------------------------------------


def test_receipts_over_the_api(
    client: TestClient, session: Session, clerk_login: StaffLogin
) -> None:
    clerk = clerk_login.actor()
    resident = make_resident(session, region_code="441602")
    card = issued_card(session, clerk, resident.id)
    session.commit()
    csrf = {"X-CSRF-Token": login(client, clerk_login)}

    res = client.get(f"/api/v1/cards/{card.id}/receipts/issue")
    assert res.status_code == 200, res.text
    assert res.headers["content-type"] == "application/pdf"
    assert res.headers["content-disposition"] == (
        f'inline; filename="receipt-issue-{card.card_number}.pdf"'
    )
    assert card.card_number in pdf_text(res.content)
    assert client.get(f"/api/v1/cards/{card.id}/receipts/issue").content == res.content

    missing = client.get(f"/api/v1/cards/{card.id}/receipts/replacement")
    assert missing.status_code == 409
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["code"] == "receipt_unavailable"
    assert missing.json()["kind"] == "replacement"

    replaced = client.post(
        f"/api/v1/cards/{card.id}/operations",
        headers=csrf,
        json={"operation": "replace", "reason": "卡片损坏", "outlet": OUTLET},
    )
    assert replaced.status_code == 200, replaced.text
    res = client.get(f"/api/v1/cards/{card.id}/receipts/replacement")
    assert res.status_code == 200, res.text
    assert "卡片损坏" in pdf_text(res.content)
    new_card = client.get(f"/api/v1/cards/{card.id + 10**6}/receipts/issue")
    assert new_card.status_code == 404
    assert new_card.json()["code"] == "not_found"


def test_api_refuses_other_regions_and_roles(
    client: TestClient, session: Session, clerk: Actor
) -> None:
    resident = make_resident(session, region_code="441602")
    card = issued_card(session, clerk, resident.id)
    elsewhere = make_staff(session, Role.COUNTER_CLERK, region_code="441625")
    auditor = make_staff(session, Role.AUDITOR, region_code="441600")
    session.commit()

    login(client, elsewhere)
    res = client.get(f"/api/v1/cards/{card.id}/receipts/issue")
    assert res.status_code == 404
    assert res.json()["code"] == "not_found"

    login(client, auditor)
    res = client.get(f"/api/v1/cards/{card.id}/receipts/issue")
    assert res.status_code == 403
    assert res.json()["code"] == "permission_denied"

    client.cookies.clear()
    assert client.get(f"/api/v1/cards/{card.id}/receipts/issue").status_code == 401


def test_openapi_declares_the_pdf(client: TestClient) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    for path in (
        "/api/v1/cards/{card_id}/receipts/issue",
        "/api/v1/cards/{card_id}/receipts/replacement",
    ):
        responses = paths[path]["get"]["responses"]
        assert list(responses["200"]["content"]) == ["application/pdf"]
        assert "application/problem+json" in responses["409"]["content"]


# --- the pages -----------------------------------------------------------------------------------


def test_issue_at_the_counter_offers_the_receipt(
    client: TestClient, session: Session, clerk_login: StaffLogin
) -> None:
    resident = make_resident(session, region_code="441602")
    session.commit()
    sign_in(client, clerk_login)
    page = client.get(f"/staff/cards/residents/{resident.id}").text
    assert "receipts/issue.pdf" not in page
    res = client.post(
        f"/staff/cards/residents/{resident.id}/instant",
        data={
            "csrf_token": csrf_from(page),
            "bank_code": "102",
            "bank_account": ACCOUNT,
            "outlet": OUTLET,
        },
        follow_redirects=False,
    )
    assert res.status_code == 303, res.text
    card = session.scalars(select(Card).where(Card.resident_id == resident.id)).one()
    assert res.headers["location"] == (
        f"/staff/cards/residents/{resident.id}?done=issued&card={card.id}"
    )
    page = client.get(res.headers["location"]).text
    link = f'href="/staff/cards/{card.id}/receipts/issue.pdf"'
    assert "卡片已发放" in page
    assert page.count(link) == 3  # the notice, the current card, the card history
    assert "打印回执" in page

    pdf = client.get(f"/staff/cards/{card.id}/receipts/issue.pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"].startswith("inline; filename=")
    assert OUTLET in pdf_text(pdf.content)


def test_replacement_at_the_counter_offers_the_receipt(
    client: TestClient, session: Session, clerk_login: StaffLogin
) -> None:
    resident = make_resident(session, region_code="441602")
    card = issued_card(session, clerk_login.actor(), resident.id)
    session.commit()
    sign_in(client, clerk_login)
    page = client.get(f"/staff/cards/residents/{resident.id}").text
    res = client.post(
        f"/staff/cards/{card.id}/operations",
        data={
            "csrf_token": csrf_from(page),
            "operation": "replace",
            "reason": "卡片损坏",
            "confirm": "1",
        },
        follow_redirects=False,
    )
    assert res.status_code == 303, res.text
    assert res.headers["location"].endswith(f"?done=replaced&card={card.id}")
    page = client.get(res.headers["location"]).text
    assert "补换卡已受理" in page
    # The notice, the new application and the card history each link the receipt.
    assert page.count(f'href="/staff/cards/{card.id}/receipts/replacement.pdf"') == 3
    pdf = client.get(f"/staff/cards/{card.id}/receipts/replacement.pdf")
    assert pdf.status_code == 200
    assert "卡片损坏" in pdf_text(pdf.content)


def test_pages_offer_no_receipt_without_its_event(
    client: TestClient, session: Session, clerk_login: StaffLogin
) -> None:
    resident = make_resident(session, region_code="441602")
    card = _ready_card(session, clerk_login.actor(), resident.id)
    session.commit()
    sign_in(client, clerk_login)
    page = client.get(f"/staff/cards/residents/{resident.id}?done=issued&card={card.id}").text
    assert "receipts/issue.pdf" not in page
    assert "卡片已发放" not in page
    res = client.get(f"/staff/cards/{card.id}/receipts/issue.pdf")
    assert res.status_code == 409
    assert "application/pdf" not in res.headers["content-type"]


# --- the CLI -------------------------------------------------------------------------------------


def test_cli_writes_the_receipt(
    session_factory: sessionmaker[Session], session: Session, clerk: Actor, tmp_path: Path
) -> None:
    resident = make_resident(session, region_code="441602")
    card = issued_card(session, clerk, resident.id)
    session.commit()
    out = tmp_path / "receipt.pdf"
    runner = CliRunner()
    result = runner.invoke(
        cli_app, ["cards", "receipt", str(card.id), "--kind", "issue", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data.startswith(b"%PDF-")
    assert card.card_number in pdf_text(data)
    assert data == receipts.receipt(session, clerk, card.id, ReceiptKind.ISSUE).pdf
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.actor_name == "cli:cards").order_by(AuditEntry.id)
    ).first()
    assert entry is not None
    assert entry.action == "card.receipt.issue"

    again = runner.invoke(
        cli_app, ["cards", "receipt", str(card.id), "--kind", "issue", "-o", str(out)]
    )
    assert again.exit_code == 1
    assert "refusing to overwrite" in again.output
    wrong = runner.invoke(
        cli_app,
        ["cards", "receipt", str(card.id), "--kind", "replacement", "-o", str(tmp_path / "r.pdf")],
    )
    assert wrong.exit_code == 1
    assert "receipt_unavailable" in wrong.output
    assert not (tmp_path / "r.pdf").exists()
