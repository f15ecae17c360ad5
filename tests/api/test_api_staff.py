"""Staff API: login sets a secure session; CSRF on unsafe cookie-authenticated calls; scope."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import PASSWORD, login, make_resident, make_staff
from yikatong.kit.actor import Role


def test_login_sets_httponly_session_cookie(client: TestClient, session: Session) -> None:
    admin = make_staff(session, Role.PLATFORM_ADMIN)
    session.commit()
    res = client.post(
        "/api/v1/auth/login",
        json={"username": admin.username, "password": PASSWORD, "code": admin.code()},
    )
    assert res.status_code == 200, res.text
    cookie = next(h for h in res.headers.get_list("set-cookie") if h.startswith("yk_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    me = client.get("/api/v1/auth/me").json()
    assert me["username"] == admin.username
    assert "staff:manage" in me["permissions"]


def test_failed_login_is_kept_although_the_request_fails(
    client: TestClient, session: Session
) -> None:
    clerk = make_staff(session)
    session.commit()
    res = client.post(
        "/api/v1/auth/login",
        json={"username": clerk.username, "password": "wrong-pass-1", "code": "123456"},
    )
    assert res.status_code == 401
    assert res.json()["code"] == "login_failed"
    session.expire_all()
    assert clerk.member.failed_logins == 1


def test_unsafe_call_without_csrf_header_is_refused(client: TestClient, session: Session) -> None:
    admin = make_staff(session, Role.PLATFORM_ADMIN)
    session.commit()
    csrf = login(client, admin)
    body = {
        "username": "api.clerk",
        "display_name": "接口创建",
        "role": "counter_clerk",
        "region_code": "441602",
        "password": PASSWORD,
    }
    refused = client.post("/api/v1/staff", json=body)
    assert refused.status_code == 403
    assert refused.json()["code"] == "csrf_failed"
    created = client.post("/api/v1/staff", json=body, headers={"X-CSRF-Token": csrf})
    assert created.status_code == 201, created.text
    assert created.json()["staff"]["username"] == "api.clerk"
    assert created.json()["totp_uri"].startswith("otpauth://totp/")


def test_residents_api_is_masked_and_scoped(client: TestClient, session: Session) -> None:
    ours = make_resident(session, region_code="441625", name="陈小明")
    make_resident(session, region_code="441602", name="陈大明")
    clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441625")
    session.commit()
    csrf = login(client, clerk)
    res = client.get("/api/v1/residents", params={"name": "陈"})
    assert res.status_code == 200
    items = res.json()["items"]
    assert [i["id"] for i in items] == [ours.id]
    assert items[0]["name"] == "陈*明"
    assert items[0]["id_number"] == ours.id_number[:6] + "********" + ours.id_number[-4:]
    assert ours.id_number not in res.text
    revealed = client.post(
        f"/api/v1/residents/{ours.id}/reveal",
        params={"field": "id_number"},
        headers={"X-CSRF-Token": csrf},
    )
    assert revealed.status_code == 200
    assert revealed.json()["value"] == ours.id_number
