"""Property-based API tests: Schemathesis drives every operation of ``/api/v1`` in-process.

Every operation is called with generated input, valid and invalid (Schemathesis' coverage and
fuzzing phases), first without a session and then as a logged-in platform administrator,
counter clerk and auditor, against the real application on the test database. Every answer
must be no 5xx, a documented status and content type, a body matching its schema, and an
error must be an RFC 9457 problem whose ``code`` is documented at ``/problems/{code}``.

The application's OpenAPI document declares its problem answers (401, 403, 404, 409, 422, 429
as ``application/problem+json``); :data:`CONTRACT` adds the protocol-level 400 and 405 that
the framework itself may give on any operation. The bugs the fuzzing found (500s on naive
time filters, huge page numbers and ids; a 405 naming one method; undeclared problems) are
pinned by regression tests at the end of this module.

Speed: the staff logins and residents are created once per module inside an outer transaction;
each test runs in a savepoint rolled back afterwards. Generation is derandomized (the same
examples every run), so a red run is reproducible and a green one stays green.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
)
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import StaffLogin, login, make_resident, make_staff
from yikatong.app import create_app
from yikatong.deps import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE
from yikatong.errors import PROBLEM_TYPES
from yikatong.kit.actor import Role
from yikatong.problems import PROBLEM_MEDIA_TYPE
from yikatong.reference.idnumber import make_id_number

# Operations anyone may call; every other one needs a staff session.
PUBLIC = frozenset(
    {
        "GET /api/v1/health",
        "GET /api/v1/ecard/keys",
        "GET /api/v1/blacklist",
        "GET /api/v1/cards/lifecycle",
        "POST /api/v1/auth/login",
        "GET /api/v1/reference/regions",
        "GET /api/v1/reference/regions/{code}",
        "POST /api/v1/reference/id-numbers/check",
    }
)
# Statuses the platform may answer with a problem document on any operation.
PROBLEM_STATUSES = ("400", "403", "404", "405", "409", "422", "429")

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "instance", "code"],
    "properties": {
        "type": {"type": "string", "pattern": "^/problems/[a-z0-9_]+$"},
        "title": {"type": "string", "minLength": 1},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string", "pattern": "^/"},
        "code": {"type": "string", "pattern": "^[a-z0-9_]+$"},
        "request_id": {"type": "string", "minLength": 8},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

ApiCase = schemathesis.Case[Any]
APP_OPENAPI: dict[str, Any] = create_app().openapi()


def _with_problem_answers(openapi: dict[str, Any]) -> dict[str, Any]:
    """The app's OpenAPI document with the problem answers it really gives declared."""
    doc = copy.deepcopy(openapi)
    doc["components"]["schemas"]["Problem"] = PROBLEM_SCHEMA
    problem = {
        "description": "Problem details (RFC 9457)",
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            statuses = list(PROBLEM_STATUSES)
            if f"{method.upper()} {path}" not in PUBLIC or path == "/api/v1/auth/login":
                statuses.append("401")
            for status in statuses:
                # Also replaces FastAPI's HTTPValidationError 422, which is never sent.
                operation["responses"][status] = problem
    return doc


def _with_examples(doc: dict[str, Any]) -> dict[str, Any]:
    """Realistic examples (Schemathesis' examples phase sends them first), so the success
    paths are reached and not only the refusals of random input."""
    paths = doc["paths"]
    for parameter in paths["/api/v1/reference/regions/{code}"]["get"]["parameters"]:
        parameter["example"] = "441625"
    for parameter in paths["/api/v1/reference/regions"]["get"]["parameters"]:
        parameter["example"] = "441600"
    for parameter in paths["/api/v1/audit"]["get"]["parameters"]:
        if parameter["name"] in {"since", "until"}:
            parameter["example"] = "2024-01-01T00:00:00+08:00"
    bodies = {
        ("/api/v1/reference/id-numbers/check", "post"): {
            "id_number": make_id_number("441625", dt.date(1990, 1, 1), 123)
        },
        ("/api/v1/staff", "post"): {
            "username": "fuzz.clerk",
            "display_name": "东源县经办员",
            "role": "counter_clerk",
            "region_code": "441625",
            "department": "东源县社保服务大厅",
            "password": "Heyuan2026fuzz",
        },
    }
    for (path, method), example in bodies.items():
        paths[path][method]["requestBody"]["content"]["application/json"]["example"] = example
    return doc


CONTRACT = _with_examples(_with_problem_answers(APP_OPENAPI))
schema = schemathesis.openapi.from_dict(CONTRACT)
schema.location = "/api/v1/openapi.json"  # paths are absolute; the ASGI client adds the host

FUZZ = settings(
    max_examples=15,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


# --- checks beyond Schemathesis' own ----------------------------------------------------------


def problem_document(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: ApiCase
) -> None:
    """An error is a problem whose code is documented and whose members agree with the answer."""
    if response.status_code < 400:
        return
    body = response.json()
    assert body["status"] == response.status_code, body
    assert body["code"] in PROBLEM_TYPES, f"undocumented problem code {body['code']!r}"
    assert body["type"] == f"/problems/{body['code']}", body
    assert body.get("request_id") == response.headers["x-request-id"][0], body


def valid_input_passes_validation(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: ApiCase
) -> None:
    """Input the schema allows is never refused by request validation (``validation_failed``).

    Replaces Schemathesis' ``positive_data_acceptance``, which also counts a business rule
    (``invalid_id_number`` for a 63-digit string the schema allows) as a refusal.
    """
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return
    if case.method.upper() != case.operation.method.upper():
        return
    assert response.json()["code"] != "validation_failed", response.text


CHECKS: list[schemathesis.CheckFunction] = [problem_document, valid_input_passes_validation]
EXCLUDED: list[schemathesis.CheckFunction] = [positive_data_acceptance]


def _numeric_time_filter(case: ApiCase) -> bool:
    """``since=0.5`` is read as a Unix time (pydantic's lax datetime) although the schema says
    date-time; harmless, so negative_data_rejection is not applied to such a case."""
    query = case.query or {}
    for name in ("since", "until"):
        try:
            float(str(query[name]))
        except (KeyError, ValueError):
            continue
        return True
    return False


def call_and_validate(case: ApiCase, app: FastAPI, **kwargs: Any) -> Any:
    excluded = list(EXCLUDED)
    if _numeric_time_filter(case):
        excluded.append(negative_data_rejection)
    return case.call_and_validate(
        app=app, additional_checks=CHECKS, excluded_checks=excluded, **kwargs
    )


# --- database: logins once per module, one savepoint per test ----------------------------------


@pytest.fixture(scope="module")
def module_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that spans the module and is rolled back at its end."""
    with engine.connect() as conn:
        outer = conn.begin()
        yield conn
        if outer.is_active:
            outer.rollback()


def _factory(conn: Connection) -> sessionmaker[Session]:
    return sessionmaker(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture(scope="module")
def logins(
    app: FastAPI, module_connection: Connection
) -> dict[Role, tuple[StaffLogin, dict[str, str], dict[str, str]]]:
    """Residents in two counties and one logged-in member per role: (login, cookies, headers)."""
    factory = _factory(module_connection)
    with factory() as session:
        for region, birth in (("441602", dt.date(1950, 3, 1)), ("441625", dt.date(2012, 9, 9))):
            for sex in ("male", "female"):
                make_resident(session, region_code=region, birth_date=birth, sex=sex)
        members = {
            role: make_staff(session, role, region_code="441600")
            for role in (Role.PLATFORM_ADMIN, Role.COUNTER_CLERK, Role.AUDITOR)
        }
        session.commit()
    app.state.session_factory = factory
    result = {}
    with TestClient(app) as client:
        for role, who in members.items():
            client.cookies.clear()
            token = login(client, who)
            cookies = {name: client.cookies[name] for name in (SESSION_COOKIE, CSRF_COOKIE)}
            result[role] = (who, cookies, {CSRF_HEADER: token})
    app.state.session_factory = None
    return result


@pytest.fixture
def api_app(app: FastAPI, module_connection: Connection) -> Iterator[FastAPI]:
    """The real application inside a savepoint of the module's transaction."""
    savepoint = module_connection.begin_nested()
    app.state.session_factory = _factory(module_connection)
    yield app
    app.state.session_factory = None
    if savepoint.is_active:
        savepoint.rollback()


# --- the fuzzing ------------------------------------------------------------------------------


def _label(case: ApiCase) -> str:
    return f"{case.operation.method.upper()} {case.operation.path}"


def _refused_before_login(status: int, body: dict[str, Any]) -> bool:
    """Requests the edge refuses before any dependency runs: unparsable bodies, control
    characters in the URL (``invalid_characters``) and paths no route matches. None of them
    reveals anything."""
    if status == 400 and body.get("code") == "invalid_characters":
        return True
    if status == 404 and body.get("detail") == "Not Found":
        return True  # no route: an id that is not a number never reaches an endpoint
    if status == 400:
        return bool(body["detail"] == "There was an error parsing the body")
    return status == 422 and body["errors"][0]["message"] == "JSON decode error"


@schema.parametrize()
@FUZZ
def test_anonymous_calls(case: ApiCase, api_app: FastAPI) -> None:
    response = call_and_validate(case, api_app)
    if _label(case) in PUBLIC or case.method.upper() != case.operation.method.upper():
        return  # public, or a probe with a method the path does not have (405)
    body = response.json()
    if _refused_before_login(response.status_code, body):
        return  # refused before the dependencies run; nothing is revealed
    # Otherwise login comes first: whatever the input, no data and no 5xx without a session.
    assert response.status_code == 401, response.text
    assert body["code"] == "authentication_required"
    assert response.headers["www-authenticate"] == ['Cookie realm="yikatong"']


@pytest.fixture(params=[Role.PLATFORM_ADMIN, Role.COUNTER_CLERK, Role.AUDITOR], ids=str)
def signed_in(
    request: pytest.FixtureRequest,
    logins: dict[Role, tuple[StaffLogin, dict[str, str], dict[str, str]]],
) -> tuple[StaffLogin, dict[str, str], dict[str, str]]:
    return logins[request.param]


@schema.exclude(name=sorted(PUBLIC)).parametrize()
@FUZZ
def test_signed_in_calls(
    case: ApiCase,
    api_app: FastAPI,
    signed_in: tuple[StaffLogin, dict[str, str], dict[str, str]],
) -> None:
    _, cookies, headers = signed_in
    call_and_validate(case, api_app, cookies=cookies, headers=headers)


# --- regressions: bugs the fuzzing found ------------------------------------------------------


@pytest.fixture
def as_role(
    api_app: FastAPI, logins: dict[Role, tuple[StaffLogin, dict[str, str], Any]]
) -> Iterator[Any]:
    """``as_role(role)`` -> a TestClient holding that role's session, not raising on a 500."""
    clients: list[TestClient] = []

    def make(role: Role) -> TestClient:
        _, cookies, headers = logins[role]
        client = TestClient(api_app, raise_server_exceptions=False, headers=headers)
        client.cookies.update(cookies)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_openapi_documents_problem_responses() -> None:
    for path, item in APP_OPENAPI["paths"].items():
        for method, operation in item.items():
            if f"{method.upper()} {path}" in PUBLIC:
                continue
            answers = operation["responses"]
            assert PROBLEM_MEDIA_TYPE in answers.get("401", {}).get("content", {}), (method, path)
            assert PROBLEM_MEDIA_TYPE in answers["422"]["content"], (method, path)


@pytest.mark.parametrize("query", ["since=2024-01-01T00:00:00", "until=2024-01-01"])
def test_audit_filter_without_time_zone_is_not_a_500(as_role: Any, query: str) -> None:
    res = as_role(Role.AUDITOR).get(f"/api/v1/audit?{query}")
    assert res.status_code < 500, res.text


@pytest.mark.parametrize(
    ("role", "path"),
    [
        (Role.AUDITOR, "/api/v1/audit"),
        (Role.PLATFORM_ADMIN, "/api/v1/staff"),
        (Role.COUNTER_CLERK, "/api/v1/residents"),
    ],
)
def test_huge_page_is_not_a_server_error(as_role: Any, role: Role, path: str) -> None:
    res = as_role(role).get(f"{path}?page=99999999999999999999")
    assert res.status_code < 500, res.text


@pytest.mark.parametrize("path", ["/api/v1/residents/{id}", "/staff/residents/{id}"])
def test_huge_resident_id_is_a_404(as_role: Any, path: str) -> None:
    res = as_role(Role.COUNTER_CLERK).get(path.format(id=10**20))
    assert res.status_code in {404, 422}, res.text


def test_405_allow_header_lists_every_method(as_role: Any) -> None:
    res = as_role(Role.PLATFORM_ADMIN).put("/api/v1/staff")
    assert res.status_code == 405
    assert {m.strip() for m in res.headers["allow"].split(",")} == {"GET", "POST"}
