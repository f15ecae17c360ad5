from __future__ import annotations

import datetime as dt
import json
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from yikatong.crypto import keystore
from yikatong.crypto.errors import DecryptionError, KeyStoreError
from yikatong.crypto.fields import decrypt_field, encrypt_field, needs_reencryption
from yikatong.crypto.keystore import (
    DEV_MASTER_KEY_FILE,
    DEV_SECRET_KEY_FILE,
    KEYRING_FILE,
    KeyRing,
    generate_master_key,
    get_keyring,
    master_key_id,
    parse_master_key,
    reset_keyring_cache,
    resolve_master_key,
    resolve_secret_key,
)
from yikatong.crypto.sm3 import sm3_hex
from yikatong.settings import Environment, Settings

MakeSettings = Callable[..., Settings]


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def read_ring(directory: Path) -> dict[str, object]:
    document = json.loads((directory / KEYRING_FILE).read_text())
    assert isinstance(document, dict)
    return document


def production_settings(directory: Path, master_key: str | None) -> Settings:
    if master_key is None:
        # model_construct skips the settings validator, which would already refuse a missing
        # key; this exercises the key store's own refusal.
        return Settings.model_construct(
            env=Environment.PRODUCTION, keystore_path=directory, master_key=None
        )
    return Settings(
        env=Environment.PRODUCTION,
        keystore_path=directory,
        master_key=master_key,
        secret_key="s" * 40,
        database_url="postgresql+psycopg://yikatong@localhost/yikatong",
    )


def master_of(directory: Path) -> bytes:
    return bytes.fromhex((directory / DEV_MASTER_KEY_FILE).read_text())


def write_ring(directory: Path, document: dict[str, object], *, reseal: bool) -> None:
    if reseal:
        keystore._seal(document, master_of(directory))
    (directory / KEYRING_FILE).write_text(json.dumps(document))


def test_dev_ring_is_generated_once_and_reused(keystore_dir: Path) -> None:
    first = KeyRing.load()
    assert (keystore_dir / KEYRING_FILE).exists()
    master_file = keystore_dir / DEV_MASTER_KEY_FILE
    assert master_file.exists()
    assert mode_of(master_file) == 0o600
    assert mode_of(keystore_dir / KEYRING_FILE) == 0o600
    assert mode_of(keystore_dir) == 0o700
    ring_bytes = (keystore_dir / KEYRING_FILE).read_bytes()
    master_bytes = master_file.read_bytes()

    second = KeyRing.load()
    assert second is not first
    assert (keystore_dir / KEYRING_FILE).read_bytes() == ring_bytes
    assert master_file.read_bytes() == master_bytes
    assert second.master_key_id == first.master_key_id
    assert second.data_key(1) == first.data_key(1)
    assert second.card_master_key == first.card_master_key
    assert second.index_key_for("resident.id_number") == first.index_key_for("resident.id_number")
    assert second.platform_signing_key.to_bytes() == first.platform_signing_key.to_bytes()


def test_new_ring_document_shape(keystore_dir: Path) -> None:
    ring = KeyRing.load()
    document = read_ring(keystore_dir)
    master = bytes.fromhex((keystore_dir / DEV_MASTER_KEY_FILE).read_text())
    assert document["format"] == 1
    assert document["master_key_id"] == sm3_hex(master)[:16] == ring.master_key_id
    assert document["data_keys"] == [
        {
            "version": 1,
            "wrapped": document["data_keys"][0]["wrapped"],  # type: ignore[index]
            "created_at": document["data_keys"][0]["created_at"],  # type: ignore[index]
            "state": "active",
        }
    ]
    for name in ("index_key", "platform_signing_key", "card_master_key", "mac"):
        assert isinstance(document[name], str)
    assert ring.active_version == 1
    assert len(ring.data_key(1)) == 16
    assert len(ring.card_master_key) == 16


def test_concurrent_first_use_creates_one_ring(keystore_dir: Path) -> None:
    rings: list[KeyRing] = []
    errors: list[BaseException] = []

    def load() -> None:
        try:
            rings.append(KeyRing.load())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len({ring.master_key_id for ring in rings}) == 1
    assert len({ring.data_key(1) for ring in rings}) == 1


def test_get_keyring_is_cached_per_settings(keystore_dir: Path) -> None:
    ring = get_keyring()
    assert get_keyring() is ring
    reset_keyring_cache()
    reloaded = get_keyring()
    assert reloaded is not ring
    assert reloaded.data_key(1) == ring.data_key(1)


def test_rotation_keeps_old_ciphertexts_readable(keystore_dir: Path) -> None:
    old_blob = encrypt_field("resident.phone", "13812345678")
    assert old_blob[1:3] == (1).to_bytes(2, "big")
    ring = get_keyring()
    index_key = ring.index_key_for("resident.phone")

    assert ring.rotate() == 2
    assert ring.active_version == 2
    new_blob = encrypt_field("resident.phone", "13812345678")
    assert new_blob[1:3] == (2).to_bytes(2, "big")
    assert decrypt_field("resident.phone", old_blob) == "13812345678"
    assert decrypt_field("resident.phone", new_blob) == "13812345678"
    assert needs_reencryption(old_blob)
    assert not needs_reencryption(new_blob)
    assert ring.index_key_for("resident.phone") == index_key

    states = {entry["version"]: entry["state"] for entry in ring.status()["data_keys"]}
    assert states == {1: "retired", 2: "active"}

    # What was written is what another process loads.
    reset_keyring_cache()
    reloaded = get_keyring()
    assert reloaded is not ring
    assert reloaded.active_version == 2
    assert reloaded.versions == [1, 2]
    assert decrypt_field("resident.phone", old_blob) == "13812345678"
    assert reloaded.index_key_for("resident.phone") == index_key
    assert reloaded.rotate() == 3
    assert [entry["state"] for entry in read_ring(keystore_dir)["data_keys"]] == [  # type: ignore[attr-defined]
        "retired",
        "retired",
        "active",
    ]


def test_rotation_refuses_to_overwrite_a_ring_changed_elsewhere(keystore_dir: Path) -> None:
    mine = KeyRing.load()
    theirs = KeyRing.load()
    assert theirs.rotate() == 2
    with pytest.raises(KeyStoreError, match="changed on disk"):
        mine.rotate()
    assert KeyRing.load().versions == [1, 2]  # their key survived


def test_master_key_rewrap_keeps_everything_readable(keystore_dir: Path) -> None:
    blob = encrypt_field("resident.id_number", "441602199001011234")
    ring = get_keyring()
    ring.rotate()
    newer_blob = encrypt_field("resident.id_number", "44160219900101123X")
    before = {
        "keys": [ring.data_key(v) for v in ring.versions],
        "index": ring.index_key_for("resident.id_number"),
        "card": ring.card_master_key,
        "signing": ring.platform_signing_key.to_bytes(),
    }
    old_master = master_of(keystore_dir)
    new_master = generate_master_key()

    ring.rewrap(new_master)
    assert ring.master_key_id == master_key_id(new_master)
    assert read_ring(keystore_dir)["master_key_id"] == master_key_id(new_master)
    # The development key file follows the ring, so the next start still works.
    assert (keystore_dir / DEV_MASTER_KEY_FILE).read_text().strip() == new_master.hex()

    reset_keyring_cache()
    reloaded = get_keyring()
    assert reloaded.master_key_id == master_key_id(new_master)
    assert [reloaded.data_key(v) for v in reloaded.versions] == before["keys"]
    assert reloaded.index_key_for("resident.id_number") == before["index"]
    assert reloaded.card_master_key == before["card"]
    assert reloaded.platform_signing_key.to_bytes() == before["signing"]
    assert decrypt_field("resident.id_number", blob) == "441602199001011234"
    assert decrypt_field("resident.id_number", newer_blob) == "44160219900101123X"

    # Every wrapped value changed: the old master key can unwrap none of them.
    with pytest.raises(KeyStoreError, match="does not match"):
        KeyRing.load(Settings(master_key=old_master.hex()))


def test_rewrap_with_explicit_master_key(make_settings: MakeSettings) -> None:
    first_master = generate_master_key()
    ring = KeyRing.load(make_settings(master_key=first_master.hex()))
    assert not (ring.directory / DEV_MASTER_KEY_FILE).exists()
    data_key = ring.data_key(1)
    second_master = generate_master_key()
    ring.rewrap(second_master)
    assert not (ring.directory / DEV_MASTER_KEY_FILE).exists()
    with pytest.raises(KeyStoreError, match="master key does not match the key ring"):
        KeyRing.load(make_settings(master_key=first_master.hex()))
    assert KeyRing.load(make_settings(master_key=second_master.hex())).data_key(1) == data_key


def test_rewrap_refuses_bad_or_unchanged_keys(make_settings: MakeSettings) -> None:
    master = generate_master_key()
    ring = KeyRing.load(make_settings(master_key=master.hex()))
    with pytest.raises(ValueError, match="16 bytes"):
        ring.rewrap(b"short")
    with pytest.raises(KeyStoreError, match="equals the current"):
        ring.rewrap(master)


def test_wrong_master_key_is_refused(make_settings: MakeSettings) -> None:
    KeyRing.load(make_settings(master_key=generate_master_key().hex()))
    with pytest.raises(KeyStoreError, match=r"^master key does not match the key ring$"):
        KeyRing.load(make_settings(master_key=generate_master_key().hex()))


def test_missing_dev_master_key_is_not_silently_regenerated(keystore_dir: Path) -> None:
    KeyRing.load()
    (keystore_dir / DEV_MASTER_KEY_FILE).unlink()
    with pytest.raises(KeyStoreError, match=r"dev-master\.key is missing"):
        KeyRing.load()
    assert not (keystore_dir / DEV_MASTER_KEY_FILE).exists()


def test_production_without_master_key_is_refused(keystore_dir: Path) -> None:
    with pytest.raises(KeyStoreError, match="yikatong keys init"):
        KeyRing.load(production_settings(keystore_dir, None))
    with pytest.raises(KeyStoreError, match="YIKATONG_MASTER_KEY"):
        resolve_master_key(production_settings(keystore_dir, None), create=True)
    assert not keystore_dir.exists()  # nothing was generated


def test_production_without_key_ring_is_refused(keystore_dir: Path) -> None:
    settings = production_settings(keystore_dir, generate_master_key().hex())
    with pytest.raises(KeyStoreError, match="yikatong keys init"):
        KeyRing.load(settings)
    assert not keystore_dir.exists()


def test_production_ignores_a_dev_master_key_file(keystore_dir: Path) -> None:
    KeyRing.load()  # leaves dev-master.key behind
    with pytest.raises(KeyStoreError, match="yikatong keys init"):
        KeyRing.load(production_settings(keystore_dir, None))


def test_production_init_then_load(keystore_dir: Path) -> None:
    master = generate_master_key().hex()
    created = KeyRing.init(production_settings(keystore_dir, master))
    assert not (keystore_dir / DEV_MASTER_KEY_FILE).exists()
    loaded = KeyRing.load(production_settings(keystore_dir, master))
    assert loaded.data_key(1) == created.data_key(1)
    with pytest.raises(KeyStoreError, match="does not match"):
        KeyRing.load(production_settings(keystore_dir, generate_master_key().hex()))


def test_init_refuses_to_overwrite_unless_forced(keystore_dir: Path) -> None:
    original = KeyRing.init()
    with pytest.raises(KeyStoreError, match="already exists"):
        KeyRing.init()
    assert KeyRing.load().data_key(1) == original.data_key(1)

    replaced = KeyRing.init(force=True)
    assert replaced.data_key(1) != original.data_key(1)
    backups = list(keystore_dir.glob("keyring.*.json"))
    assert len(backups) == 1
    assert (
        json.loads(backups[0].read_text())["data_keys"][0]["wrapped"]
        == (original._document["data_keys"][0]["wrapped"])
    )


def test_edited_metadata_fails_the_integrity_check(keystore_dir: Path) -> None:
    KeyRing.load().rotate()
    document = read_ring(keystore_dir)
    document["data_keys"][0]["state"] = "active"  # type: ignore[index]
    document["data_keys"][1]["state"] = "retired"  # type: ignore[index]
    write_ring(keystore_dir, document, reseal=False)
    with pytest.raises(KeyStoreError, match="integrity"):
        KeyRing.load()


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("index_key", "card_master_key"),
        ("card_master_key", "index_key"),
        ("platform_signing_key", "index_key"),
    ],
)
def test_blobs_swapped_between_slots_are_refused(
    keystore_dir: Path, first: str, second: str
) -> None:
    KeyRing.load()
    document = read_ring(keystore_dir)
    document[first] = document[second]
    # Even with a valid MAC (an attacker holding the master key's MAC key, or a bug), the
    # associated data bound into each wrapped value refuses the swap.
    write_ring(keystore_dir, document, reseal=True)
    with pytest.raises(KeyStoreError, match="cannot unwrap"):
        KeyRing.load()


def test_data_keys_swapped_between_versions_are_refused(keystore_dir: Path) -> None:
    KeyRing.load().rotate()
    document = read_ring(keystore_dir)
    entries = document["data_keys"]
    entries[0]["wrapped"], entries[1]["wrapped"] = (  # type: ignore[index]
        entries[1]["wrapped"],  # type: ignore[index]
        entries[0]["wrapped"],  # type: ignore[index]
    )
    write_ring(keystore_dir, document, reseal=True)
    with pytest.raises(KeyStoreError, match="cannot unwrap the data key v1"):
        KeyRing.load()


@pytest.mark.parametrize(
    "corruption",
    ["not json", "[]", '{"format": 2}'],
)
def test_malformed_ring_is_refused(keystore_dir: Path, corruption: str) -> None:
    KeyRing.load()
    (keystore_dir / KEYRING_FILE).write_text(corruption)
    with pytest.raises(KeyStoreError, match="malformed"):
        KeyRing.load()


def test_two_active_keys_are_refused_even_when_sealed(keystore_dir: Path) -> None:
    KeyRing.load().rotate()
    document = read_ring(keystore_dir)
    document["data_keys"][0]["state"] = "active"  # type: ignore[index]
    write_ring(keystore_dir, document, reseal=True)
    with pytest.raises(KeyStoreError, match="exactly one active"):
        KeyRing.load()


def test_status_reveals_no_key_material(keystore_dir: Path) -> None:
    ring = get_keyring()
    ring.rotate()
    status = ring.status()
    text = json.dumps(status)
    secrets = [
        master_of(keystore_dir),
        ring.data_key(1),
        ring.data_key(2),
        ring.card_master_key,
        ring._index_key,
        ring.index_key_for("resident.id_number"),
        ring.platform_signing_key.to_bytes(),
    ]
    for secret in secrets:
        assert secret.hex() not in text
        assert secret.hex().upper() not in text
    for wrapped in read_ring(keystore_dir)["data_keys"]:  # type: ignore[attr-defined]
        assert wrapped["wrapped"] not in text
    assert status["master_key_id"] == ring.master_key_id
    assert status["active_version"] == 2
    assert [entry["version"] for entry in status["data_keys"]] == [1, 2]
    assert all(set(entry) == {"version", "state", "created_at"} for entry in status["data_keys"])
    assert (
        status["platform_public_key_fingerprint"]
        == ring.platform_signing_key.public_key().fingerprint()
    )
    assert ring.master_key_id in repr(ring)
    assert master_of(keystore_dir).hex() not in repr(ring)


def test_unknown_data_key_version(keystore_dir: Path) -> None:
    ring = KeyRing.load()
    with pytest.raises(KeyStoreError, match="version 9"):
        ring.data_key(9)
    blob = bytearray(encrypt_field("f", "v"))
    blob[1:3] = (9).to_bytes(2, "big")
    with pytest.raises(DecryptionError, match="version 9"):
        decrypt_field("f", bytes(blob))


def test_platform_signing_key_signs(keystore_dir: Path) -> None:
    signer = KeyRing.load().platform_signing_key
    signature = signer.sign(b"receipt")
    KeyRing.load().platform_signing_key.public_key().verify(signature, b"receipt")


def test_index_keys_differ_by_field(keystore_dir: Path) -> None:
    ring = KeyRing.load()
    assert ring.index_key_for("a") != ring.index_key_for("b")
    with pytest.raises(ValueError, match="field name"):
        ring.index_key_for("")


def test_dev_secret_key_is_generated_once(keystore_dir: Path) -> None:
    secret = resolve_secret_key(Settings())
    assert len(secret) == 32
    assert mode_of(keystore_dir / DEV_SECRET_KEY_FILE) == 0o600
    assert resolve_secret_key(Settings()) == secret


def test_configured_secret_key_wins(make_settings: MakeSettings) -> None:
    settings = make_settings(secret_key="x" * 40)
    assert resolve_secret_key(settings) == b"x" * 40
    assert not (settings.keystore_path / DEV_SECRET_KEY_FILE).exists()


def test_production_never_generates_a_secret_key(keystore_dir: Path) -> None:
    settings = Settings.model_construct(env=Environment.PRODUCTION, keystore_path=keystore_dir)
    with pytest.raises(KeyStoreError, match="YIKATONG_SECRET_KEY"):
        resolve_secret_key(settings)
    assert not keystore_dir.exists()


@pytest.mark.parametrize("text", ["", "00", "zz" * 16, "00" * 17])
def test_master_key_must_be_32_hex_digits(text: str) -> None:
    with pytest.raises(KeyStoreError, match="32 hex digits"):
        parse_master_key(text)


def test_master_key_parses_with_surrounding_whitespace() -> None:
    assert parse_master_key(" " + "ab" * 16 + "\n") == bytes.fromhex("ab" * 16)


def test_corrupt_dev_master_key_file_is_refused(keystore_dir: Path) -> None:
    KeyRing.load()
    (keystore_dir / DEV_MASTER_KEY_FILE).write_text("not hex")
    with pytest.raises(KeyStoreError, match="corrupt"):
        KeyRing.load()


# --- versioned platform signing keys ----------------------------------------------------------


def test_a_ring_without_signing_key_versions_has_one_key(keystore_dir: Path) -> None:
    ring = KeyRing.load()
    assert "signing_keys" not in read_ring(keystore_dir)  # the format older rings have
    [key] = ring.signing_keys
    assert key.version == 1
    assert key.state() == "active"
    assert key.retired_at is None
    assert key.public_key == ring.platform_signing_key.public_key()
    assert ring.active_signing_key() == (1, ring.platform_signing_key)
    assert [entry["version"] for entry in ring.status()["signing_keys"]] == [1]


def test_signing_key_rotation(keystore_dir: Path) -> None:
    ring = KeyRing.load()
    first = ring.platform_signing_key
    assert ring.rotate_signing_key() == 2
    second = ring.platform_signing_key
    assert second.to_bytes() != first.to_bytes()
    assert ring.active_signing_key()[0] == 2
    old, new = ring.signing_keys
    assert old.state() == "retired"
    assert old.retired_at == new.not_before
    assert new.state() == "active"

    # The legacy slot keeps version 1, so the list and the slot agree.
    document = read_ring(keystore_dir)
    assert [entry["version"] for entry in document["signing_keys"]] == [1, 2]  # type: ignore[index]
    reloaded = KeyRing.load()
    assert reloaded.active_signing_key()[1].to_bytes() == second.to_bytes()
    assert [k.public_key for k in reloaded.signing_keys] == [
        first.public_key(),
        second.public_key(),
    ]
    # Data keys are untouched by a signing-key rotation.
    assert reloaded.versions == [1]


def test_scheduled_signing_key_takes_over_at_its_time(keystore_dir: Path) -> None:
    ring = KeyRing.load()
    now = dt.datetime.now(dt.UTC)
    takeover = now + dt.timedelta(hours=2)
    ring.rotate_signing_key(takeover)
    assert ring.active_signing_key()[0] == 1
    assert ring.active_signing_key(takeover + dt.timedelta(seconds=1))[0] == 2
    assert [k.state(now) for k in ring.signing_keys] == ["active", "pending"]
    with pytest.raises(KeyStoreError, match="pending"):
        ring.rotate_signing_key()
    with pytest.raises(ValueError, match="timezone"):
        ring.rotate_signing_key(dt.datetime(2030, 1, 1))  # noqa: DTZ001 - the point of the test
    ring.revoke_signing_key(2)  # cancels the scheduled rotation
    assert ring.active_signing_key(takeover + dt.timedelta(seconds=1))[0] == 1
    assert ring.rotate_signing_key() == 3


def test_the_signing_key_in_force_cannot_be_revoked(keystore_dir: Path) -> None:
    ring = KeyRing.load()
    with pytest.raises(KeyStoreError, match="in force"):
        ring.revoke_signing_key(1)
    ring.rotate_signing_key()
    ring.revoke_signing_key(1)
    with pytest.raises(KeyStoreError, match="already revoked"):
        ring.revoke_signing_key(1)
    with pytest.raises(KeyStoreError, match="no signing key version 9"):
        ring.revoke_signing_key(9)
    assert [k.state() for k in KeyRing.load().signing_keys] == ["revoked", "active"]


def test_rewrap_keeps_every_signing_key(keystore_dir: Path) -> None:
    ring = KeyRing.load()
    ring.rotate_signing_key()
    before = [k.public_key for k in ring.signing_keys]
    ring.rewrap(generate_master_key())
    reloaded = KeyRing.load()
    assert [k.public_key for k in reloaded.signing_keys] == before
    assert reloaded.active_signing_key()[0] == 2


def test_signing_key_entries_are_bound_to_their_version(keystore_dir: Path) -> None:
    KeyRing.load().rotate_signing_key()
    document = read_ring(keystore_dir)
    entries = document["signing_keys"]
    entries[0]["wrapped"], entries[1]["wrapped"] = (  # type: ignore[index]
        entries[1]["wrapped"],  # type: ignore[index]
        entries[0]["wrapped"],  # type: ignore[index]
    )
    write_ring(keystore_dir, document, reseal=True)
    with pytest.raises(KeyStoreError, match="cannot unwrap the signing key v1"):
        KeyRing.load()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["signing_keys"].pop(0), "v1 is missing"),
        (lambda d: d["signing_keys"].append(dict(d["signing_keys"][1])), "appears twice"),
        (lambda d: d["signing_keys"][1].update(not_before="2000-01-01T00:00:00+00:00"), "order"),
        (lambda d: d["signing_keys"][1].update(not_before="yesterday"), "ISO 8601"),
        (lambda d: d["signing_keys"][1].update(created_at="2030-01-01T00:00:00"), "ISO 8601"),
        (lambda d: d["signing_keys"][0].update(version=0), "bad signing key version"),
        (lambda d: d.update(signing_keys=[]), "no signing keys"),
        (
            lambda d: [e.update(revoked_at="2030-01-01T00:00:00+00:00") for e in d["signing_keys"]],
            "every signing key is revoked",
        ),
        (lambda d: d.update(platform_signing_key=_wrapped_v2_under_legacy_aad(d)), "differs"),
    ],
    ids=[
        "missing-v1",
        "twice",
        "order",
        "bad-time",
        "naive-time",
        "version",
        "empty",
        "all-revoked",
        "legacy-slot",
    ],
)
def test_sealed_but_inconsistent_signing_keys_are_refused(
    keystore_dir: Path, edit: Callable[[dict[str, Any]], object], message: str
) -> None:
    KeyRing.load().rotate_signing_key()
    document = read_ring(keystore_dir)
    edit(document)
    write_ring(keystore_dir, document, reseal=True)
    with pytest.raises(KeyStoreError, match=message):
        KeyRing.load()


def _wrapped_v2_under_legacy_aad(document: dict[str, Any]) -> str:
    """Version 2's key wrapped for the legacy slot: unwraps fine, but is not version 1."""
    from yikatong.crypto.sm4 import SM4GCM

    master = SM4GCM(master_of(keystore.get_settings().keystore_path))
    scalar = master.decrypt(
        bytes.fromhex(document["signing_keys"][1]["wrapped"]), b"yikatong:platform-signing-key:v2"
    )
    return master.encrypt(scalar, b"yikatong:platform-signing-key").hex()
