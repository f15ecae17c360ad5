"""The write side of /api/v1/residents: status codes, problem codes, masking, CSRF."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import StaffLogin, login, make_resident, make_staff
from tests.residents.helpers import new_id_number
from yikatong.deps import CSRF_HEADER
from yikatong.kit.actor import Role
from yikatong.residents.validation import china_today

API = "/api/v1/residents"


@pytest.fixture
def county_clerk(session: Session) -> StaffLogin:
    return make_staff(session, Role.COUNTER_CLERK, region_code="441625")


def _signed_in(client: TestClient, session: Session, who: StaffLogin) -> dict[str, str]:
    session.commit()
    return {CSRF_HEADER: login(client, who)}


def test_register_answers_201_masked(
    client: TestClient, session: Session, county_clerk: StaffLogin
) -> None:
    headers = _signed_in(client, session, county_clerk)
    number = new_id_number("441625", dt.date(1990, 1, 1))
    res = client.post(
        API,
        json={
            "id_number": number,
            "name": "张小三",
            "region_code": "441625",
            "town_code": "441625100",
            "phone": "13812345678",
            "address": "广东省河源市东源县仙塘镇人民路1号",
        },
        headers=headers,
    )
    assert res.status_code == 201, res.text
    body = res.json()
    assert body["id_number"] == number[:6] + "********" + number[-4:]
    assert (body["name"], body["phone"], body["sex"]) == ("张*三", "138****5678", "male")
    assert body["address"] == "广东省河源市东源县******"
    assert number not in res.text

    again = client.post(
        API, json={"id_number": number, "name": "张小三", "region_code": "441625"}, headers=headers
    )
    assert again.status_code == 409
    assert again.json()["code"] == "resident_exists"
    assert again.json()["resident_id"] == body["id"]


def test_register_problems(client: TestClient, session: Session, county_clerk: StaffLogin) -> None:
    headers = _signed_in(client, session, county_clerk)
    number = new_id_number()
    shape = client.post(
        API, json={"id_number": "123", "name": "张3", "region_code": "x"}, headers=headers
    )
    assert shape.status_code == 422
    assert shape.json()["code"] == "validation_failed"
    assert {e["field"] for e in shape.json()["errors"]} == {"id_number", "name", "region_code"}

    wrong_check = number[:17] + ("0" if number[17] != "0" else "1")
    rule = client.post(
        API,
        json={"id_number": wrong_check, "name": "张三", "region_code": "441699"},
        headers=headers,
    )
    assert rule.status_code == 422
    body = rule.json()
    assert body["code"] == "invalid_resident"
    assert [(e["field"], e["reason"]) for e in body["errors"]] == [
        ("id_number", "check_digit"),
        ("region_code", "unknown_region"),
    ]

    elsewhere = client.post(
        API, json={"id_number": number, "name": "张三", "region_code": "441602"}, headers=headers
    )
    assert elsewhere.status_code == 403
    assert elsewhere.json()["code"] == "region_out_of_scope"


def test_cookie_session_needs_the_csrf_header(
    client: TestClient, session: Session, county_clerk: StaffLogin
) -> None:
    _signed_in(client, session, county_clerk)
    res = client.post(
        API, json={"id_number": new_id_number(), "name": "张三", "region_code": "441625"}
    )
    assert res.status_code == 403
    assert res.json()["code"] == "csrf_failed"


def test_patch_search_by_phone_categories_and_death(
    client: TestClient, session: Session, county_clerk: StaffLogin
) -> None:
    resident = make_resident(session, region_code="441625", name="王小明", phone="13800000001")
    theirs = make_resident(session, region_code="441602")
    headers = _signed_in(client, session, county_clerk)
    url = f"{API}/{resident.id}"

    res = client.patch(url, json={"phone": "13900000002", "address": None}, headers=headers)
    assert res.status_code == 200, res.text
    assert (res.json()["phone"], res.json()["address"]) == ("139****0002", None)
    assert client.patch(url, json={"sex": "female"}, headers=headers).status_code == 422
    missing = client.patch(f"{API}/{theirs.id}", json={"name": "李四"}, headers=headers)
    assert missing.status_code == 404

    found = client.get(API, params={"phone": "13900000002"})
    assert [r["id"] for r in found.json()["items"]] == [resident.id]
    assert client.get(API, params={"phone": "13800000001"}).json()["total"] == 0

    granted = client.post(
        f"{url}/categories",
        json={"category": "disabled", "valid_from": "2024-01-01", "source": "残联"},
        headers=headers,
    )
    assert granted.status_code == 201, granted.text
    period = granted.json()
    overlap = client.post(
        f"{url}/categories",
        json={"category": "disabled", "valid_from": "2024-06-01", "source": "残联"},
        headers=headers,
    )
    assert (overlap.status_code, overlap.json()["code"]) == (409, "category_overlap")
    elderly = client.post(
        f"{url}/categories",
        json={"category": "elderly", "valid_from": "2024-06-01", "source": "x"},
        headers=headers,
    )
    assert (elderly.status_code, elderly.json()["code"]) == (422, "category_derived")
    ended = client.post(
        f"{url}/categories/{period['id']}/end", json={"valid_to": "2024-12-31"}, headers=headers
    )
    assert (ended.status_code, ended.json()["valid_to"]) == (200, "2024-12-31")
    listed = client.get(f"{url}/categories")
    assert [p["id"] for p in listed.json()] == [period["id"]]

    future = (china_today() + dt.timedelta(days=3)).isoformat()
    refused = client.post(
        f"{url}/death", json={"date": future, "reference": "死证001"}, headers=headers
    )
    assert (refused.status_code, refused.json()["errors"][0]["field"]) == (422, "date")
    died = client.post(
        f"{url}/death", json={"date": "2026-01-05", "reference": "死证001"}, headers=headers
    )
    assert died.status_code == 200, died.text
    assert (died.json()["status"], died.json()["status_date"]) == ("deceased", "2026-01-05")
    twice = client.post(
        f"{url}/emigration", json={"date": "2026-01-06", "reference": "迁出"}, headers=headers
    )
    assert (twice.status_code, twice.json()["code"]) == (409, "resident_not_active")


def test_department_admin_cannot_write(client: TestClient, session: Session) -> None:
    resident = make_resident(session, region_code="441625")
    headers = _signed_in(client, session, make_staff(session, Role.DEPARTMENT_ADMIN))
    res = client.post(
        f"{API}/{resident.id}/death", json={"date": "2026-01-05", "reference": "x"}, headers=headers
    )
    assert (res.status_code, res.json()["code"]) == (403, "permission_denied")
