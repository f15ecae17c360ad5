"""Batch applications (批量申领) from a file: every row under the rules of ``apply``, duplicates
in the file, all or nothing versus skip-bad, region scope, nothing half-written."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.card_factories import issued_card
from tests.factories import make_resident, make_staff
from tests.residents.helpers import audit_entries, last_audit_id
from yikatong.cards import importing, service
from yikatong.cards.models import ApplicationEvent, CardApplication, Channel
from yikatong.db import job
from yikatong.errors import PermissionDenied, YikatongError
from yikatong.kit.actor import Actor, Role
from yikatong.reference.idnumber import make_id_number
from yikatong.residents import service as residents_service
from yikatong.residents.errors import ImportFileInvalid
from yikatong.residents.importing import ImportReport, open_table

ADDRESS = "广东省河源市源城区文明路1号"
TODAY = dt.datetime.now(dt.UTC).date()
HEADER = ["id_number", "name", "channel", "mailing_address", "recipient_phone", "note"]


@pytest.fixture
def clerk(session: Session) -> Actor:
    return make_staff(session, Role.COUNTER_CLERK, region_code="441600").actor()


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _import(path: Path, actor: Actor, *, skip_bad: bool = False, **kwargs: object) -> ImportReport:
    table = open_table(path, importing.COLUMNS, importing.REQUIRED)
    return importing.import_applications(
        job, actor, table.rows, skip_bad=skip_bad, total=table.total, **kwargs
    )


def _applications(session: Session) -> list[CardApplication]:
    session.expire_all()
    return list(session.scalars(select(CardApplication).order_by(CardApplication.id)))


def _refused(report: ImportReport) -> set[tuple[int, str]]:
    return {(e.row, e.field) for e in report.errors}


def test_good_rows_are_applied_with_trail_and_audit(
    session_factory: sessionmaker[Session], session: Session, clerk: Actor, tmp_path: Path
) -> None:
    counter = make_resident(session, name="王一")
    online = make_resident(session, name="王二")
    newborn = make_resident(session, birth_date=TODAY - dt.timedelta(days=40))
    with_proxy = make_resident(session, birth_date=dt.date(1940, 3, 3))
    session.commit()
    proxy_number = make_id_number("441602", dt.date(1970, 1, 1), 77)
    path = tmp_path / "good.csv"
    _write_csv(
        path,
        [*HEADER, "birth_certificate_number", "proxy_name", "proxy_id_number", "proxy_relation"],
        [
            [counter.id_number, "王一", "counter", "", "", "", "", "", "", ""],
            [
                online.id_number,
                "",
                "ONLINE",
                ADDRESS,
                "+86 138-1234-5678",
                "学校统一申领",
                "",
                "",
                "",
                "",
            ],
            [newborn.id_number, "", "newborn", "", "", "", "O441602123", "", "", ""],
            [with_proxy.id_number, "", "counter", "", "", "", "", "李四", proxy_number, "子女"],
        ],
    )
    after = last_audit_id(session)
    report = _import(path, clerk)
    assert (report.rows, report.imported, report.errors, report.written) == (4, 4, [], True)
    applications = {a.resident_id: a for a in _applications(session)}
    assert set(applications) == {counter.id, online.id, newborn.id, with_proxy.id}
    assert applications[online.id].channel == Channel.ONLINE
    assert applications[online.id].mailing_address == ADDRESS
    assert applications[online.id].recipient_phone == "13812345678"
    assert applications[online.id].note == "学校统一申领"
    assert applications[newborn.id].birth_certificate_number == "O441602123"
    assert applications[with_proxy.id].proxy_id_number == proxy_number
    assert applications[with_proxy.id].proxy_relation == "子女"
    assert all(
        a.status == "submitted" and a.created_by == clerk.name for a in applications.values()
    )
    trail = session.scalars(select(ApplicationEvent.application_id)).all()
    assert sorted(trail) == sorted(a.id for a in applications.values())
    entries = audit_entries(session, after)
    applied = {e.object_id for e in entries if e.action == "card.apply"}
    assert applied == {str(a.id) for a in applications.values()}
    [summary] = [e for e in entries if e.action == "card_application.import"]
    assert (summary.outcome, summary.detail["imported"], summary.detail["mode"]) == (
        "success",
        4,
        "all_or_nothing",
    )


def test_every_kind_of_bad_row_is_reported_and_nothing_written(
    session_factory: sessionmaker[Session], session: Session, clerk: Actor, tmp_path: Path
) -> None:
    good = make_resident(session)
    deceased = make_resident(session)
    pending = make_resident(session)
    holder = make_resident(session)
    adult = make_resident(session, name="赵六")
    session.commit()
    residents_service.register_death(
        session, clerk, deceased.id, dt.date(2026, 1, 2), "死亡证明 A1"
    )
    service.apply(session, clerk, resident_id=pending.id, channel=Channel.COUNTER)
    issued_card(session, clerk, holder.id)
    session.commit()
    before = len(_applications(session))
    unknown = make_id_number("441602", dt.date(1991, 2, 3), 333)
    broken = unknown[:-1] + ("0" if unknown[-1] != "0" else "1")
    path = _write_csv(
        tmp_path / "bad.csv",
        HEADER,
        [
            [good.id_number, "", "counter", "", "", ""],  # 2: the one good row
            [unknown, "", "counter", "", "", ""],  # 3: not registered
            [broken, "", "counter", "", "", ""],  # 4: check digit
            [adult.id_number, "钱七", "counter", "", "", ""],  # 5: someone else's name
            [adult.id_number.lower(), "", "", "", "", ""],  # 6: repeated; (channel not read)
            [deceased.id_number, "", "counter", "", "", ""],  # 7: deceased
            [pending.id_number, "", "counter", "", "", ""],  # 8: application in progress
            [holder.id_number, "", "counter", "", "", ""],  # 9: has a card
        ],
    )
    after = last_audit_id(session)
    report = _import(path, clerk)
    assert not report.written
    assert report.imported == 0
    assert _refused(report) == {
        (3, "id_number"),
        (4, "id_number"),
        (5, "name"),
        (6, "channel"),
        (7, "id_number"),
        (8, "id_number"),
        (9, "id_number"),
    }
    messages = {e.row: e.message for e in report.errors}
    assert messages[3] == "No resident with this ID number in your area"
    assert messages[5] == "Not the name registered with this ID number"
    assert "deceased" in messages[7]
    assert messages[8] == "An application for this resident is already in progress"
    assert "already has a card" in messages[9]
    assert report.rejected_rows == 7
    assert len(_applications(session)) == before  # all or nothing: not even row 2
    entries = audit_entries(session, after)
    assert not [e for e in entries if e.action == "card.apply"]
    [summary] = [e for e in entries if e.action == "card_application.import"]
    assert (summary.outcome, summary.detail["rejected_rows"]) == ("failed", 7)


def test_channel_rules_refuse_row_by_row(
    session_factory: sessionmaker[Session], session: Session, clerk: Actor, tmp_path: Path
) -> None:
    people = [make_resident(session) for _ in range(7)]
    old_baby = make_resident(session, birth_date=TODAY - dt.timedelta(days=500))
    session.commit()
    header = [
        *HEADER,
        "birth_certificate_number",
        "proxy_name",
        "proxy_id_number",
        "proxy_relation",
    ]
    p = [r.id_number for r in people]
    path = _write_csv(
        tmp_path / "channels.csv",
        header,
        [
            [p[0], "", "online", "", "", "", "", "", "", ""],  # 2: no mailing address
            [p[1], "", "counter", "", "13812345678", "", "", "", "", ""],  # 3: phone, not mailed
            [p[2], "", "cross_province", ADDRESS, "12345", "", "", "", "", ""],  # 4: bad phone
            [p[3], "", "newborn", "", "", "", "", "", "", ""],  # 5: cert missing, not a baby
            [old_baby.id_number, "", "newborn", "", "", "", "B1", "", "", ""],  # 6: too old
            [p[4], "", "post", "", "", "", "", "", "", ""],  # 7: no such channel
            [p[5], "", "counter", "", "", "", "", "李四", p[5], "本人"],  # 8: proxy is resident
            [p[6], "", "counter", "", "", "x" * 501, "", "李四", "", ""],  # 9: note, proxy id
        ],
    )
    report = _import(path, clerk, skip_bad=True)
    assert _refused(report) == {
        (2, "mailing_address"),
        (3, "recipient_phone"),
        (4, "recipient_phone"),
        (5, "birth_certificate_number"),
        (5, "channel"),
        (6, "channel"),
        (7, "channel"),
        (8, "proxy_id_number"),
        (9, "note"),
        (9, "proxy_id_number"),
    }
    assert report.imported == 0
    assert report.written  # skip-bad: nothing good to write is still a finished import


def test_duplicates_in_the_file_are_refused_after_the_first(
    session_factory: sessionmaker[Session],
    session: Session,
    clerk: Actor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importing, "BATCH", 2)  # the repeat falls in another batch
    first, second = make_resident(session), make_resident(session)
    session.commit()
    path = _write_csv(
        tmp_path / "dup.csv",
        ["id_number", "channel"],
        [
            [first.id_number, "counter"],
            [second.id_number, "counter"],
            [" " + first.id_number.lower() + " ", "instant"],
        ],
    )
    report = _import(path, clerk, skip_bad=True)
    assert [(e.row, e.field, e.message) for e in report.errors] == [
        (4, "id_number", "Same ID number as row 2 of this file")
    ]
    assert report.errors[0].template == "Same ID number as row {first} of this file"
    assert {a.resident_id: a.channel for a in _applications(session)} == {
        first.id: "counter",
        second.id: "counter",
    }


def test_skip_bad_writes_only_the_good_rows(
    session_factory: sessionmaker[Session],
    session: Session,
    clerk: Actor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importing, "BATCH", 3)
    people = [make_resident(session) for _ in range(7)]
    session.commit()
    rows = [[r.id_number, "counter"] for r in people]
    rows[1][1] = "teleport"
    rows[4][0] = "123"
    path = _write_csv(tmp_path / "mixed.csv", ["id_number", "channel"], rows)
    progress: list[tuple[int, int | None, str]] = []
    report = _import(
        path, clerk, skip_bad=True, progress=lambda d, t, s: progress.append((d, t, s))
    )
    assert (report.rows, report.imported, report.rejected_rows, report.written) == (7, 5, 2, True)
    assert _refused(report) == {(3, "channel"), (6, "id_number")}
    written = {a.resident_id for a in _applications(session)}
    assert written == {people[i].id for i in (0, 2, 3, 5, 6)}
    assert progress[-1] == (5, 5, "writing")
    assert (7, 7, "checking") in progress


def test_region_scope_an_other_county_reads_as_unknown(
    session_factory: sessionmaker[Session], session: Session, tmp_path: Path
) -> None:
    county_clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441625").actor()
    mine = make_resident(session, region_code="441625")
    elsewhere = make_resident(session, region_code="441602", name="孙八")
    session.commit()
    path = _write_csv(
        tmp_path / "scope.csv",
        ["id_number", "name", "channel"],
        [[mine.id_number, "", "counter"], [elsewhere.id_number, "错名", "counter"]],
    )
    report = _import(path, county_clerk, skip_bad=True)
    # Neither "not your area" nor the name check may tell the clerk the person exists.
    assert [(e.row, e.field, e.message) for e in report.errors] == [
        (3, "id_number", "No resident with this ID number in your area")
    ]
    assert [a.resident_id for a in _applications(session)] == [mine.id]


def test_a_row_refused_while_writing_takes_everything_back(
    session_factory: sessionmaker[Session],
    session: Session,
    clerk: Actor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Someone applies for a resident of the file between the check and the write: the
    second pass refuses that row, and all or nothing writes none of the others."""
    people = [make_resident(session) for _ in range(3)]
    session.commit()
    path = _write_csv(
        tmp_path / "race.csv", ["id_number", "channel"], [[r.id_number, "counter"] for r in people]
    )
    write = importing._Run.write

    def meanwhile(run: importing._Run) -> None:
        with job() as other:
            service.apply(other, clerk, resident_id=people[1].id, channel=Channel.INSTANT)
        write(run)

    monkeypatch.setattr(importing._Run, "write", meanwhile)
    report = _import(path, clerk)
    assert not report.written
    assert [(e.row, e.field) for e in report.errors] == [(3, "id_number")]
    assert [(a.resident_id, a.channel) for a in _applications(session)] == [
        (people[1].id, "instant")
    ]


def test_a_row_refused_while_writing_is_skipped_in_skip_bad(
    session_factory: sessionmaker[Session],
    session: Session,
    clerk: Actor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    people = [make_resident(session) for _ in range(3)]
    session.commit()
    path = _write_csv(
        tmp_path / "race.csv", ["id_number", "channel"], [[r.id_number, "counter"] for r in people]
    )
    write = importing._Run.write

    def meanwhile(run: importing._Run) -> None:
        with job() as other:
            residents_service.register_death(
                other, clerk, people[0].id, dt.date(2026, 1, 2), "死亡证明 A3"
            )
        write(run)

    monkeypatch.setattr(importing._Run, "write", meanwhile)
    report = _import(path, clerk, skip_bad=True)
    assert (report.imported, report.written) == (2, True)
    assert [(e.row, e.field) for e in report.errors] == [(2, "id_number")]
    assert {a.resident_id for a in _applications(session)} == {people[1].id, people[2].id}


def test_excel_number_cells_are_refused_not_guessed(
    session_factory: sessionmaker[Session], session: Session, clerk: Actor, tmp_path: Path
) -> None:
    resident = make_resident(session)
    session.commit()
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["ID_Number", "Channel", None])
    sheet.append([resident.id_number, "counter"])
    sheet.append([float(resident.id_number[:17]), "counter"])
    path = tmp_path / "apps.xlsx"
    book.save(path)
    report = _import(path, clerk, skip_bad=True)
    assert [(e.row, e.field) for e in report.errors] == [(3, "id_number")]
    assert "15 digits" in report.errors[0].message
    assert [a.resident_id for a in _applications(session)] == [resident.id]


def test_the_header_needs_id_number_and_channel(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "h.csv", ["id_number", "mailing"], [["x", "y"]])
    with pytest.raises(ImportFileInvalid, match=r"missing column\(s\): channel.*unknown column"):
        open_table(path, importing.COLUMNS, importing.REQUIRED)


def test_only_staff_who_may_apply_can_import(
    session_factory: sessionmaker[Session], session: Session, tmp_path: Path
) -> None:
    auditor = make_staff(session, Role.DEPARTMENT_ADMIN).actor()
    session.commit()
    path = _write_csv(tmp_path / "p.csv", ["id_number", "channel"], [])
    after = last_audit_id(session)
    with pytest.raises(PermissionDenied):
        _import(path, auditor)
    [denied] = audit_entries(session, after)
    assert (denied.action, denied.outcome) == ("card_application.import", "denied")


# --- the bulk path keeps the rules of apply --------------------------------------------------


@contextmanager
def _rolled_back(session: Session) -> Iterator[Session]:
    savepoint = session.begin_nested()
    try:
        yield session
    finally:
        savepoint.rollback()


def test_apply_many_refuses_exactly_what_apply_refuses(session: Session, clerk: Actor) -> None:
    """For every kind of request, the bulk path refuses with the error apply raises first
    (and accepts what apply accepts)."""
    alive = make_resident(session)
    baby = make_resident(session, birth_date=TODAY - dt.timedelta(days=10))
    dead = make_resident(session)
    holder = make_resident(session)
    residents_service.register_death(session, clerk, dead.id, dt.date(2026, 1, 2), "死亡证明 A2")
    issued_card(session, clerk, holder.id)
    proxy = service.Proxy("李四", make_id_number("441602", dt.date(1970, 1, 1), 77), "子女")
    req = service.ApplicationRequest
    requests = [
        req(alive.id, Channel.COUNTER),
        req(alive.id, Channel.ONLINE),
        req(alive.id, Channel.ONLINE, mailing_address=ADDRESS, recipient_phone="999"),
        req(alive.id, Channel.COUNTER, recipient_phone="13812345678"),
        req(alive.id, Channel.NEWBORN, birth_certificate_number="B1"),
        req(baby.id, Channel.NEWBORN),
        req(baby.id, Channel.NEWBORN, birth_certificate_number="B2"),
        req(dead.id, Channel.COUNTER),
        req(holder.id, Channel.COUNTER),
        req(alive.id, Channel.COUNTER, proxy=proxy),
        req(alive.id, Channel.COUNTER, proxy=service.Proxy("李四", alive.id_number, "本人")),
        req(alive.id, Channel.COUNTER, proxy=service.Proxy("", proxy.id_number, "子女")),
        req(10**9, Channel.COUNTER),
    ]
    for request in requests:
        fields = {f.name: getattr(request, f.name) for f in dataclasses.fields(request)}
        with _rolled_back(session):
            try:
                service.apply(session, clerk, **fields)
                expected: tuple[type, str] | None = None
            except YikatongError as exc:  # what apply raises is what the bulk path must say
                expected = (type(exc), exc.detail)
        with _rolled_back(session):
            outcome = service.apply_many(session, clerk, [request])
            first = outcome.refused[0][0] if 0 in outcome.refused else None
        assert (None if first is None else (type(first), first.detail)) == expected, request
        assert (0 in outcome.created) is (expected is None)


def test_apply_many_second_request_for_a_resident_is_a_duplicate(
    session: Session, clerk: Actor
) -> None:
    resident = make_resident(session)
    outcome = service.apply_many(
        session,
        clerk,
        [
            service.ApplicationRequest(resident.id, Channel.COUNTER),
            service.ApplicationRequest(resident.id, Channel.INSTANT),
        ],
    )
    assert list(outcome.created) == [0]
    assert [type(e) for e in outcome.refused[1]] == [service.DuplicateApplication]


def test_apply_many_dry_run_writes_nothing(session: Session, clerk: Actor) -> None:
    resident = make_resident(session)

    def count() -> int:
        return session.scalar(select(func.count()).select_from(CardApplication)) or 0

    before = count()
    outcome = service.apply_many(
        session, clerk, [service.ApplicationRequest(resident.id, Channel.COUNTER)], write=False
    )
    assert (outcome.created, outcome.refused, count()) == ({}, {}, before)
