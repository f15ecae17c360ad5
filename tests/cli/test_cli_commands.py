"""The operators' CLI: staff accounts, audit verification, demo seeding, key rotation."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from yikatong.cli import app
from yikatong.staff.models import StaffMember

runner = CliRunner()


@pytest.fixture
def cli_db(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """CLI jobs open sessions from the global factory, which the fixture points at the test
    transaction (their commits become savepoints, rolled back after the test)."""
    return session_factory


def test_staff_create_prints_enrolment(cli_db: sessionmaker[Session], session: Session) -> None:
    result = runner.invoke(
        app,
        [
            "staff",
            "create",
            "cli.clerk",
            "--name",
            "命令行",
            "--role",
            "counter_clerk",
            "--region",
            "441625",
            "--password",
            "Cli2026password",
            "--no-show-qr",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "otpauth://totp/yikatong:cli.clerk" in result.output
    member = session.query(StaffMember).filter_by(username="cli.clerk").one()
    assert member.region_code == "441625"


def test_staff_create_reports_bad_input(cli_db: sessionmaker[Session]) -> None:
    result = runner.invoke(
        app,
        [
            "staff",
            "create",
            "cli.weak",
            "--name",
            "弱",
            "--role",
            "auditor",
            "--password",
            "short",
            "--no-show-qr",
        ],
    )
    assert result.exit_code == 1
    assert "invalid_input" in result.output
    assert "password" in result.output


def test_staff_otp_prints_a_code(cli_db: sessionmaker[Session]) -> None:
    runner.invoke(
        app,
        [
            "staff",
            "create",
            "otp.user",
            "--name",
            "码",
            "--role",
            "auditor",
            "--password",
            "Cli2026password",
            "--no-show-qr",
        ],
    )
    result = runner.invoke(app, ["staff", "otp", "otp.user"])
    assert result.exit_code == 0
    assert re.fullmatch(r"\d{6}\n", result.output)


def test_audit_verify_passes_then_names_the_tampered_entry(
    cli_db: sessionmaker[Session], session: Session
) -> None:
    runner.invoke(
        app,
        [
            "staff",
            "create",
            "audit.user",
            "--name",
            "审",
            "--role",
            "auditor",
            "--password",
            "Cli2026password",
            "--no-show-qr",
        ],
    )
    ok = runner.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("DROP TRIGGER audit_log_append_only ON audit_log"))
    else:
        session.execute(text("DROP TRIGGER audit_log_no_update"))
    target = session.execute(text("SELECT max(id) FROM audit_log")).scalar_one()
    session.execute(
        text("UPDATE audit_log SET actor_name = 'mallory' WHERE id = :i"), {"i": target}
    )
    broken = runner.invoke(app, ["audit", "verify"])
    assert broken.exit_code == 1
    assert f"#{target} modified" in broken.output


def test_demo_seed_is_all_or_nothing_and_idempotent(
    cli_db: sessionmaker[Session], session: Session
) -> None:
    first = runner.invoke(app, ["demo", "seed", "--residents", "300", "--if-empty"])
    assert first.exit_code == 0, first.output
    assert "demo logins" in first.output
    count = session.execute(text("SELECT count(*) FROM residents")).scalar_one()
    assert count == 300
    again = runner.invoke(app, ["demo", "seed", "--residents", "300", "--if-empty"])
    assert "nothing to do" in again.output
    assert session.execute(text("SELECT count(*) FROM residents")).scalar_one() == 300


def test_keys_status_and_rotate(
    cli_db: sessionmaker[Session], tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from yikatong.crypto.keystore import reset_keyring_cache
    from yikatong.settings import get_settings

    monkeypatch.setenv("YIKATONG_KEYSTORE_PATH", str(tmp_path))
    get_settings.cache_clear()
    reset_keyring_cache()
    try:
        status = runner.invoke(app, ["keys", "status"])
        assert status.exit_code == 0, status.output
        assert "master key id" in status.output
        rotated = runner.invoke(app, ["keys", "rotate"])
        assert rotated.exit_code == 0, rotated.output
        assert "active data key is now v2" in rotated.output
        bad = runner.invoke(app, ["keys", "rewrap", "--new-master-key", "abc"])
        assert bad.exit_code == 1
        assert "32 hex digits" in bad.output
        rewrapped = runner.invoke(app, ["keys", "rewrap", "--new-master-key", "0f" * 16])
        assert rewrapped.exit_code == 0, rewrapped.output
        # The development ring rewrote its master-key file: a fresh load still opens it.
        reset_keyring_cache()
        again = runner.invoke(app, ["keys", "status"])
        assert again.exit_code == 0, again.output
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        reset_keyring_cache()
