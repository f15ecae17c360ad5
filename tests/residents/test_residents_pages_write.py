"""The clerks' write pages, driven through their forms: register, correct, categories, death
with its confirmation step; errors shown next to their fields; numbers never in URLs."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import make_resident, make_staff
from tests.pages import csrf_from, sign_in
from tests.residents.helpers import new_id_number, resident_count
from yikatong.kit import events
from yikatong.kit.actor import Role
from yikatong.residents.models import Resident

_FIELD_ERROR = re.compile(r'id="field-([a-z_]+)-error" class="invalid-feedback">([^<]*)<')


def field_errors(html: str) -> dict[str, str]:
    return dict(_FIELD_ERROR.findall(html))


def _stored(session: Session, resident_id: int) -> Resident:
    """The resident as the database has it now (the pages committed in other sessions)."""
    session.expire_all()
    resident = session.get(Resident, resident_id)
    assert resident is not None
    return resident


@pytest.fixture
def signed_in_clerk(client: TestClient, session: Session) -> TestClient:
    clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441625")
    session.commit()
    sign_in(client, clerk)
    return client


def test_register_form_shows_every_error_next_to_its_field(
    signed_in_clerk: TestClient, session: Session
) -> None:
    client = signed_in_clerk
    search = client.get("/staff/residents")
    assert 'href="/staff/residents/new"' in search.text
    form = client.get("/staff/residents/new")
    assert form.status_code == 200
    assert '<option value="441625" selected>' in form.text
    assert "仙塘镇" in form.text  # the county's towns are offered
    number = new_id_number()
    wrong = number[:17] + ("0" if number[17] != "0" else "1")
    before = resident_count(session)
    res = client.post(
        "/staff/residents/new",
        data={
            "csrf_token": csrf_from(form.text),
            "id_number": wrong,
            "name": "张3",
            "region_code": "441625",
            "town_code": "441602001",
            "phone": "12345",
            "address": "东源县人民路1号",
        },
    )
    assert res.status_code == 422
    errors = field_errors(res.text)
    assert set(errors) == {"id_number", "name", "town_code", "phone"}
    assert "校验码" in errors["id_number"]  # translated: the page speaks Chinese
    assert 'value="东源县人民路1号"' in res.text  # what was typed is kept
    assert resident_count(session) == before

    ok = client.post(
        "/staff/residents/new",
        data={
            "csrf_token": csrf_from(res.text),
            "id_number": number,
            "name": "张小三",
            "region_code": "441625",
            "town_code": "441625100",
            "phone": "13812345678",
        },
        follow_redirects=False,
    )
    assert ok.status_code == 303
    assert number not in ok.headers["location"]
    detail = client.get(ok.headers["location"])
    assert "居民已登记" in detail.text
    assert "张*三" in detail.text
    assert number not in detail.text

    again = client.post(
        "/staff/residents/new",
        data={
            "csrf_token": csrf_from(detail.text),
            "id_number": number,
            "name": "张小三",
            "region_code": "441625",
        },
    )
    assert again.status_code == 409
    assert "id_number" in field_errors(again.text)
    assert ok.headers["location"].split("?")[0] in again.text  # a link to the existing record


def test_register_in_another_county_is_refused_on_the_form(
    signed_in_clerk: TestClient, session: Session
) -> None:
    form = signed_in_clerk.get("/staff/residents/new")
    res = signed_in_clerk.post(
        "/staff/residents/new",
        data={
            "csrf_token": csrf_from(form.text),
            "id_number": new_id_number(),
            "name": "张三",
            "region_code": "441602",
        },
    )
    assert res.status_code == 403
    assert "region_code" in field_errors(res.text)


def test_department_admin_gets_no_forms(client: TestClient, session: Session) -> None:
    resident = make_resident(session, region_code="441625")
    admin = make_staff(session, Role.DEPARTMENT_ADMIN)
    session.commit()
    sign_in(client, admin)
    assert client.get("/staff/residents/new").status_code == 403
    assert client.get(f"/staff/residents/{resident.id}/edit").status_code == 403
    detail = client.get(f"/staff/residents/{resident.id}")
    assert "/death" not in detail.text
    assert "/edit" not in detail.text


def test_search_by_mobile_is_posted_and_masked(
    signed_in_clerk: TestClient, session: Session
) -> None:
    resident = make_resident(session, region_code="441625", name="黄丽华", phone="13700000077")
    session.commit()
    page = signed_in_clerk.get("/staff/residents")
    res = signed_in_clerk.post(
        "/staff/residents", data={"csrf_token": csrf_from(page.text), "q": "137 0000 0077"}
    )
    assert res.status_code == 200
    assert f'href="/staff/residents/{resident.id}"' in res.text
    assert "137****0077" in res.text
    assert "13700000077" not in res.text
    assert 'value="137 0000 0077"' not in res.text


def test_correct_details_without_revealing_them(
    signed_in_clerk: TestClient, session: Session
) -> None:
    resident = make_resident(session, region_code="441625", name="王小明", phone="13800000001")
    session.commit()
    url = f"/staff/residents/{resident.id}/edit"
    form = signed_in_clerk.get(url)
    assert form.status_code == 200
    assert "13800000001" not in form.text
    assert "王小明" not in form.text
    assert "138****0001" in form.text
    bad = signed_in_clerk.post(
        url,
        data={
            "csrf_token": csrf_from(form.text),
            "name": "王1",
            "region_code": "441625",
            "town_code": "",
        },
    )
    assert bad.status_code == 422
    assert set(field_errors(bad.text)) == {"name"}
    ok = signed_in_clerk.post(
        url,
        data={
            "csrf_token": csrf_from(form.text),
            "name": "",
            "phone": "13900000002",
            "region_code": "441625",
            "town_code": "441625101",
            "clear_address": "1",
        },
        follow_redirects=False,
    )
    assert ok.status_code == 303
    session.expire_all()
    fresh = session.get(Resident, resident.id)
    assert fresh is not None
    assert (fresh.name, fresh.phone, fresh.town_code, fresh.address) == (
        "王小明",
        "13900000002",
        "441625101",
        None,
    )
    again = signed_in_clerk.get(url)
    assert '<option value="441625101" selected>' in again.text


def test_another_countys_resident_cannot_be_corrected(
    signed_in_clerk: TestClient, session: Session
) -> None:
    theirs = make_resident(session, region_code="441602")
    session.commit()
    assert signed_in_clerk.get(f"/staff/residents/{theirs.id}/edit").status_code == 404
    page = signed_in_clerk.get("/staff/residents")
    res = signed_in_clerk.post(
        f"/staff/residents/{theirs.id}/edit",
        data={"csrf_token": csrf_from(page.text), "name": "李四", "region_code": "441602"},
    )
    assert res.status_code == 404


def test_categories_panel_grants_refuses_overlaps_and_ends(
    signed_in_clerk: TestClient, session: Session
) -> None:
    resident = make_resident(session, region_code="441625")
    session.commit()
    url = f"/staff/residents/{resident.id}"
    detail = signed_in_clerk.get(url)
    assert 'id="categories"' in detail.text
    token = csrf_from(detail.text)
    granted = signed_in_clerk.post(
        f"{url}/categories",
        data={
            "csrf_token": token,
            "category": "low_income",
            "valid_from": "2024-01-01",
            "valid_to": "",
            "source": "东源县民政局",
        },
        follow_redirects=False,
    )
    assert granted.status_code == 303
    overlap = signed_in_clerk.post(
        f"{url}/categories",
        data={
            "csrf_token": token,
            "category": "low_income",
            "valid_from": "2024-05-01",
            "valid_to": "",
            "source": "东源县民政局",
        },
    )
    assert overlap.status_code == 409
    assert "valid_from" in field_errors(overlap.text)
    assert 'value="2024-05-01"' in overlap.text
    bad_date = signed_in_clerk.post(
        f"{url}/categories",
        data={"csrf_token": token, "category": "", "valid_from": "2024-13-01", "source": ""},
    )
    assert bad_date.status_code == 422
    assert set(field_errors(bad_date.text)) == {"category", "valid_from"}

    session.expire_all()
    [period] = _stored(session, resident.id).categories
    early = signed_in_clerk.post(
        f"{url}/categories/{period.id}/end", data={"csrf_token": token, "valid_to": "2023-01-01"}
    )
    assert early.status_code == 422
    assert f'id="end-{period.id}-error"' in early.text
    ended = signed_in_clerk.post(
        f"{url}/categories/{period.id}/end",
        data={"csrf_token": token, "valid_to": "2024-12-31"},
        follow_redirects=False,
    )
    assert ended.status_code == 303
    session.expire_all()
    assert _stored(session, resident.id).categories[0].valid_to is not None


def test_death_registration_asks_for_confirmation_first(
    signed_in_clerk: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    heard: list[events.Event] = []
    monkeypatch.setitem(
        events._handlers,
        "resident.deceased",
        [*events.handlers_of("resident.deceased"), lambda _s, e: heard.append(e)],
    )
    resident = make_resident(session, region_code="441625", name="赵老六")
    session.commit()
    url = f"/staff/residents/{resident.id}"
    assert f'href="{url}/death"' in signed_in_clerk.get(url).text
    form = signed_in_clerk.get(f"{url}/death")
    assert form.status_code == 200
    missing = signed_in_clerk.post(
        f"{url}/death", data={"csrf_token": csrf_from(form.text), "date": "", "reference": ""}
    )
    assert missing.status_code == 422
    assert set(field_errors(missing.text)) == {"date", "reference"}

    confirm = signed_in_clerk.post(
        f"{url}/death",
        data={"csrf_token": csrf_from(form.text), "date": "2026-01-05", "reference": "死证001"},
    )
    assert confirm.status_code == 200
    assert "社会保障卡将立即注销" in confirm.text  # the page says what will happen
    assert f'action="{url}/death/confirm"' in confirm.text
    assert 'name="reference" value="死证001"' in confirm.text
    assert _stored(session, resident.id).status == "active"
    assert heard == []

    done = signed_in_clerk.post(
        f"{url}/death/confirm",
        data={"csrf_token": csrf_from(confirm.text), "date": "2026-01-05", "reference": "死证001"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert [e.payload["resident_id"] for e in heard] == [resident.id]
    detail = signed_in_clerk.get(done.headers["location"])
    assert "2026-01-05" in detail.text
    assert f'href="{url}/death"' not in detail.text
    again = signed_in_clerk.get(f"{url}/death")
    assert again.status_code == 409
    twice = signed_in_clerk.post(
        f"{url}/death/confirm",
        data={"csrf_token": csrf_from(confirm.text), "date": "2026-01-05", "reference": "死证001"},
    )
    assert twice.status_code == 409
    assert len(heard) == 1


def test_emigration_page_flow(signed_in_clerk: TestClient, session: Session) -> None:
    resident = make_resident(session, region_code="441625")
    session.commit()
    url = f"/staff/residents/{resident.id}/emigration"
    form = signed_in_clerk.get(url)
    confirm = signed_in_clerk.post(
        url, data={"csrf_token": csrf_from(form.text), "date": "2026-02-01", "reference": "迁001"}
    )
    assert confirm.status_code == 200
    done = signed_in_clerk.post(
        f"{url}/confirm",
        data={"csrf_token": csrf_from(confirm.text), "date": "2026-02-01", "reference": "迁001"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert _stored(session, resident.id).status == "emigrated"


def test_town_options_follow_the_county(signed_in_clerk: TestClient) -> None:
    ours = signed_in_clerk.get("/staff/residents/towns", params={"region_code": "441625"})
    assert 'value="441625100"' in ours.text
    theirs = signed_in_clerk.get("/staff/residents/towns", params={"region_code": "441602"})
    assert theirs.text.count("<option") == 1  # only "not recorded": not this clerk's county
