"""`yikatong residents import`: every row checked, all-or-nothing or --skip-bad, a per-row
report; CSV (BOM tolerated) and Excel; and `yikatong residents export`."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from tests.factories import make_resident
from tests.residents.helpers import audit_entries, audit_text, last_audit_id, new_id_number
from yikatong.cli import app
from yikatong.kit.actor import Actor
from yikatong.residents import importing, repository
from yikatong.residents.errors import ImportFileInvalid
from yikatong.residents.models import Resident
from yikatong.residents.validation import china_today

runner = CliRunner()
HEADER = ["id_number", "name", "phone", "address", "region_code", "town_code", "categories"]


@pytest.fixture
def cli_db(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """CLI jobs open sessions from the global factory, which points at the test transaction."""
    return session_factory


def _row(**overrides: str) -> list[str]:
    values = {
        "id_number": new_id_number("441625", dt.date(1980, 5, 5)),
        "name": "陈大文",
        "phone": "13700000001",
        "address": "广东省河源市东源县仙塘镇人民路2号",
        "region_code": "441625",
        "town_code": "441625100",
        "categories": "",
    }
    values.update(overrides)
    return [values[c] for c in HEADER]


def _csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    # Excel's "CSV UTF-8" writes a byte order mark and CRLF line ends.
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _xlsx(path: Path, rows: list[list[object]], header: list[str] = HEADER) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def _count(session: Session) -> int:
    return len(session.scalars(select(Resident.id)).all())


def _import(path: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["residents", "import", str(path), *args])
    return result.exit_code, result.output


def _malformed(session: Session) -> tuple[list[list[str]], dict[int, tuple[str, str]]]:
    """Rows 2-8 of a file with one of each mistake, and the (field, message part) expected."""
    registered = make_resident(session, region_code="441625")
    good_a, good_b, twice = (new_id_number("441625", dt.date(1975, 3, 3)) for _ in range(3))
    bad_check = new_id_number()
    bad_check = bad_check[:17] + ("0" if bad_check[17] != "0" else "1")
    rows = [
        _row(id_number=good_a, categories="student; disabled"),  # row 2
        _row(id_number=bad_check),  # row 3
        _row(region_code="441699", town_code=""),  # row 4
        _row(phone="1234567"),  # row 5
        _row(id_number=twice),  # row 6
        _row(id_number=twice.lower(), name="陈小文"),  # row 7: same person again
        _row(id_number=registered.id_number),  # row 8: already in the registry
        _row(id_number=good_b, categories="elderly"),  # row 9
    ]
    expected = {
        3: ("id_number", "check character"),
        4: ("region_code", "441699"),
        5: ("phone", "mobile"),
        7: ("id_number", "row 6"),
        8: ("id_number", "Already registered"),
        9: ("categories", "birth date"),
    }
    return rows, expected


def test_good_csv_is_imported_with_categories(
    cli_db: sessionmaker[Session], session: Session, tmp_path: Path
) -> None:
    numbers = [new_id_number("441602", dt.date(2008, 9, 1)) for _ in range(3)]
    # Columns in another order, a blank line, full-width semicolon between categories.
    header = ["name", *HEADER[:1], *HEADER[2:]]
    rows = [
        ["林一", numbers[0], "13700000011", "", "441602", "", "student"],
        ["", "", "", "", "", "", ""],
        ["林二", numbers[1], "", "源城区某路", "441602", "", "student；disabled"],
        ["林三", numbers[2], "", "", "441625", "441625100", ""],
    ]
    path = _csv(tmp_path / "good.csv", rows, header)
    before, after = _count(session), last_audit_id(session)
    code, output = _import(path)
    assert code == 0, output
    assert "3 rows read, 3 imported, 0 refused" in output
    assert _count(session) == before + 3
    second = repository.find_by_id_number(session, numbers[1])
    assert second is not None
    assert second.name == "林二"
    assert second.birth_date == dt.date(2008, 9, 1)
    assert sorted(c.category for c in second.categories) == ["disabled", "student"]
    assert {c.valid_from for c in second.categories} == {china_today()}
    [entry] = [e for e in audit_entries(session, after) if e.action == "resident.import"]
    assert entry.outcome == "success"
    assert entry.detail["rows"] == 3
    assert entry.detail["imported"] == 3
    assert len(entry.detail["file_sm3"]) == 64
    assert all(n not in audit_text(session, after) for n in numbers)


def test_good_xlsx_is_imported(
    cli_db: sessionmaker[Session], session: Session, tmp_path: Path
) -> None:
    number = new_id_number("441621", dt.date(1999, 12, 31))
    # Excel hands integers back for phone and region cells typed as numbers: that is fine.
    path = _xlsx(
        tmp_path / "good.xlsx",
        [[number, "黄小梅", 13700000022, None, 441621, None, "migrant_worker"]],
    )
    code, output = _import(path)
    assert code == 0, output
    resident = repository.find_by_id_number(session, number)
    assert resident is not None
    assert (resident.phone, resident.region_code, resident.sex) == ("13700000022", "441621", "male")


def test_malformed_file_all_or_nothing_writes_nothing(
    cli_db: sessionmaker[Session], session: Session, tmp_path: Path
) -> None:
    rows, expected = _malformed(session)
    path = _csv(tmp_path / "bad.csv", rows)
    report = tmp_path / "errors.csv"
    before, after = _count(session), last_audit_id(session)
    code, output = _import(path, "--report", str(report))
    assert code == 1, output
    assert "nothing was imported" in output
    assert _count(session) == before
    with report.open(encoding="utf-8-sig") as fh:
        found = list(csv.DictReader(fh))
    assert {int(r["row"]) for r in found} == set(expected)
    for r in found:
        field, part = expected[int(r["row"])]
        assert r["field"] == field
        assert part in r["message"], r
    [entry] = [e for e in audit_entries(session, after) if e.action == "resident.import"]
    assert (entry.outcome, entry.detail["imported"], entry.detail["rejected_rows"]) == (
        "failed",
        0,
        6,
    )


def test_malformed_file_skip_bad_writes_the_good_rows(
    cli_db: sessionmaker[Session], session: Session, tmp_path: Path
) -> None:
    rows, expected = _malformed(session)
    path = _csv(tmp_path / "bad.csv", rows)
    before = _count(session)
    code, output = _import(path, "--skip-bad")
    assert code == 2, output
    assert "8 rows read, 2 imported, 6 refused" in output
    for row in expected:
        assert f"│ {row} " in output or f"| {row} " in output, output
    assert _count(session) == before + 2
    # The first of the two rows with the same number was imported, the second refused.
    twice = rows[4][0]
    resident = repository.find_by_id_number(session, twice)
    assert resident is not None
    assert resident.name == "陈大文"


def test_all_or_nothing_takes_back_batches_already_written(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importing, "BATCH", 2)
    rows = [_row() for _ in range(5)] + [_row(phone="999")]
    path = _csv(tmp_path / "late.csv", rows)
    actor = Actor.system("tests", region_code="441600")
    before = _count(session)
    table = importing.open_table(path)
    result = importing.import_residents(session, actor, table.rows)
    assert (result.rows, result.imported, result.written) == (6, 0, False)
    assert result.errors == [importing.RowError(7, "phone", result.errors[0].message)]
    assert _count(session) == before
    table = importing.open_table(path)
    result = importing.import_residents(session, actor, table.rows, skip_bad=True)
    assert (result.imported, result.rejected_rows) == (5, 1)
    assert _count(session) == before + 5


def test_rows_outside_the_city_are_refused(session: Session, tmp_path: Path) -> None:
    path = _csv(tmp_path / "elsewhere.csv", [_row(region_code="441302", town_code="")])
    table = importing.open_table(path)
    result = importing.import_residents(
        session, Actor.system("tests", region_code="441600"), table.rows, skip_bad=True
    )
    assert [(e.row, e.field) for e in result.errors] == [(2, "region_code")]
    assert result.imported == 0


@pytest.mark.parametrize(
    "header",
    [
        ["id", "name", "phone", "address", "region_code", "town_code", "categories"],
        HEADER[:-1],
        [*HEADER, "remarks"],
        [*HEADER[:-1], "name"],
    ],
)
def test_wrong_header_refuses_the_file(
    cli_db: sessionmaker[Session], session: Session, tmp_path: Path, header: list[str]
) -> None:
    path = _csv(tmp_path / "header.csv", [_row()[: len(header)]], header)
    report = tmp_path / "errors.csv"
    before = _count(session)
    code, output = _import(path, "--skip-bad", "--report", str(report))
    assert code == 1, output
    assert "header" in output
    assert _count(session) == before
    with report.open(encoding="utf-8-sig") as fh:
        [found] = list(csv.DictReader(fh))
    assert (found["row"], found["field"]) == ("1", "header")


def test_files_that_cannot_be_read(tmp_path: Path) -> None:
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes((",".join(HEADER) + "\n" + ",".join(_row()) + "\n").encode("gbk"))
    with pytest.raises(ImportFileInvalid, match="not UTF-8"):
        importing.open_table(gbk)
    old = tmp_path / "old.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(ImportFileInvalid, match=r"\.xlsx"):
        importing.open_table(old)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ImportFileInvalid, match="workbook"):
        importing.open_table(broken)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(ImportFileInvalid, match="empty"):
        importing.open_table(empty)


def test_excel_number_cells_for_id_numbers_are_refused(session: Session, tmp_path: Path) -> None:
    """Excel stores 441625198005051234 as 4.41625198005051E+17: the last digits are gone."""
    number = new_id_number()
    path = _xlsx(
        tmp_path / "numbers.xlsx",
        [[float(number[:17] + "0"), "陈大文", None, None, "441625", None, None]],
    )
    result = importing.import_residents(
        session, Actor.system("tests", region_code="441600"), importing.open_table(path).rows
    )
    assert [(e.row, e.field) for e in result.errors] == [(2, "id_number")]
    assert "format the column as text" in result.errors[0].message


def test_extra_cells_in_a_row_are_reported(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "extra.csv"
    path.write_text(",".join(HEADER) + "\n" + ",".join([*_row(), "surplus"]) + "\n", "utf-8")
    result = importing.import_residents(
        session, Actor.system("tests", region_code="441600"), importing.open_table(path).rows
    )
    assert [(e.row, e.field) for e in result.errors] == [(2, "row")]


def test_export_masks_unless_full_id_and_is_audited(
    cli_db: sessionmaker[Session], session: Session, tmp_path: Path
) -> None:
    ours = make_resident(session, region_code="441625", name="陈大文", phone="13700000031")
    make_resident(session, region_code="441602", name="陈二文")
    dead = make_resident(session, region_code="441625", name="陈三文")
    dead.status = "deceased"
    session.flush()
    masked = tmp_path / "masked.csv"
    after = last_audit_id(session)
    result = runner.invoke(
        app, ["residents", "export", "--status", "active", "--region", "441625", str(masked)]
    )
    assert result.exit_code == 0, result.output
    with masked.open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    mine = [r for r in rows if r["id"] == str(ours.id)]
    assert len(mine) == 1
    assert all(r["region_code"] == "441625" and r["status"] == "active" for r in rows)
    assert str(dead.id) not in {r["id"] for r in rows}
    assert mine[0]["id_number"] == ours.id_number[:6] + "********" + ours.id_number[-4:]
    assert (mine[0]["name"], mine[0]["phone"]) == ("陈*文", "137****0031")
    assert mine[0]["birth_date"] == "1985"
    assert ours.id_number not in masked.read_text("utf-8-sig")
    entry = audit_entries(session, after)[-1]
    assert (entry.action, entry.detail["full"], entry.detail["rows"]) == (
        "resident.export",
        False,
        len(rows),
    )

    full = tmp_path / "full.csv"
    result = runner.invoke(
        app, ["residents", "export", "--region", "441625", "--full-id", str(full)]
    )
    assert result.exit_code == 0, result.output
    assert ours.id_number in full.read_text("utf-8-sig")
    entry = audit_entries(session)[-1]
    assert (entry.action, entry.detail["full"]) == ("resident.export", True)
    assert ours.id_number not in audit_text(session, after)

    bad = runner.invoke(app, ["residents", "export", "--region", "441302", str(full)])
    assert bad.exit_code == 1
    assert "region_out_of_scope" in bad.output


def test_a_file_unreadable_part_way_imports_nothing(
    cli_db: sessionmaker[Session], session: Session, tmp_path: Path
) -> None:
    """The csv module refuses a field beyond its size limit: the file is refused as a whole,
    even with --skip-bad, and the rows before it are not kept."""
    path = _csv(tmp_path / "huge.csv", [_row(), _row(address="路" * 200_000), _row()])
    report = tmp_path / "errors.csv"
    before = _count(session)
    code, output = _import(path, "--skip-bad", "--report", str(report))
    assert code == 1, output
    assert "cannot be read after row 2" in output
    assert _count(session) == before
    with report.open(encoding="utf-8-sig") as fh:
        [found] = list(csv.DictReader(fh))
    assert (found["row"], found["field"]) == ("3", "file")
