"""Helpers for driving the HTML pages like a browser would (forms with CSRF tokens)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.factories import StaffLogin

_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def csrf_from(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "page has no CSRF field"
    return match.group(1)


def sign_in(client: TestClient, who: StaffLogin, next_url: str = "/staff") -> None:
    """Both login steps through the forms; leaves the client on a signed-in session."""
    page = client.get("/staff/login")
    res = client.post(
        "/staff/login",
        data={
            "csrf_token": csrf_from(page.text),
            "username": who.username,
            "password": who.password,
            "next": next_url,
        },
        follow_redirects=False,
    )
    assert res.status_code == 303, res.text
    page = client.get(res.headers["location"])
    res = client.post(
        "/staff/login/code",
        data={"csrf_token": csrf_from(page.text), "code": who.code(), "next": next_url},
        follow_redirects=False,
    )
    assert res.status_code == 303, res.text
    assert res.headers["location"] == next_url
