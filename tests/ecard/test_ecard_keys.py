"""Platform signing keys for QR codes: publication, rotation, revocation, the CLI."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from tests.ecard.conftest import Holder
from yikatong.cli import app as cli
from yikatong.crypto.keystore import KeyRing, get_keyring, reset_keyring_cache
from yikatong.crypto.sm2 import SM2PublicKey
from yikatong.db import utcnow
from yikatong.ecard import qr, service
from yikatong.ecard.errors import QrExpired, QrUnknownKey
from yikatong.ecard.models import QrNonce
from yikatong.ecard.qr import Purpose
from yikatong.kit.actor import Actor

IDENTITY = Purpose.IDENTITY
runner = CliRunner()


def code_at(holder: Holder, session: Session, moment: dt.datetime) -> service.IssuedCode:
    return service.issue_code(session, holder.actor, holder.resident.id, IDENTITY, now=moment)


def test_the_key_in_force_is_published(private_keyring: KeyRing) -> None:
    [key] = service.published_keys()
    assert key.key_id == 1
    assert key.state == "active"
    assert key.valid_until is None
    assert key.public_key == private_keyring.platform_signing_key.public_key()


def test_rotation_keeps_old_codes_valid_until_they_expire(
    session: Session, holder: Holder, clerk: Actor, private_keyring: KeyRing
) -> None:
    start = utcnow()
    old = code_at(holder, session, start)
    old_unused = code_at(holder, session, start)
    assert old.key_id == 1

    assert private_keyring.rotate_signing_key() == 2
    moment = utcnow()
    new = code_at(holder, session, moment)
    assert new.key_id == 2

    published = {key.key_id: key for key in service.published_keys(moment)}
    assert published[1].state == "retired"
    assert published[1].valid_until is not None
    assert published[1].valid_until >= moment + service.RETIRED_KEY_GRACE - dt.timedelta(seconds=1)
    assert published[2].state == "active"

    # Online and offline, the code signed by the previous key still verifies ...
    assert service.verify_online(session, clerk, old.text, IDENTITY, now=moment).key_id == 1
    offline = qr.trusted_keys(published.values(), moment)
    assert qr.verify_offline(old_unused.text, offline, moment, IDENTITY).key_id == 1
    assert service.verify_online(session, clerk, new.text, IDENTITY, now=moment).key_id == 2
    # ... until it expires,
    expiry = old_unused.expires_at + dt.timedelta(seconds=qr.CLOCK_SKEW)
    with pytest.raises(QrExpired):
        service.verify_online(session, clerk, old_unused.text, IDENTITY, now=expiry)
    # and once the grace period is over the old key is no longer published or trusted.
    later = moment + service.RETIRED_KEY_GRACE + dt.timedelta(minutes=1)
    assert [key.key_id for key in service.published_keys(later)] == [2]
    with pytest.raises(QrUnknownKey):
        service.verify_online(session, clerk, old_unused.text, IDENTITY, now=later)


def test_scheduled_rotation_publishes_the_key_before_it_signs(
    session: Session, holder: Holder, clerk: Actor, private_keyring: KeyRing
) -> None:
    now = utcnow()
    takeover = now + dt.timedelta(hours=6)
    private_keyring.rotate_signing_key(takeover)
    published = {key.key_id: key for key in service.published_keys(now)}
    assert published[2].state == "pending"
    assert published[1].state == "active"
    assert code_at(holder, session, now).key_id == 1
    after = takeover + dt.timedelta(seconds=1)
    code = code_at(holder, session, after)
    assert code.key_id == 2
    assert service.verify_online(session, clerk, code.text, IDENTITY, now=after).key_id == 2
    # A terminal that synced before the take-over already holds the new key.
    offline = qr.trusted_keys(service.published_keys(now), after)
    assert qr.verify_offline(code.text, offline, after, IDENTITY).key_id == 2


def test_a_revoked_key_is_refused_at_once(
    session: Session, holder: Holder, clerk: Actor, private_keyring: KeyRing
) -> None:
    old = code_at(holder, session, utcnow())
    private_keyring.rotate_signing_key()
    private_keyring.revoke_signing_key(1)
    assert [key.key_id for key in service.published_keys()] == [2]
    with pytest.raises(QrUnknownKey):
        service.verify_online(session, clerk, old.text, IDENTITY)


def test_other_processes_see_the_rotation_after_reloading(private_keyring: KeyRing) -> None:
    private_keyring.rotate_signing_key()
    reset_keyring_cache()
    reloaded = get_keyring()
    assert reloaded is not private_keyring
    assert reloaded.active_signing_key()[0] == 2
    assert [key.key_id for key in service.published_keys()] == [1, 2]


def test_keys_endpoint_is_public_and_usable_offline(
    client: TestClient, session: Session, holder: Holder, private_keyring: KeyRing
) -> None:
    private_keyring.rotate_signing_key(utcnow() + dt.timedelta(hours=1))
    res = client.get("/api/v1/ecard/keys")
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["code_prefix"] == "YKT1:"
    assert body["code_version"] == 1
    assert body["signing_context"] == "YKT-ECARD-QR"
    assert body["signer_id"] == "1234567812345678"
    assert body["max_lifetime_seconds"] == qr.MAX_LIFETIME
    assert [(k["key_id"], k["state"]) for k in body["keys"]] == [(1, "active"), (2, "pending")]
    for key in body["keys"]:
        assert key["algorithm"] == "SM2"
        assert len(key["public_key"]) == 130
        assert key["public_key"].startswith("04")
    # A terminal builds its key set from the JSON alone and verifies a code offline.
    now = utcnow()
    published = [
        qr.PublishedKey(
            k["key_id"],
            SM2PublicKey.from_bytes(bytes.fromhex(k["public_key"])),
            dt.datetime.fromisoformat(k["valid_from"]),
            dt.datetime.fromisoformat(k["valid_until"]) if k["valid_until"] else None,
            k["state"],
        )
        for k in body["keys"]
    ]
    text = code_at(holder, session, now).text
    verified = qr.verify_offline(text, qr.trusted_keys(published, now), now, IDENTITY)
    assert verified.token == holder.card.token


def test_cli_lists_rotates_and_revokes(
    private_keyring: KeyRing, session_factory: sessionmaker[Session]
) -> None:
    listed = runner.invoke(cli, ["ecard", "keys"])
    assert listed.exit_code == 0, listed.output
    assert "active" in listed.output

    rotated = runner.invoke(cli, ["ecard", "rotate-key"])
    assert rotated.exit_code == 0, rotated.output
    assert "signing key v2 added" in rotated.output
    again = runner.invoke(cli, ["ecard", "rotate-key", "--activate-in", "0"])
    assert again.exit_code == 1
    assert "pending" in again.output

    refused = runner.invoke(cli, ["ecard", "revoke-key", "1"])
    assert refused.exit_code == 1
    assert "in force" in refused.output
    withdrawn = runner.invoke(cli, ["ecard", "revoke-key", "2"])
    assert withdrawn.exit_code == 0, withdrawn.output
    assert get_keyring().active_signing_key()[0] == 1

    with session_factory() as s:
        s.add(QrNonce(nonce=b"x" * 12, expires_at=utcnow() - dt.timedelta(minutes=5)))
        s.commit()
    pruned = runner.invoke(cli, ["ecard", "prune-nonces"])
    assert pruned.exit_code == 0, pruned.output
    assert "removed 1 expired nonce" in pruned.output
