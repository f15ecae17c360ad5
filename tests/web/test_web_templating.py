"""render(): the context every template gets, the layouts, macros and the error page."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from yikatong import __version__
from yikatong.web.i18n import lazy_gettext
from yikatong.web.navigation import NavItem, register_nav, unregister_nav
from yikatong.web.templating import TEMPLATES_DIR, render, static_url, templates


def context_of(client: TestClient, path: str, **kwargs: Any) -> dict[str, str]:
    response = client.get(path, **kwargs)
    assert response.status_code == 200
    return dict(line.split("=", 1) for line in response.text.splitlines() if "=" in line)


@pytest.fixture
def console_items() -> Iterator[None]:
    made = [
        NavItem("t-home", lazy_gettext("Staff sign-in"), "/_test/context/staff", order=-100),
        NavItem("t-cards", "Cards", "/_test/context/staff/cards", permission="card.read"),
        NavItem("t-keys", "Keys", "/_test/context/staff/keys", permission="keys.manage"),
    ]
    for item in made:
        register_nav(item)
    yield
    for item in made:
        unregister_nav(item.key)


def test_every_template_compiles() -> None:
    names = [p.relative_to(TEMPLATES_DIR).as_posix() for p in TEMPLATES_DIR.rglob("*.html")]
    assert "base.html" in names
    for name in names:
        templates.env.get_template(name)


def test_context_for_an_anonymous_visitor(client: TestClient) -> None:
    ctx = context_of(client, "/_test/context/somewhere")
    assert ctx["locale"] == "zh_CN"
    assert ctx["html_lang"] == "zh-CN"
    assert ctx["is_htmx"] == "False"
    assert ctx["current_path"] == "/_test/context/somewhere"
    assert ctx["app_version"] == __version__
    assert ctx["csrf_token"] == ""
    assert ctx["principal"] == ""
    assert ctx["nav"] == ""
    assert ctx["active_nav"] == "None"
    assert ctx["title"] == "河源市社会保障卡居民服务“一卡通”"
    assert ctx["fen"] == "-¥0.05"


def test_context_for_staff_with_navigation(client: TestClient, console_items: None) -> None:
    ctx = context_of(client, "/_test/context/staff/cards/42", params={"staff": "true"})
    assert ctx["principal"] == "chenxm"
    assert ctx["csrf_token"] == "tok-ctx"
    nav = ctx["nav"].split(",")
    assert "t-home" in nav
    assert "t-cards" in nav
    assert "t-keys" not in nav  # the clerk lacks keys.manage
    assert ctx["active_nav"] == "t-cards"
    assert "工作人员登录" in ctx["nav_labels"]  # lazy label, translated per request

    client.get("/lang/en")
    ctx = context_of(client, "/_test/context/staff", params={"staff": "true"})
    assert ctx["locale"] == "en"
    assert ctx["active_nav"] == "t-home"
    assert "Staff sign-in" in ctx["nav_labels"]


@pytest.mark.parametrize(
    ("headers", "partial"),
    [
        ({"HX-Request": "true"}, True),
        ({"HX-Request": "true", "HX-Boosted": "true"}, False),
        ({"HX-Request": "true", "HX-History-Restore-Request": "true"}, False),
        ({}, False),
    ],
)
def test_is_htmx_only_for_partial_swaps(
    client: TestClient, headers: dict[str, str], partial: bool
) -> None:
    assert context_of(client, "/_test/context/x", headers=headers)["is_htmx"] == str(partial)


def test_responses_name_their_language_and_vary(client: TestClient) -> None:
    response = client.get("/")
    assert response.headers["content-language"] == "zh-CN"
    assert "HX-Request" in response.headers["vary"]
    assert "Cookie" in response.headers["vary"]


def test_translated_text_is_escaped(client: TestClient) -> None:
    response = client.get(
        "/_test/context/x", params={"message": "<b>Hi {name}</b>", "name": "<i>x</i>"}
    )
    assert "message=&lt;b&gt;Hi &lt;i&gt;x&lt;/i&gt;&lt;/b&gt;" in response.text


def test_public_layout(client: TestClient) -> None:
    html = client.get("/").text
    assert '<meta name="csrf-token" content="">' in html
    assert 'name="htmx-config"' in html
    assert f'src="/static/js/app.js?v={__version__}"' in html
    assert 'class="skip-link' in html
    assert 'id="main"' in html
    assert "河源市人力资源和社会保障局" in html
    assert f"版本 {__version__}" in html
    assert "<script>" not in html  # no inline scripts: a strict CSP stays possible
    assert "style=" not in html


def test_console_layout(client: TestClient) -> None:
    html = client.get("/_test/console/cards").text
    assert '<meta name="csrf-token" content="tok-123">' in html
    assert 'action="/staff/logout"' in html
    assert '<input type="hidden" name="csrf_token" value="tok-123">' in html
    assert "陈晓明" in html
    assert "经办人员 · 源城区" in html
    assert 'class="breadcrumb"' in html
    assert "已保存" in html
    assert "¥1,234.56" in html
    assert "2024-01-03 00:30" in html
    assert 'aria-current="page">3<' in html  # pagination
    assert 'href="/staff/cards?page=12"' in html
    assert "text-bg-success" in html


def test_console_layout_without_a_principal(client: TestClient) -> None:
    html = client.get("/_test/console/cards", params={"anonymous": "true"}).text
    assert "/staff/logout" not in html
    assert "console-sidebar" not in html


def test_form_field_macro(client: TestClient) -> None:
    html = client.get("/_test/form").text
    assert '<input type="hidden" name="csrf_token" value="tok-form">' in html
    assert 'value="&lt;b&gt;"' in html
    assert 'aria-describedby="field-id_number-help field-id_number-error"' in html
    assert 'aria-invalid="true"' in html
    assert "is-invalid" in html
    assert 'maxlength="18"' in html
    assert 'autocomplete="off"' in html
    assert "required" in html
    assert "secret" not in html  # passwords are never echoed
    assert '<option value="441625" selected>' in html


def test_error_page_for_invalid_input(client: TestClient) -> None:
    response = client.get("/_test/boom")
    assert response.status_code == 422
    html = response.text
    assert "身份证号校验位不正确" in html
    assert "invalid_input" in html
    assert "req-test-1" in html
    assert "请更正以下信息后重试" in html
    assert 'href="/"' in html


def test_error_page_escapes_what_the_visitor_typed(client: TestClient) -> None:
    response = client.get("/_test/missing/<img src=x onerror=alert(1)>")
    assert response.status_code == 404
    assert "<img src=x" not in response.text
    assert "No card &lt;img src=x onerror=alert(1)&gt;" in response.text


def _request(locale: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/x",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"cookie", f"yk_lang={locale}".encode())],
            "scheme": "http",
            "server": ("testserver", 80),
        }
    )


def test_concurrent_renders_keep_their_own_language() -> None:
    expected = {"zh_CN": "title=河源市社会保障卡居民服务“一卡通”", "en": "title=Heyuan Social"}

    def one(i: int) -> tuple[str, str]:
        locale = "zh_CN" if i % 2 else "en"
        body = render(_request(locale), "_test/context.html", {"message": "", "params": {}}).body
        return locale, bytes(body).decode()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(200)))
    for locale, body in results:
        assert expected[locale] in body
        assert f"locale={locale}" in body


def test_static_url() -> None:
    assert static_url("css/app.css") == f"/static/css/app.css?v={__version__}"
    assert static_url("vendor/htmx/2.0.11/htmx.min.js") == "/static/vendor/htmx/2.0.11/htmx.min.js"
