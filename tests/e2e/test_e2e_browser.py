"""The pages in a real browser: Debian's Chromium driven by Playwright against a live server.

What a person sees: the landing page in Chinese and English, and the staff console through its
real forms (password, then the authenticator code), htmx swaps and sign-out, for the platform
administrator, the auditor and a county clerk. Every page is screenshotted into the test's
``tmp_path`` and must show Chinese text, no error page, no HTTP error, no console error,
no uncaught exception, no failed request and no Content-Security-Policy violation.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from playwright.sync_api import Page, Response, expect

from tests.e2e.live import LiveServer
from yikatong.reference.idnumber import parse_id_number
from yikatong.residents.models import Resident

pytestmark = pytest.mark.browser

HAN = re.compile(r"[\u4e00-\u9fff]")
ID_NUMBER = re.compile(r"^\d{17}[\dX]$")
VIEWPORT = {"width": 1280, "height": 800}

# Records CSP violations, which the page itself cannot report when scripts are blocked.
CSP_PROBE = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""

# Decodes a PNG in a blank page and measures it: a blank or single-colour screenshot fails.
PNG_STATS = """
async (b64) => {
  const img = new Image();
  img.src = "data:image/png;base64," + b64;
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = img.width;
  canvas.height = img.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, img.width, img.height).data;
  const counts = new Map();
  let samples = 0;
  for (let i = 0; i < data.length; i += 4 * 5) {
    const key = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    counts.set(key, (counts.get(key) || 0) + 1);
    samples += 1;
  }
  let top = 0;
  for (const n of counts.values()) top = Math.max(top, n);
  return {width: img.width, height: img.height, colours: counts.size, dominant: top / samples};
}
"""


class Tab:
    """A page whose errors of every kind are collected, with checked screenshots."""

    def __init__(self, page: Page, inspector: Page, shots: Path, base_url: str) -> None:
        self.page = page
        self.inspector = inspector
        self.shots = shots
        self.base_url = base_url
        self.problems: list[str] = []
        self.documents: list[tuple[int, str]] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on(
            "requestfailed",
            lambda req: self.problems.append(f"failed: {req.method} {req.url} {req.failure}"),
        )
        page.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(f"console error: {message.text}")

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.problems.append(
                f"HTTP {response.status}: {response.request.method} {response.url}"
            )
        if response.request.resource_type == "document" and response.frame == self.page.main_frame:
            self.documents.append((response.status, response.url))

    def goto(self, path: str) -> Response:
        response = self.page.goto(self.base_url + path)
        assert response is not None
        return response

    def text(self) -> str:
        return self.page.inner_text("body")

    def snap(self, name: str, *, chinese: bool = True) -> Path:
        """Screenshot the page into tmp_path and check what a person would see."""
        page = self.page
        page.wait_for_load_state("load")
        path = self.shots / f"{name}.png"
        png = page.screenshot(path=str(path))
        stats = self.inspector.evaluate(PNG_STATS, base64.b64encode(png).decode())
        assert (stats["width"], stats["height"]) == (VIEWPORT["width"], VIEWPORT["height"]), stats
        assert stats["colours"] >= 16, f"{name} looks blank: {stats}"
        assert stats["dominant"] < 0.95, f"{name} is nearly one colour: {stats}"
        text = self.text()
        if chinese:
            assert len(HAN.findall(text)) >= 10, f"{name}: no Chinese text in {text[:200]!r}"
        assert page.locator(".error-page").count() == 0, f"{name} is an error page: {text[:300]}"
        assert self.documents, f"{name}: no page was loaded"
        status, url = self.documents[-1]
        assert status < 400, f"{name}: {url} answered {status}"
        violations = page.evaluate("window.__cspViolations || []")
        assert not violations, f"{name}: CSP violations {violations}"
        assert not self.problems, f"{name}: {self.problems}"
        return path


@pytest.fixture
def open_tab(chromium: Any, live_server: LiveServer, tmp_path: Path) -> Iterator[Any]:
    """``open_tab()`` -> a :class:`Tab` in a fresh browser context (no cookies)."""
    contexts = []
    inspector = chromium.new_page()

    def make() -> Tab:
        context = chromium.new_context(viewport=VIEWPORT, locale="zh-CN")
        context.set_default_timeout(10_000)
        context.add_init_script(CSP_PROBE)
        contexts.append(context)
        return Tab(context.new_page(), inspector, tmp_path, live_server.url)

    yield make
    for context in contexts:
        context.close()
    inspector.close()


def sign_in(tab: Tab, server: LiveServer, username: str) -> None:
    """Both steps of the staff login through the forms, as a person types them."""
    page = tab.page
    tab.goto("/staff/login")
    page.fill("#field-username", username)
    page.fill("#field-password", server.password)
    page.click("form[action='/staff/login'] button[type=submit]")
    page.wait_for_url(re.compile(r"/staff/login/code"))
    page.fill("#field-code", pyotp.TOTP(server.totp_secrets[username]).now())
    page.click("form[action='/staff/login/code'] button[type=submit]")
    page.wait_for_url(server.url + "/staff")


def nav_links(page: Page) -> list[str]:
    return [
        link.get_attribute("href") or "" for link in page.locator("#console-nav a.nav-link").all()
    ]


def test_landing_page_in_chinese_then_english(open_tab: Any) -> None:
    tab = open_tab()
    page = tab.page
    response = tab.goto("/")
    assert response.status == 200
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    text = tab.text()
    for words in ("社会保障卡", "一卡多用，全市通用", "12345"):
        assert words in text
    expect(page.locator("h1")).to_have_text("一卡多用，全市通用")
    tab.snap("landing-zh")

    page.click(".lang-switch a[hreflang='en']")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("One card for many uses, accepted across the city")
    assert "Social security card" in tab.text()
    assert "一卡多用" not in tab.text()
    tab.snap("landing-en", chinese=False)

    page.reload()  # the choice is a cookie, so it survives a reload
    expect(page.locator("html")).to_have_attribute("lang", "en")
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    assert cookies.get("yk_lang") == "en"

    page.click(".lang-switch a[hreflang='zh-CN']")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("h1")).to_have_text("一卡多用，全市通用")
    tab.snap("landing-zh-again")


def test_admin_signs_in_sees_accounts_and_signs_out(open_tab: Any, live_server: LiveServer) -> None:
    tab = open_tab()
    page = tab.page
    sign_in(tab, live_server, "admin")
    expect(page.locator(".console-user-name")).to_have_text("平台管理员")
    links = nav_links(page)
    assert {"/staff", "/staff/residents", "/staff/accounts"} <= set(links), links
    assert "/staff/audit" not in links  # the administrator is not an auditor
    expect(page.locator("#console-nav a[aria-current='page']")).to_have_attribute("href", "/staff")
    tab.snap("admin-workbench")

    page.click("#console-nav a[href='/staff/accounts']")
    page.wait_for_url(live_server.url + "/staff/accounts")
    expect(page.locator("h1")).to_have_text("工作人员账号")
    usernames = page.locator("table td.font-monospace").all_inner_texts()
    assert {"admin", "auditor", "clerk.dy", "clerk.yc"} <= set(usernames), usernames
    tab.snap("admin-accounts")

    page.click("form[action='/staff/logout'] button[type=submit]")
    page.wait_for_url(live_server.url + "/staff/login")
    tab.snap("admin-signed-out")
    tab.goto("/staff/accounts")  # the session is over: back to the login form
    page.wait_for_url(re.compile(r"/staff/login\?next="))
    expect(page.locator("#field-username")).to_be_visible()


def test_auditor_filters_the_trail_and_verifies_the_chain(
    open_tab: Any, live_server: LiveServer
) -> None:
    tab = open_tab()
    page = tab.page
    sign_in(tab, live_server, "auditor")
    assert "/staff/audit" in nav_links(page)
    page.click("#console-nav a[href='/staff/audit']")
    page.wait_for_url(live_server.url + "/staff/audit")
    expect(page.locator("h1")).to_have_text("审计记录")
    tab.snap("auditor-trail")

    # The filter swaps the results in place (htmx) and pushes the URL; no full reload.
    page.evaluate("window.__sameDocument = true")
    documents = len(tab.documents)
    page.fill("#f-action", "staff.login")
    with page.expect_response(
        lambda r: "/staff/audit?" in r.url and r.request.headers.get("hx-request") == "true"
    ) as swap:
        page.click(".audit-filters button[type=submit]")
    assert swap.value.status == 200
    page.wait_for_url(re.compile(r"action=staff\.login"))
    actions = page.locator("#audit-results tbody tr td:nth-child(4)")
    expect(actions.first).to_have_text(re.compile(r"^staff\.login"))
    assert all(a.startswith("staff.login") for a in actions.all_inner_texts())
    assert page.evaluate("window.__sameDocument") is True
    assert len(tab.documents) == documents
    tab.snap("auditor-filtered")

    page.click("form[hx-post='/staff/audit/verify'] button[type=submit]")
    alert = page.locator("#verify-result .alert-success")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("审计链完整")
    assert page.locator("#verify-result .alert-danger").count() == 0
    tab.snap("auditor-verified")


def test_clerk_finds_a_resident_and_reveals_the_id_number(
    open_tab: Any, live_server: LiveServer
) -> None:
    tab = open_tab()
    page = tab.page
    sign_in(tab, live_server, "clerk.dy")
    links = nav_links(page)
    assert "/staff/residents" in links
    assert "/staff/accounts" not in links
    assert "/staff/audit" not in links
    tab.snap("clerk-workbench")

    page.click("#console-nav a[href='/staff/residents']")
    page.wait_for_url(live_server.url + "/staff/residents")
    page.fill("#q", live_server.surname_dongyuan)
    with page.expect_response(
        lambda r: r.url.endswith("/staff/residents") and r.request.method == "POST"
    ) as search:
        page.click("form[role=search] button[type=submit]")
    assert search.value.status == 200
    rows = page.locator("#resident-results tbody tr")
    expect(rows.first).to_be_visible()
    names = page.locator("#resident-results tbody tr td:first-child").all_inner_texts()
    assert names
    assert all(n.startswith(live_server.surname_dongyuan) for n in names), names
    assert all("*" in n for n in names), names  # masked in the list
    masked_numbers = page.locator("#resident-results tbody tr td:nth-child(2)").all_inner_texts()
    assert all(n.startswith("441625") and "********" in n for n in masked_numbers)
    tab.snap("clerk-search")

    page.click("#resident-results tbody tr:first-child td:first-child a")
    page.wait_for_url(re.compile(r"/staff/residents/\d+$"))
    resident_id = int(page.url.rsplit("/", 1)[1])
    field = page.locator("#field-id_number")
    expect(field).to_contain_text("********")
    tab.snap("clerk-resident")

    field.locator("button[type=submit]").click()
    revealed = field.locator(".revealed-value")
    expect(revealed).to_have_text(ID_NUMBER)
    value = revealed.inner_text()
    assert len(value) == 18
    assert parse_id_number(value).region_code == "441625"
    with live_server.session() as session:
        resident = session.get(Resident, resident_id)
        assert resident is not None
        assert value == resident.id_number
    tab.snap("clerk-revealed")
