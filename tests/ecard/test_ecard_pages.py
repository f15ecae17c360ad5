"""The clerk's e-card pages: the panel on the card file, issue, password reset, level changes,
revocation and verifying a code at the desk; refusals on their forms, roles and regions."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.card_factories import issued_card
from tests.factories import StaffLogin, make_resident, make_staff
from tests.pages import csrf_from, sign_in
from yikatong.audit.models import AuditEntry
from yikatong.cards import service as cards
from yikatong.cards.lifecycle import Operation
from yikatong.ecard import repository, service
from yikatong.ecard.errors import EcardLocked, EcardPasswordWrong
from yikatong.ecard.models import ECard, ECardLevel, ECardStatus
from yikatong.ecard.qr import Purpose
from yikatong.kit.actor import Role
from yikatong.residents.models import Resident

PASSWORD = "739514"
NEW_PASSWORD = "480263"
HTMX = {"HX-Request": "true"}


@dataclass
class Desk:
    """A signed-in clerk of Yuancheng and a resident of Yuancheng with an issued card."""

    client: TestClient
    session: Session
    clerk: StaffLogin
    resident: Resident

    @property
    def base(self) -> str:
        return f"/staff/ecard/residents/{self.resident.id}"

    def panel(self, *, status: int = 200) -> str:
        res = self.client.get(self.base)
        assert res.status_code == status, res.text
        return res.text

    def post(self, action: str, status: int = 303, **data: str) -> str:
        """Post a panel form with a fresh CSRF token; returns the answer's text (or location)."""
        token = csrf_from(self.client.get("/staff/ecard/verify").text)
        res = self.client.post(
            f"{self.base}/{action}",
            data={"csrf_token": token, **data},
            follow_redirects=False,
        )
        assert res.status_code == status, res.text
        return res.headers["location"] if status == 303 else res.text

    def ecard(self) -> ECard | None:
        self.session.expire_all()
        return repository.live_ecard_of(self.session, self.resident.id)


def _desk(
    client: TestClient, session: Session, *, bank_activated: bool = False, card: bool = True
) -> Desk:
    clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441602")
    resident = make_resident(session, region_code="441602", name="张小三")
    if card:
        issued_card(session, clerk.actor(), resident.id, bank_activated=bank_activated)
    session.commit()
    sign_in(client, clerk)
    return Desk(client, session, clerk, resident)


@pytest.fixture
def desk(client: TestClient, session: Session) -> Desk:
    return _desk(client, session)


def _issued(desk: Desk, level: ECardLevel = ECardLevel.IDENTITY) -> ECard:
    ecard = service.issue_ecard(desk.session, desk.clerk.actor(), desk.resident.id, PASSWORD, level)
    desk.session.commit()
    return ecard


def _invalid(html: str, field_id: str) -> str:
    """The validation message shown under the field ``field_id``."""
    assert f'id="{field_id}"' in html
    match = re.search(rf'id="{field_id}-error" class="invalid-feedback">([^<]*)<', html)
    assert match, f"no message under {field_id}"
    return match.group(1)


def _audited(session: Session, action: str, outcome: str = "success") -> int:
    session.expire_all()
    return len(
        session.scalars(
            select(AuditEntry).where(AuditEntry.action == action, AuditEntry.outcome == outcome)
        ).all()
    )


# --- the panel ---------------------------------------------------------------------------------


def test_card_file_loads_the_panel(desk: Desk) -> None:
    page = desk.client.get(f"/staff/cards/residents/{desk.resident.id}").text
    assert f'hx-get="{desk.base}"' in page
    assert f'href="{desk.base}"' in page  # without JavaScript, a link to the same panel
    fragment = desk.client.get(desk.base, headers=HTMX)
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert fragment.text.lstrip().startswith('<section id="ecard"')
    assert "尚未签发电子社保卡" in fragment.text
    # The PIN pad fields: digits, hidden, nothing remembered by the browser.
    field = re.search(r'<input[^>]*id="ecard-issue-password"[^>]*>', fragment.text)
    assert field is not None
    for attribute in ('type="password"', 'inputmode="numeric"', 'autocomplete="off"'):
        assert attribute in field.group(0)
    full = desk.panel()
    assert "<html" in full
    assert "张*三" in full  # the masked name in the heading


def test_panel_shows_state_level_and_lockout(desk: Desk) -> None:
    _issued(desk)
    page = desk.panel()
    assert "一级：身份凭证、信息查询" in page
    assert "未锁定" in page
    for _ in range(service.MAX_PASSWORD_FAILURES - 1):
        with pytest.raises(EcardPasswordWrong):
            service.verify_password(desk.session, desk.clerk.actor(), desk.resident.id, "000001")
    desk.session.commit()
    assert "连续输错 4 次（上限 5 次）" in desk.panel()
    with pytest.raises(EcardLocked):
        service.verify_password(desk.session, desk.clerk.actor(), desk.resident.id, "000001")
    desk.session.commit()
    page = desk.panel()
    assert "锁定至" in page
    assert "未锁定" not in page


def test_a_lost_card_shows_the_ecard_suspended(desk: Desk) -> None:
    ecard = _issued(desk)
    cards.operate(desk.session, desk.clerk.actor(), ecard.card_id, Operation.REPORT_TEMPORARY_LOSS)
    desk.session.commit()
    page = desk.panel()
    assert "暂停使用" in page
    assert "社保卡临时挂失" in page
    assert "/upgrade" not in page  # only an active e-card is upgraded
    assert "/password" in page  # a reset is still possible


# --- issue -------------------------------------------------------------------------------------


def test_issue_at_the_counter(desk: Desk) -> None:
    location = desk.post("issue", password=PASSWORD, password_again=PASSWORD, level="1")
    assert location == f"{desk.base}?done=issued"
    ecard = desk.ecard()
    assert ecard is not None
    assert (ecard.status, ecard.level) == (ECardStatus.ACTIVE, ECardLevel.IDENTITY)
    assert service.verify_password(desk.session, desk.clerk.actor(), desk.resident.id, PASSWORD)
    page = desk.client.get(location).text
    assert "电子社保卡已签发。" in page
    assert PASSWORD not in page
    assert _audited(desk.session, "ecard.issue") == 1


def test_issue_refusals_keep_the_other_inputs(desk: Desk) -> None:
    html = desk.post("issue", status=422, password=PASSWORD, password_again="739515", level="2")
    assert _invalid(html, "ecard-issue-password-again") == "两次输入的密码不一致"
    assert re.search(r'<option value="2" selected>', html)
    assert PASSWORD not in html  # passwords are never written back

    html = desk.post("issue", status=422, password="123456", password_again="123456", level="1")
    assert _invalid(html, "ecard-issue-password") == "密码过于简单，容易被猜到（连续数字）"
    assert re.search(r'<option value="1" selected>', html)

    html = desk.post("issue", status=422, password="112112", password_again="112112")
    assert _invalid(html, "ecard-issue-password") == (
        "密码过于简单，容易被猜到（不同数字太少、数字组重复）"
    )

    html = desk.post("issue", status=422, password="12a456", password_again="12a456")
    assert _invalid(html, "ecard-issue-password") == "密码必须是6位数字"

    html = desk.post("issue", status=409, password=PASSWORD, password_again=PASSWORD, level="2")
    assert "二级（支付）电子社保卡须先激活社保卡金融账户" in html
    assert re.search(r'<option value="2" selected>', html)
    assert desk.ecard() is None
    assert _audited(desk.session, "ecard.issue") == 0


def test_issue_twice_is_refused(desk: Desk) -> None:
    _issued(desk)
    # The form is no longer offered; a stale one posted again is refused readably.
    assert "/issue" not in desk.panel()
    html = desk.post("issue", status=409, password=NEW_PASSWORD, password_again=NEW_PASSWORD)
    assert "该社保卡已签发电子社保卡" in html
    assert service.verify_password(desk.session, desk.clerk.actor(), desk.resident.id, PASSWORD)


def test_issue_without_a_usable_card(client: TestClient, session: Session) -> None:
    desk = _desk(client, session, card=False)
    page = desk.panel()
    assert "/issue" not in page
    assert "电子社保卡须由已发放的社保卡签发" in page
    html = desk.post("issue", status=409, password=PASSWORD, password_again=PASSWORD)
    assert 'id="ecard-issue-password"' in html  # the form, with the reason above it
    assert "该居民没有可用于签发电子社保卡的社保卡" in html
    assert desk.ecard() is None


def test_level_2_at_issue_with_an_activated_bank_account(
    client: TestClient, session: Session
) -> None:
    desk = _desk(client, session, bank_activated=True)
    desk.post("issue", password=PASSWORD, password_again=PASSWORD, level="2")
    ecard = desk.ecard()
    assert ecard is not None
    assert ecard.level == ECardLevel.PAYMENT


def test_htmx_refusal_replaces_the_panel(desk: Desk) -> None:
    token = csrf_from(desk.panel())
    res = desk.client.post(
        f"{desk.base}/issue",
        data={"csrf_token": token, "password": "111111", "password_again": "111111"},
        headers=HTMX,
    )
    # 200, because htmx swaps only successful answers: the reason must replace the form.
    assert res.status_code == 200
    assert "<html" not in res.text
    assert "不同数字太少" in _invalid(res.text, "ecard-issue-password")
    ok = desk.client.post(
        f"{desk.base}/issue",
        data={"csrf_token": token, "password": PASSWORD, "password_again": PASSWORD},
        headers=HTMX,
    )
    # The redirect is followed by htmx with its header: the panel comes back as a fragment.
    assert ok.status_code == 200
    assert "<html" not in ok.text
    assert "电子社保卡已签发。" in ok.text


def test_forms_need_the_csrf_token(desk: Desk) -> None:
    res = desk.client.post(
        f"{desk.base}/issue", data={"password": PASSWORD, "password_again": PASSWORD}
    )
    assert res.status_code == 403
    assert desk.ecard() is None


# --- reset, upgrade, downgrade, revoke ---------------------------------------------------------


def test_reset_password_lifts_the_lockout(desk: Desk) -> None:
    _issued(desk)
    for _ in range(service.MAX_PASSWORD_FAILURES):
        with pytest.raises((EcardPasswordWrong, EcardLocked)):
            service.verify_password(desk.session, desk.clerk.actor(), desk.resident.id, "000001")
    desk.session.commit()

    html = desk.post("password", status=422, password=NEW_PASSWORD, password_again=NEW_PASSWORD)
    assert _invalid(html, "ecard-reset-checked") == "请核验持卡人本人身份后勾选确认"
    html = desk.post(
        "password",
        status=422,
        password="198506",
        password_again="198506",
        identity_checked="1",
    )
    assert "出生日期" in _invalid(html, "ecard-reset-password")
    assert re.search(r'<input[^>]*id="ecard-reset-checked"[^>]*checked', html)  # kept
    ecard = desk.ecard()
    assert ecard is not None
    assert ecard.locked_until is not None  # nothing changed

    location = desk.post(
        "password", password=NEW_PASSWORD, password_again=NEW_PASSWORD, identity_checked="1"
    )
    assert "密码已重置" in desk.client.get(location).text
    ecard = desk.ecard()
    assert ecard is not None
    assert ecard.locked_until is None
    assert ecard.failed_attempts == 0
    assert service.verify_password(desk.session, desk.clerk.actor(), desk.resident.id, NEW_PASSWORD)
    assert _audited(desk.session, "ecard.reset_password") == 1


def test_upgrade_needs_the_holders_password_and_an_activated_account(
    client: TestClient, session: Session
) -> None:
    plain = _desk(client, session)
    _issued(plain)
    html = plain.post("upgrade", status=409, password=PASSWORD)
    assert "二级（支付）电子社保卡须先激活社保卡金融账户" in html
    assert plain.ecard().level == ECardLevel.IDENTITY  # type: ignore[union-attr]


def test_upgrade_counts_wrong_passwords_then_downgrade(
    client: TestClient, session: Session
) -> None:
    desk = _desk(client, session, bank_activated=True)
    _issued(desk)
    assert "升级为二级" in desk.panel()
    html = desk.post("upgrade", status=403, password="000001")
    assert "密码错误，再输错 4 次将被锁定" in html
    ecard = desk.ecard()
    assert ecard is not None
    assert ecard.failed_attempts == 1  # the counted failure is kept although the form failed
    assert ecard.level == ECardLevel.IDENTITY
    assert _audited(desk.session, "ecard.upgrade_level", "failed") == 1

    location = desk.post("upgrade", password=PASSWORD)
    assert "电子社保卡已升级为二级" in desk.client.get(location).text
    ecard = desk.ecard()
    assert ecard is not None
    assert (ecard.level, ecard.failed_attempts) == (ECardLevel.PAYMENT, 0)
    page = desk.panel()
    assert "二级：支付结算" in page
    assert "/upgrade" not in page

    location = desk.post("downgrade")
    assert "电子社保卡已降为一级" in desk.client.get(location).text
    assert desk.ecard().level == ECardLevel.IDENTITY  # type: ignore[union-attr]


def test_upgrade_while_locked_says_until_when(client: TestClient, session: Session) -> None:
    desk = _desk(client, session, bank_activated=True)
    _issued(desk)
    for _ in range(service.MAX_PASSWORD_FAILURES - 1):
        desk.post("upgrade", status=403, password="000001")
    html = desk.post("upgrade", status=429, password="000001")
    assert "密码错误次数过多" in html
    html = desk.post("upgrade", status=429, password=PASSWORD)
    assert "电子社保卡密码已锁定" in html
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", html)  # local time, not ISO
    assert desk.ecard().level == ECardLevel.IDENTITY  # type: ignore[union-attr]


def test_revoke_needs_the_confirmation_and_can_be_issued_again(desk: Desk) -> None:
    _issued(desk)
    html = desk.post("revoke", status=422)
    assert _invalid(html, "ecard-revoke-confirm") == "请勾选确认注销"
    assert desk.ecard() is not None

    location = desk.post("revoke", confirm="1")
    assert "电子社保卡已注销。" in desk.client.get(location).text
    assert desk.ecard() is None
    page = desk.panel()
    assert "已注销" in page
    assert "持卡人本人申请注销" in page
    assert "/issue" in page  # the card is still usable: the e-card can be issued again
    assert _audited(desk.session, "ecard.revoke") == 1

    desk.post("issue", password=NEW_PASSWORD, password_again=NEW_PASSWORD)
    assert desk.ecard() is not None


def test_acting_on_a_missing_ecard_is_shown_on_the_panel(desk: Desk) -> None:
    html = desk.post("downgrade", status=404)
    assert "该居民没有在用的电子社保卡" in html
    assert 'id="ecard-issue-password"' in html  # the panel, not an error page


# --- who may act -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.LEADERSHIP])
def test_auditor_and_leadership_cannot_act(
    client: TestClient, session: Session, role: Role
) -> None:
    clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441602")
    resident = make_resident(session, region_code="441602")
    issued_card(session, clerk.actor(), resident.id)
    other = make_staff(session, role, region_code="441600")
    session.commit()
    sign_in(client, other)
    base = f"/staff/ecard/residents/{resident.id}"
    assert client.get(base).status_code == 403
    token = csrf_from(client.get("/staff/ecard/verify").text)
    for action, data in (
        ("issue", {"password": PASSWORD, "password_again": PASSWORD}),
        ("revoke", {"confirm": "1"}),
        ("downgrade", {}),
    ):
        res = client.post(f"{base}/{action}", data={"csrf_token": token, **data})
        assert res.status_code == 403, (action, res.text)
    assert repository.live_ecard_of(session, resident.id) is None
    assert _audited(session, "ecard.issue", "denied") == 1  # the refusal is kept
    res = client.post(
        "/staff/ecard/verify", data={"csrf_token": token, "code": "YKT1:X", "purpose": "identity"}
    )
    assert res.status_code == 403


def test_department_admin_sees_the_panel_without_actions(
    client: TestClient, session: Session
) -> None:
    clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441602")
    resident = make_resident(session, region_code="441602")
    issued_card(session, clerk.actor(), resident.id)
    service.issue_ecard(session, clerk.actor(), resident.id, PASSWORD)
    admin = make_staff(session, Role.DEPARTMENT_ADMIN, region_code="441600")
    session.commit()
    sign_in(client, admin)
    base = f"/staff/ecard/residents/{resident.id}"
    page = client.get(base).text
    assert "您的角色可以查看电子社保卡，但不能办理业务。" in page
    assert "/revoke" not in page
    res = client.post(f"{base}/revoke", data={"csrf_token": csrf_from(page), "confirm": "1"})
    assert res.status_code == 403
    session.expire_all()
    assert repository.live_ecard_of(session, resident.id) is not None


def test_another_county_is_out_of_reach(client: TestClient, session: Session) -> None:
    clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441602")
    resident = make_resident(session, region_code="441602")
    issued_card(session, clerk.actor(), resident.id)
    dongyuan = make_staff(session, Role.COUNTER_CLERK, region_code="441625")
    session.commit()
    sign_in(client, dongyuan)
    base = f"/staff/ecard/residents/{resident.id}"
    assert client.get(base).status_code == 404
    token = csrf_from(client.get("/staff/ecard/verify").text)
    res = client.post(
        f"{base}/issue",
        data={"csrf_token": token, "password": PASSWORD, "password_again": PASSWORD},
    )
    assert res.status_code == 404
    assert repository.live_ecard_of(session, resident.id) is None


# --- verifying a code at the desk --------------------------------------------------------------


def _code(desk: Desk, purpose: Purpose = Purpose.IDENTITY) -> str:
    code = service.issue_code(desk.session, desk.clerk.actor(), desk.resident.id, purpose)
    desk.session.commit()
    return code.text


def _verify(desk: Desk, code: str, purpose: str, *, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    page = desk.client.get("/staff/ecard/verify").text
    return desk.client.post(
        "/staff/ecard/verify",
        data={"csrf_token": csrf_from(page), "code": code, "purpose": purpose},
        headers=headers or {},
    )


def test_verify_a_code_once(desk: Desk) -> None:
    _issued(desk)
    page = desk.client.get("/staff/ecard/verify")
    assert page.status_code == 200
    assert 'href="/staff/ecard/verify"' in page.text  # in the console navigation
    code = _code(desk)
    res = _verify(desk, code, "identity")
    assert res.status_code == 200
    assert "二维码核验通过" in res.text
    assert "张*三" in res.text
    assert "广东省河源市源城区" in res.text
    assert "一级：身份凭证、信息查询" in res.text
    assert "有效期至" in res.text
    assert code not in res.text  # an accepted code leaves the form, ready for the next scan
    again = _verify(desk, code, "identity")
    assert again.status_code == 409
    assert "二维码核验通过" not in again.text
    assert "alert-danger" in again.text
    assert code in again.text  # a refused code stays in the form
    assert _audited(desk.session, "ecard.verify_code") == 1
    assert _audited(desk.session, "ecard.verify_code", "failed") == 1


def test_verify_refusals_are_readable(desk: Desk) -> None:
    _issued(desk)
    res = _verify(desk, _code(desk), "payment")
    assert res.status_code == 422
    assert "张*三" not in res.text
    malformed = _verify(desk, "not a code", "identity")
    assert malformed.status_code == 422
    assert "alert-danger" in malformed.text
    empty = _verify(desk, "  ", "identity")
    assert empty.status_code == 422
    assert _invalid(empty.text, "ecard-verify-code") == "请扫描或粘贴二维码内容"


def test_verify_under_htmx_swaps_a_fragment(desk: Desk) -> None:
    _issued(desk, ECardLevel.IDENTITY)
    code = _code(desk)
    cards.operate(
        desk.session,
        desk.clerk.actor(),
        desk.ecard().card_id,  # type: ignore[union-attr]
        Operation.REPORT_TEMPORARY_LOSS,
    )
    desk.session.commit()
    res = _verify(desk, code, "identity", headers=HTMX)
    assert res.status_code == 200
    assert res.text.lstrip().startswith('<div id="ecard-verify"')
    assert "alert-danger" in res.text
    assert "二维码核验通过" not in res.text
