"""The batch import pages: the upload form, the job page with its polling progress fragment,
the outcome with the refused rows and their CSV in the clerk's language."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import StaffLogin, make_resident, make_staff
from tests.pages import csrf_from, sign_in
from yikatong.cards.models import CardApplication
from yikatong.db import utcnow
from yikatong.jobs import runner, service
from yikatong.jobs.models import Job, JobStatus
from yikatong.kit.actor import Role


@pytest.fixture(autouse=True)
def upload_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "uploads"
    monkeypatch.setattr(service, "UPLOAD_DIR", folder)
    return folder


@pytest.fixture
def clerk(client: TestClient, session: Session) -> StaffLogin:
    who = make_staff(session, Role.COUNTER_CLERK, region_code="441625")
    session.commit()
    sign_in(client, who)
    return who


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id_number", "channel"])
    writer.writerows(rows)
    return out.getvalue().encode()


def _post(client: TestClient, content: bytes, name: str = "学校.csv", **form: str) -> Response:
    page = client.get("/staff/imports")
    data = {"csrf_token": csrf_from(page.text), "kind": "card_applications.import", **form}
    return client.post(
        "/staff/imports", data=data, files={"file": (name, content)}, follow_redirects=False
    )


def test_the_form_offers_both_imports_to_a_clerk(client: TestClient, clerk: StaffLogin) -> None:
    page = client.get("/staff/imports")
    assert page.status_code == 200
    assert "批量导入" in page.text  # the navigation entry and the title
    assert 'href="/staff/imports"' in page.text
    assert 'value="card_applications.import" checked' in page.text
    assert 'value="residents.import"' in page.text
    assert 'enctype="multipart/form-data"' in page.text
    assert "<code>recipient_phone</code>" in page.text
    assert "暂无导入任务" in page.text


def test_a_role_that_may_not_apply_sees_no_entry(client: TestClient, session: Session) -> None:
    admin = make_staff(session, Role.DEPARTMENT_ADMIN)
    session.commit()
    sign_in(client, admin)
    assert 'href="/staff/imports"' not in client.get("/staff").text
    assert "您的角色不能导入文件" in client.get("/staff/imports").text


def test_upload_then_the_job_page_shows_the_outcome(
    client: TestClient, clerk: StaffLogin, session: Session
) -> None:
    people = [make_resident(session, region_code="441625") for _ in range(2)]
    session.commit()
    res = _post(client, _csv([[p.id_number, "counter"] for p in people]))
    assert res.status_code == 303, res.text
    location = res.headers["location"]
    job_id = int(location.rsplit("/", 1)[1])
    page = client.get(location)
    assert page.status_code == 200
    assert "导入完成" in page.text
    assert "共读取 2 行，导入 2 条，拒绝 0 条。" in page.text
    assert 'hx-trigger="every 1s"' not in page.text  # finished: nothing to poll
    assert "学校.csv" in page.text
    session.expire_all()
    assert set(session.scalars(select(CardApplication.resident_id))) == {p.id for p in people}
    listing = client.get("/staff/imports")
    assert f'href="/staff/imports/{job_id}"' in listing.text
    assert "导入 2 条，拒绝 0 条" in listing.text


def test_refused_rows_are_listed_and_downloadable_in_chinese(
    client: TestClient, clerk: StaffLogin, session: Session
) -> None:
    person = make_resident(session, region_code="441625")
    session.commit()
    res = _post(client, _csv([[person.id_number, "online"], [person.id_number, "counter"]]))
    page = client.get(res.headers["location"])
    assert "未导入任何数据" in page.text
    assert "2 行被拒绝，因此未导入任何数据" in page.text
    assert "网上申领须填写邮寄地址" in page.text
    assert "与本文件第 2 行的身份证号码重复" in page.text
    job_id = res.headers["location"].rsplit("/", 1)[1]
    download = client.get(f"/staff/imports/{job_id}/errors.csv")
    assert download.status_code == 200
    assert download.headers["content-disposition"].startswith("attachment")
    rows = list(csv.reader(io.StringIO(download.text.lstrip("\ufeff"))))
    assert rows[1:] == [
        ["2", "mailing_address", "网上申领须填写邮寄地址"],
        ["3", "id_number", "与本文件第 2 行的身份证号码重复"],
    ]
    client.cookies.set("yk_lang", "en")
    english = client.get(f"/staff/imports/{job_id}/errors.csv")
    assert "Online applications need a mailing address" in english.text


def test_a_running_job_polls_every_second_with_a_progress_bar(
    client: TestClient, clerk: StaffLogin, session: Session
) -> None:
    job = Job(
        kind="card_applications.import",
        status=JobStatus.RUNNING.value,
        stage="checking",
        params={"skip_bad": True},
        created_by_id=str(clerk.member.id),
        created_by=clerk.username,
        region_code="441625",
        total=10_000,
        done=3_500,
        runner=None,
        created_at=utcnow(),
        heartbeat_at=utcnow(),
    )
    session.add(job)
    session.commit()
    runner._active.add(job.id)  # alive in this process
    try:
        page = client.get(f"/staff/imports/{job.id}")
        fragment = client.get(f"/staff/imports/{job.id}/progress", headers={"HX-Request": "true"})
    finally:
        runner._active.discard(job.id)
    assert page.status_code == fragment.status_code == 200
    assert f'hx-get="/staff/imports/{job.id}/progress" hx-trigger="every 1s"' in page.text
    assert 'max="10000" value="3500"' in fragment.text
    assert "正在校验" in fragment.text
    assert "已处理 3,500 / 10,000 行" in fragment.text
    assert "跳过错误行" in page.text
    assert "<html" not in fragment.text  # a fragment, not a page


def test_a_wrong_file_comes_back_to_the_form_with_the_reason(
    client: TestClient, clerk: StaffLogin
) -> None:
    res = _post(client, b"%PDF-1.7", name="scan.pdf", mode="skip_bad")
    assert res.status_code == 422
    text = res.text
    assert "无法导入此文件" in text
    assert "不能导入 .pdf 类型的文件" in text
    assert 'id="mode-skip" value="skip_bad" checked' in text


def test_another_county_cannot_open_the_job(
    client: TestClient, clerk: StaffLogin, session: Session
) -> None:
    res = _post(client, _csv([]))
    location = res.headers["location"]
    neighbour = make_staff(session, Role.COUNTER_CLERK, region_code="441602")
    session.commit()
    client.cookies.clear()
    sign_in(client, neighbour)
    assert client.get(location).status_code == 404
    assert client.get(location + "/errors.csv").status_code == 404
