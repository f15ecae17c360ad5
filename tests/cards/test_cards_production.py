"""Factory production: instruction file out, result file in; bad rows reported, none lost."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from tests.factories import make_resident
from yikatong.cards import production, repository
from yikatong.cards import service as cards
from yikatong.cards.models import ApplicationStatus, CardState, Channel
from yikatong.cli import app
from yikatong.kit.actor import Actor


def _checked(session: Session, clerk: Actor, channel: Channel = Channel.COUNTER) -> int:
    resident = make_resident(session, region_code="441625")
    application = cards.apply(
        session,
        clerk,
        resident_id=resident.id,
        channel=channel,
        mailing_address="河源市东源县" if channel is Channel.ONLINE else None,
    )
    cards.advance(session, clerk, application.id, ApplicationStatus.CHECKED)
    return application.id


def test_export_then_import_with_bad_rows(session: Session) -> None:
    operator = Actor.system("tests", region_code="441600")
    counter_app = _checked(session, operator)
    online_app = _checked(session, operator, Channel.ONLINE)
    failing_app = _checked(session, operator)
    _batch, rows = production.export_batch(session, operator)
    assert {int(r["application_id"]) for r in rows} >= {counter_app, online_app, failing_app}
    numbers = {int(r["application_id"]): r["card_number"] for r in rows}
    text = production.write_csv(rows, production.INSTRUCTION_COLUMNS)
    assert text.splitlines()[0].startswith("batch,application_id,card_number")
    result = "\n".join(
        [
            "card_number,result,reason,tracking_number",
            f"{numbers[counter_app]},ok,,",
            f"{numbers[online_app]},ok,,SF100200300",
            f"{numbers[failing_app]},failed,chip personalisation error,",
            "Z00000000,ok,,",  # unknown card
            f"{numbers[counter_app]},ok,,",  # twice in the file
            f"{numbers[failing_app].lower()},maybe,,",  # bad result
        ]
    )
    report = production.import_results(session, operator, production.parse_result_file(result))
    assert (report.ready, report.mailed, report.rejected) == (1, 1, 1)
    assert [e.line for e in report.errors] == [5, 6, 7]
    assert "twice" in report.errors[1].message
    card = repository.card_by_number(session, numbers[counter_app])
    assert card is not None
    assert card.state == CardState.READY
    failed = repository.card_by_number(session, numbers[failing_app])
    assert failed is not None
    assert failed.state == CardState.CANCELLED
    online = repository.applications_of(session, failed.resident_id)[0]
    assert online.status == ApplicationStatus.REJECTED


def test_result_file_without_required_columns_changes_nothing(session: Session) -> None:
    import pytest

    from yikatong.errors import InvalidInput

    with pytest.raises(InvalidInput, match="result"):
        list(production.parse_result_file("card_number,status\nA00000001,ok\n"))


def test_cli_round_trip(
    session_factory: sessionmaker[Session], session: Session, tmp_path: Path
) -> None:
    operator = Actor.system("tests", region_code="441600")
    application_id = _checked(session, operator)
    session.commit()
    runner = CliRunner()
    out = tmp_path / "batch.csv"
    res = runner.invoke(app, ["cards", "production", "export", str(out)])
    assert res.exit_code == 0, res.output
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    number = next(r["card_number"] for r in rows if int(r["application_id"]) == application_id)
    results = tmp_path / "results.csv"
    results.write_text(f"card_number,result\n{number},ok\nNOPE,ok\n", encoding="utf-8")
    errors = tmp_path / "errors.csv"
    res = runner.invoke(
        app, ["cards", "production", "import", str(results), "--errors", str(errors)]
    )
    assert res.exit_code == 2, res.output
    assert "ready 1" in res.output
    assert "NOPE" in errors.read_text(encoding="utf-8")
    report_csv = tmp_path / "report.csv"
    report = runner.invoke(app, ["cards", "report", "--out", str(report_csv)])
    assert report.exit_code == 0, report.output
    table = list(csv.DictReader(io.StringIO(report_csv.read_text(encoding="utf-8"))))
    dongyuan = next(r for r in table if r["region_code"] == "441625")
    assert int(dongyuan["ready"]) >= 1
