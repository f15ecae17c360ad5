"""The clerks' registry pages: masked list, detail, audited reveal, region scope."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import make_resident, make_staff
from tests.pages import csrf_from, sign_in
from yikatong.kit.actor import Role


def test_search_detail_and_reveal(client: TestClient, session: Session) -> None:
    resident = make_resident(session, region_code="441625", name="黄丽华", sex="female")
    clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441625")
    session.commit()
    sign_in(client, clerk)
    page = client.get("/staff/residents")
    listing = client.post(
        "/staff/residents", data={"csrf_token": csrf_from(page.text), "q": resident.id_number}
    )
    assert listing.status_code == 200
    assert "1" in listing.text
    assert "黄*华" in listing.text
    assert resident.id_number not in listing.text
    detail = client.get(f"/staff/residents/{resident.id}")
    assert detail.status_code == 200
    assert resident.id_number not in detail.text
    revealed = client.post(
        f"/staff/residents/{resident.id}/reveal",
        data={"csrf_token": csrf_from(detail.text), "field": "id_number"},
        headers={"HX-Request": "true"},
    )
    assert revealed.status_code == 200
    assert resident.id_number in revealed.text


def test_other_county_is_not_found(client: TestClient, session: Session) -> None:
    resident = make_resident(session, region_code="441602")
    clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441625")
    session.commit()
    sign_in(client, clerk)
    res = client.get(f"/staff/residents/{resident.id}")
    assert res.status_code == 404


def test_name_browsing_is_linkable_and_scoped(client: TestClient, session: Session) -> None:
    ours = make_resident(session, region_code="441625", name="罗文")
    make_resident(session, region_code="441602", name="罗武")
    clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441625")
    session.commit()
    sign_in(client, clerk)
    res = client.get("/staff/residents", params={"q": "罗"})
    assert res.status_code == 200
    assert f'href="/staff/residents/{ours.id}"' in res.text
    assert "罗*" in res.text
    assert len(re.findall(r'href="/staff/residents/\d+"', res.text)) == 1
