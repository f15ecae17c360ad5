"""The pages in a real browser: scripts load, htmx sends the CSRF header, nothing leaves the site.

Chromium gets its responses from the in-process test app through Playwright's request
routing, so no server is started and any attempt to reach another host is caught. (Redirects
are not re-routed by Playwright, so the language switch is tested without a browser.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.browser

BASE = "http://testserver"


@pytest.fixture
def page(browser_path: str, client: TestClient) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=browser_path, args=["--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context()
        page = context.new_page()
        page.outside = []  # requests to any other host
        page.sent = []  # (url, headers) of every request to the app
        page.problems = []  # console errors and failed responses

        def serve(route: Any) -> None:
            request = route.request
            if not request.url.startswith(BASE + "/"):
                page.outside.append(request.url)
                route.abort()
                return
            page.sent.append((request.url, request.headers))
            client.cookies.clear()  # the browser's cookies are the ones that count
            response = client.request(
                request.method,
                request.url,
                headers={k: v for k, v in request.headers.items() if k != "host"},
                content=request.post_data_buffer,
                follow_redirects=False,
            )
            route.fulfill(
                status=response.status_code,
                headers=dict(response.headers),
                body=response.content,
            )

        page.route("**/*", serve)
        page.on(
            "console",
            lambda msg: page.problems.append(msg.text) if msg.type == "error" else None,
        )
        page.on(
            "response",
            lambda r: page.problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )
        yield page
        browser.close()


def test_landing_page_loads_everything_locally(page: Any) -> None:
    page.goto(BASE + "/", wait_until="networkidle")
    assert page.title() == "河源市社会保障卡居民服务“一卡通”"
    assert page.evaluate("typeof htmx") == "object"
    assert page.evaluate("typeof bootstrap") == "object"
    assert page.evaluate("htmx.config.allowEval") is False
    assert page.evaluate("htmx.config.historyCacheSize") == 0
    assert page.outside == []
    assert page.problems == []
    # The layout holds on a phone: nothing wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_htmx_requests_carry_the_csrf_token(page: Any) -> None:
    page.goto(BASE + "/_test/console/cards", wait_until="networkidle")
    page.evaluate("htmx.ajax('GET', '/_test/context/x', {target: '#flash-area'})")
    page.wait_for_function("document.querySelector('#flash-area').textContent.includes('locale=')")
    htmx_calls = [headers for url, headers in page.sent if url.endswith("/_test/context/x")]
    assert htmx_calls
    assert htmx_calls[0].get("x-csrf-token") == "tok-123"
    assert htmx_calls[0].get("hx-request") == "true"


def test_failed_htmx_request_is_reported_to_the_person(page: Any) -> None:
    page.goto(BASE + "/_test/console/cards", wait_until="networkidle")
    page.evaluate("htmx.ajax('GET', '/_test/missing/x', {target: '#flash-area'})")
    alert = page.locator("#flash-area .alert-danger")
    alert.wait_for()
    assert "操作未能完成" in alert.inner_text()
