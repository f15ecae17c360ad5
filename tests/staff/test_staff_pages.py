"""The staff console pages: login in two steps, CSRF, redirects, accounts."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import make_staff
from tests.pages import csrf_from, sign_in
from yikatong.kit.actor import Role


def test_console_requires_login_and_comes_back(client: TestClient) -> None:
    res = client.get("/staff/audit?page=2", follow_redirects=False)
    assert res.status_code == 303
    assert res.headers["location"] == "/staff/login?next=/staff/audit%3Fpage%3D2"


def test_two_step_login_through_the_forms(client: TestClient, session: Session) -> None:
    clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441625")
    session.commit()
    sign_in(client, clerk)
    home = client.get("/staff")
    assert home.status_code == 200
    assert "测试人员" in home.text  # display name
    assert 'href="/staff/residents"' in home.text  # the clerk's navigation
    assert 'href="/staff/audit"' not in home.text  # not an auditor


def test_wrong_password_shows_the_reason_in_chinese(client: TestClient, session: Session) -> None:
    clerk = make_staff(session)
    session.commit()
    page = client.get("/staff/login")
    res = client.post(
        "/staff/login",
        data={
            "csrf_token": csrf_from(page.text),
            "username": clerk.username,
            "password": "nope-123456",
        },
    )
    assert res.status_code == 401
    assert "用户名、密码或验证码错误" in res.text
    session.expire_all()
    assert clerk.member.failed_logins == 1


def test_form_without_csrf_token_is_refused(client: TestClient, session: Session) -> None:
    clerk = make_staff(session)
    session.commit()
    res = client.post("/staff/login", data={"username": clerk.username, "password": clerk.password})
    assert res.status_code == 403
    assert "csrf_failed" in res.text


def test_open_redirect_is_refused(client: TestClient, session: Session) -> None:
    clerk = make_staff(session)
    session.commit()
    sign_in(client, clerk, next_url="/staff")
    res = client.get("/staff/login?next=https://evil.example/", follow_redirects=False)
    assert res.headers["location"] == "/staff"


def test_admin_creates_an_account_and_sees_the_qr_once(
    client: TestClient, session: Session
) -> None:
    admin = make_staff(session, Role.PLATFORM_ADMIN)
    session.commit()
    sign_in(client, admin)
    page = client.get("/staff/accounts")
    assert page.status_code == 200
    form = {
        "csrf_token": csrf_from(page.text),
        "username": "page.clerk",
        "display_name": "页面创建",
        "role": "counter_clerk",
        "region_code": "441602",
        "department": "",
        "password": "short",
    }
    bad = client.post("/staff/accounts", data=form)
    assert bad.status_code == 422
    assert "is-invalid" in bad.text
    assert "alert-danger" in bad.text
    form["password"] = "Longer2026pass"
    ok = client.post("/staff/accounts", data=form)
    assert ok.status_code == 200
    assert "<svg" in ok.text
    assert "page.clerk" in ok.text
    again = client.get("/staff/accounts")
    assert "<svg" not in again.text.split("console-main", 1)[1].split("table", 1)[0]


def test_logout_ends_the_session(client: TestClient, session: Session) -> None:
    clerk = make_staff(session)
    session.commit()
    sign_in(client, clerk)
    home = client.get("/staff")
    res = client.post(
        "/staff/logout", data={"csrf_token": csrf_from(home.text)}, follow_redirects=False
    )
    assert res.status_code == 303
    assert client.get("/staff", follow_redirects=False).status_code == 303
