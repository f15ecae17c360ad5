"""RFC 9457 problem details on the API; readable pages for people; no internals on a 500."""

from __future__ import annotations

from fastapi.testclient import TestClient

from yikatong.errors import PROBLEM_TYPES


def test_unknown_api_path_is_a_problem(client: TestClient) -> None:
    res = client.get("/api/v1/no-such-thing")
    assert res.status_code == 404
    assert res.headers["content-type"] == "application/problem+json"
    body = res.json()
    assert body["code"] == "not_found"
    assert body["type"] == "/problems/not_found"
    assert body["status"] == 404
    assert body["request_id"] == res.headers["x-request-id"]


def test_validation_errors_name_the_field(client: TestClient) -> None:
    res = client.post("/api/v1/auth/login", json={"username": "x", "password": "y"})
    assert res.status_code == 422
    body = res.json()
    assert body["code"] == "validation_failed"
    assert {"field": "code", "message": "Field required"} in body["errors"]
    assert "code" in body["detail"]


def test_unauthenticated_api_call(client: TestClient) -> None:
    res = client.get("/api/v1/residents")
    assert res.status_code == 401
    assert res.json()["code"] == "authentication_required"


def test_domain_error_with_field(client: TestClient) -> None:
    res = client.post("/api/v1/reference/id-numbers/check", json={"id_number": "44160219900101123"})
    assert res.status_code == 422
    body = res.json()
    assert body["code"] == "invalid_id_number"
    assert body["errors"][0]["field"] == "id_number"


def test_every_problem_code_is_documented(client: TestClient) -> None:
    for code in ("not_found", "login_failed", "invalid_id_number", "validation_failed"):
        assert code in PROBLEM_TYPES
        res = client.get(f"/problems/{code}")
        assert res.status_code == 200
        assert code in res.text


def test_internal_error_leaks_nothing(app: object, session_factory: object) -> None:
    from fastapi import FastAPI

    assert isinstance(app, FastAPI)

    @app.get("/api/v1/_boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    try:
        app.state.session_factory = session_factory
        with TestClient(app, raise_server_exceptions=False) as c:
            res = c.get("/api/v1/_boom")
    finally:
        app.router.routes = [
            r for r in app.router.routes if getattr(r, "path", "") != "/api/v1/_boom"
        ]
    assert res.status_code == 500
    body = res.json()
    assert body["code"] == "internal_error"
    assert "hunter2" not in res.text
    assert "RuntimeError" not in res.text
    assert body["request_id"]


def test_health(client: TestClient) -> None:
    res = client.get("/api/v1/health")
    assert res.status_code == 200
    assert res.json()["status"] == "ok"
    assert res.headers["content-security-policy"].startswith("default-src 'self'")


def test_control_characters_are_refused_before_the_database(client: TestClient) -> None:
    for url in ("/api/v1/audit?action=%00", "/staff/residents?q=a%00b", "/api/v1/health?x=%1b"):
        res = client.get(url)
        assert res.status_code == 400, url
        assert "invalid_characters" in res.text


def test_database_data_errors_are_422_problems(client: TestClient) -> None:
    # A NUL inside JSON reaches the query: SQLite just finds no such user, PostgreSQL refuses
    # the value. Either way an answer about the input, never a 500.
    res = client.post(
        "/api/v1/auth/login", json={"username": "a\u0000b", "password": "x", "code": "123456"}
    )
    assert res.status_code in (401, 422), res.text
    if res.status_code == 422:
        assert res.json()["code"] == "invalid_data"
        assert "NUL" not in res.text


def test_refused_requests_still_carry_the_security_headers(client: TestClient) -> None:
    res = client.get("/api/v1/health?x=%00")
    assert res.status_code == 400
    assert res.json()["request_id"] == res.headers["x-request-id"]
    assert "content-security-policy" in res.headers
