"""The counter workbench in a real browser at 1280 px: a clerk signs in with password and
authenticator code, finds a resident by ID number, takes an application, moves it to ready,
hands over the card (the receipt is a PDF), is stopped by the confirmation box of an
irreversible operation, issues the e-card on the card file's panel, and watches it follow a
temporary loss and its withdrawal. A second clerk issues a card while the resident waits
(立等可取) and takes an application handled by a proxy (代办)."""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import exists, select

from tests.e2e.live import LiveServer
from yikatong.cards.banks import COOPERATING_BANKS, demo_account_number
from yikatong.cards.models import Card, CardApplication, CardState
from yikatong.ecard.models import ECard, ECardStatus
from yikatong.reference.idnumber import make_id_number
from yikatong.residents.models import Resident

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}
ECARD_PASSWORD = "582947"


class Counter:
    """A signed-in clerk's tab; collects script errors, failed requests and server errors."""

    def __init__(self, page: Page, server: LiveServer) -> None:
        self.page = page
        self.server = server
        self.problems: list[str] = []
        self.refusals: list[int] = []
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda m: self.problems.append(f"console: {m.text}") if m.type == "error" else None,
        )
        page.on(
            "requestfailed",
            lambda r: self.problems.append(f"failed: {r.method} {r.url} {r.failure}"),
        )
        page.on(
            "response",
            lambda r: (
                self.problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 500 else None
            ),
        )

    def sign_in(self, username: str) -> None:
        page = self.page
        page.goto(self.server.url + "/staff/login")
        page.fill("#field-username", username)
        page.fill("#field-password", self.server.password)
        page.click("form[action='/staff/login'] button[type=submit]")
        page.wait_for_url(re.compile(r"/staff/login/code"))
        page.fill("#field-code", pyotp.TOTP(self.server.totp_secrets[username]).now())
        page.click("form[action='/staff/login/code'] button[type=submit]")
        page.wait_for_url(self.server.url + "/staff")

    def open_card_file(self, resident: Resident) -> None:
        """Search by ID number (posted, never in a URL), open the resident, then the card file."""
        page = self.page
        page.click("#console-nav a[href='/staff/residents']")
        page.wait_for_url(self.server.url + "/staff/residents")
        page.fill("#q", resident.id_number)
        page.click("form[role=search] button[type=submit]")
        rows = page.locator("#resident-results tbody tr")
        expect(rows).to_have_count(1)
        assert resident.id_number not in page.url
        rows.first.locator("td:first-child a").click()
        page.wait_for_url(self.server.url + f"/staff/residents/{resident.id}")
        page.click(f"a[href='/staff/cards/residents/{resident.id}']")
        page.wait_for_url(self.server.url + f"/staff/cards/residents/{resident.id}")
        expect(page.locator("h1")).to_contain_text("卡务档案")

    def submit(self, form: str) -> None:
        """Submit a full-page form and wait for the page that answers it."""
        with self.page.expect_navigation():
            self.page.click(f"{form} button[type=submit]")

    def submit_refused(self, form: str, status: int) -> None:
        """Submit a form the server must refuse with ``status``, showing the page again."""
        with self.page.expect_navigation() as answer:
            self.page.click(f"{form} button[type=submit]")
        assert answer.value is not None
        assert answer.value.status == status
        self.refusals.append(status)

    def unexpected_problems(self) -> list[str]:
        """The problems, less the console line Chromium logs for each expected refusal."""
        left = list(self.problems)
        for status in self.refusals:
            line = (
                f"console: Failed to load resource: the server responded with a status of {status}"
            )
            match = next((p for p in left if p.startswith(line)), None)
            if match is not None:
                left.remove(match)
        return left

    def ecard_panel(self) -> Any:
        panel = self.page.locator("section#ecard")
        expect(panel).to_be_visible()
        return panel


@pytest.fixture
def counter(chromium: Any, live_server: LiveServer) -> Iterator[Counter]:
    context = chromium.new_context(viewport=DESKTOP, locale="zh-CN")
    context.set_default_timeout(10_000)
    tab = Counter(context.new_page(), live_server)
    yield tab
    context.close()


def _residents_without_card(server: LiveServer, region_code: str, count: int) -> list[Resident]:
    """Active adults of ``region_code`` who never applied for a card."""
    with server.session() as session:
        found = session.scalars(
            select(Resident)
            .where(
                Resident.region_code == region_code,
                Resident.status == "active",
                Resident.birth_date < dt.date(2006, 1, 1),
                ~exists().where(CardApplication.resident_id == Resident.id),
            )
            .order_by(Resident.id)
            .limit(count)
        ).all()
    assert len(found) == count, f"not enough residents of {region_code} without a card"
    return list(found)


def _live_card(server: LiveServer, resident_id: int) -> Card:
    with server.session() as session:
        card = session.scalars(
            select(Card).where(Card.resident_id == resident_id).order_by(Card.id.desc())
        ).first()
        assert card is not None
        return card


def _account(seed: int) -> tuple[str, str]:
    bank = COOPERATING_BANKS[1]
    return bank.code, demo_account_number(bank, random.Random(seed))


def test_clerk_takes_a_resident_from_application_to_ecard(
    counter: Counter, live_server: LiveServer, tmp_path: Path
) -> None:
    page = counter.page
    (resident,) = _residents_without_card(live_server, "441625", 1)
    counter.sign_in("clerk.dy")
    counter.open_card_file(resident)
    base = f"/staff/cards/residents/{resident.id}"

    # The application at the counter, then its steps to ready.
    page.select_option("#field-channel", "counter")
    counter.submit(f"form[action='{base}/applications']")
    steps = page.locator("form[action^='/staff/cards/applications/'][action$='/steps']")
    expect(steps).to_have_count(1)
    for step in ("checked", "in_production", "ready"):
        steps.locator("select[name=to]").select_option(step)
        counter.submit("form[action^='/staff/cards/applications/'][action$='/steps']")
    card = _live_card(live_server, resident.id)
    assert card.state == CardState.READY

    # Hand over the card with the bank details.
    bank_code, account = _account(resident.id)
    page.select_option("#issue-bank", bank_code)
    page.fill("#issue-account", account)
    counter.submit(f"form[action='/staff/cards/{card.id}/issue']")
    assert _live_card(live_server, resident.id).state == CardState.ISSUED
    body = page.inner_text("main")
    assert card.card_number in body
    assert account not in body  # the account number is masked on screen
    assert account[-4:] in body

    # The receipt, where the card file offers one, is a PDF.
    receipt = page.locator("main a", has_text="打印回执")
    if receipt.count():
        href = receipt.first.get_attribute("href")
        assert href is not None
        answer = page.request.get(live_server.url + href)
        assert answer.status == 200
        assert answer.body().startswith(b"%PDF")

    # An irreversible operation without the confirmation box: refused, readably, nothing done.
    operations = f"form[action='/staff/cards/{card.id}/operations']"
    page.select_option("#field-operation", "report_formal_loss")
    page.fill("#field-reason", "被盗")
    counter.submit_refused(operations, 422)
    alert = page.locator("main .alert-danger").first
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("输入信息有误")
    expect(page.locator("#field-confirm")).to_have_class(re.compile(r"\bis-invalid\b"))
    assert page.locator("#field-confirm-error").inner_text().strip()
    assert _live_card(live_server, resident.id).state == CardState.ISSUED

    # The e-card, issued on the card file's panel (htmx: the card file stays on screen).
    page.goto(live_server.url + base)
    panel = counter.ecard_panel()
    expect(panel).to_contain_text("尚未签发电子社保卡")
    password = panel.locator("#ecard-issue-password")
    assert password.get_attribute("type") == "password"
    assert password.get_attribute("inputmode") == "numeric"
    assert password.get_attribute("autocomplete") == "off"
    password.fill(ECARD_PASSWORD)
    panel.locator("#ecard-issue-password-again").fill("582948")
    panel.locator("form[action$='/issue'] button[type=submit]").click()
    expect(page.locator("#ecard-issue-password-again-error")).to_have_text("两次输入的密码不一致")
    assert page.url.endswith(base)  # refused in place
    page.locator("#ecard-issue-password").fill(ECARD_PASSWORD)
    page.locator("#ecard-issue-password-again").fill(ECARD_PASSWORD)
    page.locator("section#ecard form[action$='/issue'] button[type=submit]").click()
    expect(page.locator("section#ecard")).to_contain_text("电子社保卡已签发。")
    expect(page.locator("#ecard-status")).to_have_text("正常")
    assert page.url.endswith(base)
    with live_server.session() as session:
        ecard = session.scalars(select(ECard).where(ECard.resident_id == resident.id)).one()
        assert ecard.status == ECardStatus.ACTIVE

    # A temporary loss suspends the e-card at once; withdrawing the loss brings it back.
    page.select_option("#field-operation", "report_temporary_loss")
    counter.submit(operations)
    assert _live_card(live_server, resident.id).state == CardState.TEMPORARY_LOSS
    counter.ecard_panel()
    expect(page.locator("#ecard-status")).to_have_text("暂停使用")
    expect(page.locator("#ecard-reason")).to_have_text("社保卡临时挂失")
    page.select_option("#field-operation", "cancel_temporary_loss")
    counter.submit(operations)
    assert _live_card(live_server, resident.id).state == CardState.ISSUED
    counter.ecard_panel()
    expect(page.locator("#ecard-status")).to_have_text("正常")

    # The card file at desktop width: everything fits, nothing scrolls sideways.
    page.wait_for_load_state("networkidle")
    shot = tmp_path / "card-file-1280.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
    assert not counter.unexpected_problems(), counter.problems


def test_instant_issue_and_a_proxy_application(counter: Counter, live_server: LiveServer) -> None:
    page = counter.page
    waiting, absent = _residents_without_card(live_server, "441602", 2)
    counter.sign_in("clerk.yc")

    # 立等可取: the card is made and handed over while the resident waits.
    counter.open_card_file(waiting)
    bank_code, account = _account(waiting.id)
    page.select_option("#instant-bank", bank_code)
    page.fill("#instant-account", account)
    page.fill("#instant-outlet", "源城区社保服务大厅")
    counter.submit(f"form[action='/staff/cards/residents/{waiting.id}/instant']")
    card = _live_card(live_server, waiting.id)
    assert card.state == CardState.ISSUED
    main = page.locator("main")
    expect(main).to_contain_text(card.card_number)
    expect(main).to_contain_text("立等可取")
    with live_server.session() as session:
        application = session.scalars(
            select(CardApplication).where(CardApplication.resident_id == waiting.id)
        ).one()
        assert (application.channel, application.status) == ("instant", "issued")

    # 代办: a relative applies for a resident who cannot come. The resident cannot be their
    # own proxy: refused on the form, nothing recorded; then the relative is accepted.
    counter.open_card_file(absent)
    form = f"form[action='/staff/cards/residents/{absent.id}/applications']"
    page.select_option("#field-channel", "counter")
    page.click(f"{form} details summary")
    page.fill("#apply-proxy-name", "李秀英")
    page.fill("#apply-proxy-id", absent.id_number)
    page.fill("#apply-proxy-rel", "子女")
    counter.submit_refused(form, 422)
    expect(page.locator("main .alert-danger").first).to_be_visible()
    with live_server.session() as session:
        assert not session.scalars(
            select(CardApplication).where(CardApplication.resident_id == absent.id)
        ).all()

    relative = make_id_number("441602", dt.date(1960, 3, 1), 37)
    page.select_option("#field-channel", "counter")
    details = page.locator(f"{form} details")
    if details.get_attribute("open") is None:
        page.click(f"{form} details summary")
    page.fill("#apply-proxy-name", "李秀英")
    page.fill("#apply-proxy-id", relative)
    page.fill("#apply-proxy-rel", "子女")
    counter.submit(form)
    expect(page.locator("main")).to_contain_text("李秀英 (子女)")
    assert relative not in page.inner_text("body")  # the proxy's ID number is not shown
    with live_server.session() as session:
        application = session.scalars(
            select(CardApplication).where(CardApplication.resident_id == absent.id)
        ).one()
        assert (application.proxy_name, application.proxy_id_number) == ("李秀英", relative)
        assert application.proxy_relation == "子女"
    assert not counter.unexpected_problems(), counter.problems
