"""Imports over the API: upload (202 + the job), follow the job, fetch its error report; the
upload's size and type limits; who may start and see a job. Jobs run inline here (the
thread path has its own test)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import StaffLogin, login, make_resident, make_staff
from yikatong.cards.models import CardApplication
from yikatong.jobs import service
from yikatong.kit.actor import Role
from yikatong.reference.idnumber import make_id_number
from yikatong.residents.models import Resident

IMPORT = "/api/v1/cards/applications/import"


def _csv(rows: list[list[str]], header: tuple[str, ...] = ("id_number", "channel")) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def _signed_in(client: TestClient, who: StaffLogin) -> dict[str, str]:
    return {"X-CSRF-Token": login(client, who)}


def _upload(
    client: TestClient,
    headers: dict[str, str],
    content: bytes,
    name: str = "apps.csv",
    url: str = IMPORT,
    **form: Any,
) -> Any:
    return client.post(url, headers=headers, files={"file": (name, content)}, data=form)


@pytest.fixture(autouse=True)
def upload_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "uploads"
    monkeypatch.setattr(service, "UPLOAD_DIR", folder)
    return folder


def test_upload_answers_202_and_the_job_tells_the_outcome(
    client: TestClient, session: Session, upload_dir: Path
) -> None:
    people = [make_resident(session, region_code="441625") for _ in range(3)]
    clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441625")
    session.commit()
    headers = _signed_in(client, clerk)
    res = _upload(client, headers, _csv([[p.id_number, "counter"] for p in people]))
    assert res.status_code == 202, res.text
    job = res.json()
    assert res.headers["location"] == job["url"] == f"/api/v1/jobs/{job['id']}"
    assert (job["kind"], job["status"], job["file_name"]) == (
        "card_applications.import",
        "queued",
        "apps.csv",
    )
    polled = client.get(job["url"])
    assert polled.status_code == 200, polled.text
    done = polled.json()
    assert done["status"] == "succeeded"
    assert done["result"] == {
        "mode": "all_or_nothing",
        "rows": 3,
        "imported": 3,
        "rejected_rows": 0,
    }
    assert (done["done"], done["total"], done["error_count"], done["failure"]) == (3, 3, 0, None)
    assert done["started_at"]
    assert done["finished_at"]
    session.expire_all()
    applied = set(session.scalars(select(CardApplication.resident_id)))
    assert applied == {p.id for p in people}
    assert list(upload_dir.iterdir()) == []  # the file holds ID numbers: gone with the job
    listed = client.get("/api/v1/jobs").json()
    assert [j["id"] for j in listed] == [job["id"]]


def test_refused_rows_fail_the_job_and_the_report_is_csv(
    client: TestClient, session: Session
) -> None:
    good = make_resident(session, region_code="441625")
    clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441625")
    session.commit()
    headers = _signed_in(client, clerk)
    unknown = make_id_number("441625", dt.date(1990, 1, 1), 444)
    content = _csv([[good.id_number, "counter"], [unknown, "counter"], [good.id_number, "instant"]])
    job = _upload(client, headers, content).json()
    done = client.get(job["url"]).json()
    assert done["status"] == "failed"
    assert done["failure"] == {
        "code": "rows_refused",
        "message": "2 row(s) refused, so nothing was imported",
    }
    assert done["result"]["imported"] == 0
    report = client.get(done["errors_url"])
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/csv")
    assert report.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(report.text.lstrip("\ufeff"))))
    assert rows == [
        ["row", "field", "message"],
        ["3", "id_number", "No resident with this ID number in your area"],
        ["4", "id_number", "Same ID number as row 2 of this file"],
    ]
    session.expire_all()
    assert session.scalar(select(CardApplication.id)) is None


def test_skip_bad_over_the_api(client: TestClient, session: Session) -> None:
    good, other = make_resident(session), make_resident(session)
    clerk = make_staff(session, Role.COUNTER_CLERK)
    session.commit()
    headers = _signed_in(client, clerk)
    content = _csv([[good.id_number, "counter"], [other.id_number, "online"]])
    job = _upload(client, headers, content, skip_bad="true").json()
    done = client.get(job["url"]).json()
    assert (done["status"], done["result"]["imported"], done["error_count"]) == ("succeeded", 1, 1)


def test_an_unreadable_file_fails_with_its_reason(client: TestClient, session: Session) -> None:
    clerk = make_staff(session, Role.COUNTER_CLERK)
    session.commit()
    headers = _signed_in(client, clerk)
    job = _upload(client, headers, b"name,channel\n\xe7\x8e\x8b,counter\n").json()
    done = client.get(job["url"]).json()
    assert done["status"] == "failed"
    assert done["failure"]["code"] == "import_file_invalid"
    assert "missing column(s): id_number" in done["failure"]["message"]
    rows = list(csv.reader(io.StringIO(client.get(done["errors_url"]).text.lstrip("\ufeff"))))
    assert rows[1][:2] == ["1", "header"]


def test_resident_import_through_the_jobs_endpoint(client: TestClient, session: Session) -> None:
    clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441625")
    session.commit()
    headers = _signed_in(client, clerk)
    number = make_id_number("441625", dt.date(1988, 8, 8), 57)
    content = _csv(
        [[number, "刘一", "13812345678", "东源县仙塘镇", "441625", "", ""]],
        ("id_number", "name", "phone", "address", "region_code", "town_code", "categories"),
    )
    res = _upload(client, headers, content, url="/api/v1/jobs", kind="residents.import")
    assert res.status_code == 202, res.text
    done = client.get(res.json()["url"]).json()
    assert (done["status"], done["result"]["imported"]) == ("succeeded", 1)
    session.expire_all()
    assert session.scalar(select(Resident.name).where(Resident.region_code == "441625")) == "刘一"


def test_unknown_kind_is_refused(client: TestClient, session: Session) -> None:
    clerk = make_staff(session, Role.COUNTER_CLERK)
    session.commit()
    res = _upload(client, _signed_in(client, clerk), _csv([]), url="/api/v1/jobs", kind="x.y")
    assert res.status_code == 422
    assert res.json()["code"] == "unknown_job_kind"


def test_a_body_declared_too_large_is_refused_before_it_is_read(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch, upload_dir: Path
) -> None:
    clerk = make_staff(session, Role.COUNTER_CLERK)
    session.commit()
    headers = _signed_in(client, clerk)
    monkeypatch.setattr(service, "UPLOAD_BODY_LIMIT", 2_000)
    res = _upload(client, headers, b"id_number,channel\n" + b"x" * 3_000)
    assert res.status_code == 413, res.text
    assert res.headers["content-type"] == "application/problem+json"
    assert res.json()["code"] == "upload_too_large"
    assert not upload_dir.exists()


def test_a_file_over_the_limit_is_refused(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch, upload_dir: Path
) -> None:
    clerk = make_staff(session, Role.COUNTER_CLERK)
    session.commit()
    headers = _signed_in(client, clerk)
    monkeypatch.setattr(service, "UPLOAD_LIMIT", 100)
    res = _upload(client, headers, b"id_number,channel\n" + b"1,counter\n" * 20)
    assert res.status_code == 413
    assert res.json()["code"] == "upload_too_large"
    assert client.get("/api/v1/jobs").json() == []


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("apps.xls", b"\xd0\xcf\x11\xe0 old excel"),
        ("apps.pdf", b"%PDF-1.7"),
        ("apps", b"id_number,channel\n"),
        ("apps.xlsx", b"id_number,channel\n"),  # text dressed as a workbook
        ("apps.csv", b"PK\x03\x04 a zip"),  # a workbook dressed as text
        ("apps.csv", b"id_number\x00channel"),
        ("apps.csv", b""),
    ],
)
def test_the_file_type_is_checked(
    client: TestClient, session: Session, name: str, content: bytes, upload_dir: Path
) -> None:
    clerk = make_staff(session, Role.COUNTER_CLERK)
    session.commit()
    res = _upload(client, _signed_in(client, clerk), content, name=name)
    assert res.status_code == 422, res.text
    body = res.json()
    assert body["code"] == "upload_type_invalid"
    assert body["errors"][0]["field"] == "file"
    assert not upload_dir.exists() or list(upload_dir.iterdir()) == []


def test_who_may_start_and_see_an_import(client: TestClient, session: Session) -> None:
    resident = make_resident(session, region_code="441625")
    clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441625")
    neighbour = make_staff(session, Role.COUNTER_CLERK, region_code="441602")
    city = make_staff(session, Role.COUNTER_CLERK, region_code="441600")
    admin = make_staff(session, Role.DEPARTMENT_ADMIN, region_code="441600")
    session.commit()
    job = _upload(client, _signed_in(client, clerk), _csv([[resident.id_number, "counter"]]))
    url = job.json()["url"]
    client.cookies.clear()
    assert client.get(url).status_code == 401
    assert client.get(url, headers=_signed_in(client, neighbour)).status_code == 404
    client.cookies.clear()
    assert client.get(url, headers=_signed_in(client, city)).status_code == 200
    client.cookies.clear()
    headers = _signed_in(client, admin)
    assert client.get(url).status_code == 404  # may read cards, may not import them
    refused = _upload(client, headers, _csv([]))
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"


def test_an_api_upload_with_a_cookie_session_needs_the_csrf_token(
    client: TestClient, session: Session
) -> None:
    clerk = make_staff(session, Role.COUNTER_CLERK)
    session.commit()
    _signed_in(client, clerk)
    res = _upload(client, {}, _csv([]))
    assert res.status_code == 403
    assert res.json()["code"] == "csrf_failed"
