"""The landing page and the language switch."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from yikatong.web.i18n import LOCALE_COOKIE
from yikatong.web.pages import safe_local_path


def test_landing_page_speaks_chinese_by_default(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-language"] == "zh-CN"
    html = response.text
    assert '<html lang="zh-CN">' in html
    assert "社会保障卡" in html
    assert "一卡多用，全市通用" in html
    assert "电子社会保障卡" in html
    for phrase in ("立等可取", "出生一件事", "跨省通办", "12345", "扫码登录", "惠民惠农补贴"):
        assert phrase in html
    assert 'href="/staff/login"' in html
    assert "lorem" not in html.lower()


def test_switching_to_english_sets_a_cookie_and_goes_back(client: TestClient) -> None:
    response = client.get("/lang/en", params={"next": "/"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{LOCALE_COOKIE}=en;")
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    assert "Path=/" in cookie

    page = client.get("/")
    assert '<html lang="en">' in page.text
    assert page.headers["content-language"] == "en"
    assert "One card for many uses, accepted across the city" in page.text
    assert "一卡多用，全市通用" not in page.text
    assert 'lang="en" hreflang="en" aria-current="true">English</a>' in page.text

    client.get("/lang/zh_CN", params={"next": "/"})
    assert "一卡多用，全市通用" in client.get("/").text


def test_language_links_return_to_the_current_page(client: TestClient) -> None:
    html = client.get("/", params={"from": "a b"}).text
    assert 'href="/lang/en?next=%2F%3Ffrom%3Da%2Bb"' in html
    follow = client.get("/lang/en", params={"next": "/?from=a+b"}, follow_redirects=False)
    assert follow.headers["location"] == "/?from=a+b"


@pytest.mark.parametrize("locale", ["xx", "fr", "zh_TW", "en-GB"])
def test_unknown_languages_are_not_found(client: TestClient, locale: str) -> None:
    response = client.get(f"/lang/{locale}", follow_redirects=False)
    assert response.status_code == 404
    assert LOCALE_COOKIE not in response.headers.get("set-cookie", "")
    assert "不支持该语言" in response.text


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example",
        "https://evil.example/",
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/ok\r\nSet-Cookie: x=1",
        "",
    ],
)
def test_next_outside_the_site_is_not_followed(client: TestClient, target: str) -> None:
    response = client.get("/lang/en", params={"next": target}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ("/staff/cards?page=2#top", "/staff/cards?page=2#top"),
        ("/", "/"),
        (None, "/"),
        ("//evil.example/x", "/"),
        ("/\tevil", "/"),
        ("https://evil.example/x", "/"),
    ],
)
def test_safe_local_path(candidate: str | None, expected: str) -> None:
    assert safe_local_path(candidate) == expected


def test_a_junk_language_cookie_falls_back_to_chinese(client: TestClient) -> None:
    client.cookies.set(LOCALE_COOKIE, "klingon")
    assert '<html lang="zh-CN">' in client.get("/").text
