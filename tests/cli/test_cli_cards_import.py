"""`yikatong cards import`: batch applications from a file, with the exit status, the table of
refused rows and the --report file an operator relies on."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from tests.factories import make_resident
from yikatong.cards.models import CardApplication
from yikatong.cli import app

runner = CliRunner()


@pytest.fixture
def cli_db(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """CLI jobs open sessions from the global factory, which the fixture points at the test
    transaction."""
    return session_factory


def _csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id_number", "channel", "mailing_address"])
        writer.writerows(rows)
    return path


def _applied(session: Session) -> set[int]:
    session.expire_all()
    return set(session.scalars(select(CardApplication.resident_id)))


def test_good_file_is_applied(
    cli_db: sessionmaker[Session], session: Session, tmp_path: Path
) -> None:
    people = [make_resident(session) for _ in range(3)]
    session.commit()
    path = _csv(tmp_path / "ok.csv", [[p.id_number, "counter", ""] for p in people])
    result = runner.invoke(app, ["cards", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "3 rows read, 3 imported, 0 refused" in result.output
    assert _applied(session) == {p.id for p in people}


def test_a_bad_row_refuses_the_file_and_reports_it(
    cli_db: sessionmaker[Session], session: Session, tmp_path: Path
) -> None:
    good, bad = make_resident(session), make_resident(session)
    session.commit()
    path = _csv(
        tmp_path / "bad.csv", [[good.id_number, "counter", ""], [bad.id_number, "online", ""]]
    )
    report = tmp_path / "report.csv"
    result = runner.invoke(app, ["cards", "import", str(path), "--report", str(report)])
    assert result.exit_code == 1, result.output
    assert "nothing was imported" in result.output
    assert "mailing_address" in result.output
    assert _applied(session) == set()
    with report.open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert rows == [
        {
            "row": "3",
            "field": "mailing_address",
            "message": "Online applications need a mailing address",
        }
    ]


def test_skip_bad_imports_the_good_rows_with_exit_status_2(
    cli_db: sessionmaker[Session], session: Session, tmp_path: Path
) -> None:
    good, bad = make_resident(session), make_resident(session)
    session.commit()
    path = _csv(
        tmp_path / "mixed.csv", [[good.id_number, "counter", ""], [bad.id_number, "car", ""]]
    )
    result = runner.invoke(app, ["cards", "import", str(path), "--skip-bad"])
    assert result.exit_code == 2, result.output
    assert "2 rows read, 1 imported, 1 refused" in result.output
    assert _applied(session) == {good.id}


def test_an_unreadable_file_is_refused_whole(cli_db: sessionmaker[Session], tmp_path: Path) -> None:
    path = tmp_path / "wrong.csv"
    path.write_text("number,channel\n1,counter\n", encoding="utf-8")
    report = tmp_path / "r.csv"
    result = runner.invoke(app, ["cards", "import", str(path), "--report", str(report)])
    assert result.exit_code == 1
    assert "missing column(s): id_number" in result.output
    assert "header" in report.read_text(encoding="utf-8-sig")
