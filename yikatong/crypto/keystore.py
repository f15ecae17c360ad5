"""Envelope encryption: a file key ring of versioned data keys wrapped by one master key.

Layout of ``<keystore_path>/keyring.json`` (format 1)::

    {"format": 1,
     "master_key_id": "<first 16 hex digits of SM3(master key)>",
     "data_keys": [{"version": 1, "wrapped": "<hex>", "created_at": "<ISO 8601>",
                    "state": "active" | "retired"}, ...],
     "index_key": "<hex>", "platform_signing_key": "<hex>", "card_master_key": "<hex>",
     "signing_keys": [{"version": 1, "wrapped": "<hex>", "created_at": "<ISO 8601>",
                       "not_before": "<ISO 8601>", "revoked_at": null | "<ISO 8601>"}, ...],
     "mac": "<hex HMAC-SM3 over everything above>"}

Every wrapped value is SM4-GCM under the master key with associated data naming it
(``yikatong:data-key:v3``, ``yikatong:index-key`` ...), so a blob copied into another slot fails
to unwrap. The ``mac`` protects the clear metadata (versions, states, dates) against edits: its key
is derived from the master key, so only a holder of the master key can produce a valid ring.

Platform signing keys are versioned (the version is the key id that e-card QR codes and other
signed documents carry). The key in force at a moment is the newest unrevoked one whose
``not_before`` has passed, so a rotation can be scheduled ahead: offline terminals fetch the new
public key before codes signed with it appear. ``platform_signing_key`` keeps holding version 1
(older rings have only that slot and no ``signing_keys`` list; they load as a ring with one
signing key, version 1, and the list is written at the first signing-key rotation).

The master key (16 bytes) comes from ``YIKATONG_MASTER_KEY`` (32 hex digits). Outside production a
missing master key is generated once into ``<keystore_path>/dev-master.key`` (mode 0600) together
with the ring; production never generates anything and refuses to start without both. After
loading, keys live only in process memory; the files are read once.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import fcntl
import functools
import itertools
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yikatong.crypto.errors import DecryptionError, KeyStoreError
from yikatong.crypto.sm2 import SM2PrivateKey, SM2PublicKey
from yikatong.crypto.sm3 import hmac_sm3, hmac_sm3_verify, sm3, sm3_hex
from yikatong.crypto.sm4 import KEY_SIZE, SM4GCM
from yikatong.settings import Settings, get_settings

FORMAT = 1
KEYRING_FILE = "keyring.json"
DEV_MASTER_KEY_FILE = "dev-master.key"
DEV_SECRET_KEY_FILE = "dev-secret.key"  # noqa: S105 - a file name, not a secret
LOCK_FILE = ".keyring.lock"
MAX_DATA_KEY_VERSION = 0xFFFF  # field ciphertexts carry the version in two bytes
MAX_SIGNING_KEY_VERSION = 0xFFFF  # signed documents carry the key id in two bytes
DEV_SECRET_KEY_SIZE = 32

ACTIVE = "active"
RETIRED = "retired"
PENDING = "pending"
REVOKED = "revoked"

_INIT_HINT = "run `yikatong keys init` with YIKATONG_MASTER_KEY set to create the key ring"
_INDEX_KEY_AAD = b"yikatong:index-key"
_SIGNING_KEY_AAD = b"yikatong:platform-signing-key"
_CARD_MASTER_KEY_AAD = b"yikatong:card-master-key"
_MAC_KEY_LABEL = b"yikatong:keyring-mac"
_BLIND_INDEX_LABEL = b"blind-index:"


def _data_key_aad(version: int) -> bytes:
    return b"yikatong:data-key:v%d" % version


def _signing_key_aad(version: int) -> bytes:
    return b"yikatong:platform-signing-key:v%d" % version


@dataclass(frozen=True)
class SigningKey:
    """Public facts of one platform signing key version (no private material)."""

    version: int
    public_key: SM2PublicKey
    created_at: dt.datetime
    not_before: dt.datetime  # signs from this moment on
    retired_at: dt.datetime | None  # when a newer key took over (may lie in the future)
    revoked_at: dt.datetime | None

    def state(self, now: dt.datetime | None = None) -> str:
        """``revoked``, ``pending`` (not yet signing), ``active`` or ``retired`` at ``now``."""
        moment = now or dt.datetime.now(dt.UTC)
        if self.revoked_at is not None:
            return REVOKED
        if self.not_before > moment:
            return PENDING
        if self.retired_at is not None and self.retired_at <= moment:
            return RETIRED
        return ACTIVE


def master_key_id(master_key: bytes) -> str:
    """Identify a master key without revealing it: the first 16 hex digits of its SM3."""
    return sm3_hex(master_key)[:16]


def generate_master_key() -> bytes:
    """Return a fresh 16-byte master key from the operating system CSPRNG."""
    return os.urandom(KEY_SIZE)


def parse_master_key(text: str) -> bytes:
    """Decode a master key given as 32 hex digits; raises :class:`KeyStoreError` otherwise."""
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) != KEY_SIZE:
        raise KeyStoreError("the master key must be exactly 32 hex digits (16 bytes)")
    return key


# --- files ------------------------------------------------------------------------------------


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(directory: Path, data: bytes) -> Path:
    """Write ``data`` to a new 0600 temporary file in ``directory`` and flush it to disk."""
    fd, name = tempfile.mkstemp(dir=directory, prefix=".tmp-")  # mkstemp creates mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


def _replace_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never a partial write."""
    temp = _write_temp(path.parent, data)
    try:
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _create_exclusively(path: Path, data: bytes) -> bool:
    """Create ``path`` with ``data`` (mode 0600) unless it exists; returns whether it was created.

    Writing a temporary file and hard-linking it into place means a concurrent reader never sees
    an empty or half-written key file, and a concurrent creator cannot overwrite it.
    """
    temp = _write_temp(path.parent, data)
    try:
        os.link(temp, path)
    except FileExistsError:
        return False
    finally:
        temp.unlink()
    _fsync_directory(path.parent)
    return True


def _ensure_directory(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


@contextlib.contextmanager
def _exclusive_lock(directory: Path) -> Iterator[None]:
    """Serialise writers of the key ring across processes (uvicorn workers, the CLI)."""
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _read_key_file(path: Path, size: int) -> bytes:
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise KeyStoreError(f"{path} is corrupt: expected {size * 2} hex digits") from None
    if len(key) != size:
        raise KeyStoreError(f"{path} is corrupt: expected {size * 2} hex digits")
    return key


def _read_or_create_key_file(path: Path, size: int) -> bytes:
    if not path.exists():
        _ensure_directory(path.parent)
        _create_exclusively(path, os.urandom(size).hex().encode("ascii") + b"\n")
    # Read back even after creating: if another process won the race, its key is the one on disk.
    return _read_key_file(path, size)


# --- secrets from settings ---------------------------------------------------------------------


def _master_key_and_source(settings: Settings, *, create: bool) -> tuple[bytes, Path | None]:
    """Return the master key and, for a development key, the file that holds it."""
    if settings.master_key is not None and settings.master_key.get_secret_value():
        return parse_master_key(settings.master_key.get_secret_value()), None
    if settings.is_production:
        raise KeyStoreError(f"YIKATONG_MASTER_KEY is not set; {_INIT_HINT}")
    dev_file = settings.keystore_path / DEV_MASTER_KEY_FILE
    if create:
        return _read_or_create_key_file(dev_file, KEY_SIZE), dev_file
    if not dev_file.exists():
        raise KeyStoreError(
            f"the key ring in {settings.keystore_path} exists but {DEV_MASTER_KEY_FILE} is missing "
            "and YIKATONG_MASTER_KEY is not set; its data cannot be decrypted"
        )
    return _read_key_file(dev_file, KEY_SIZE), dev_file


def resolve_master_key(settings: Settings, *, create: bool = False) -> bytes:
    """The master key from settings, or outside production the development key file.

    With ``create`` a missing development key is generated; production never generates one.
    """
    return _master_key_and_source(settings, create=create)[0]


def resolve_secret_key(settings: Settings) -> bytes:
    """The CSRF/session secret: ``YIKATONG_SECRET_KEY`` or, outside production, a generated file."""
    if settings.secret_key is not None and settings.secret_key.get_secret_value():
        return settings.secret_key.get_secret_value().encode("utf-8")
    if settings.is_production:
        raise KeyStoreError("YIKATONG_SECRET_KEY is not set; production never generates secrets")
    return _dev_secret_key(settings.keystore_path / DEV_SECRET_KEY_FILE)


@functools.lru_cache(maxsize=8)
def _dev_secret_key(path: Path) -> bytes:
    # Read once per process: every request derives its CSRF token from this key.
    return _read_or_create_key_file(path, DEV_SECRET_KEY_SIZE)


# --- the document ------------------------------------------------------------------------------


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _canonical(document: dict[str, Any]) -> bytes:
    body = {name: value for name, value in document.items() if name != "mac"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _mac_key(master_key: bytes) -> bytes:
    # A separate key for the MAC, derived with HMAC-SM3 as a PRF, keeps the wrap key single-use.
    return hmac_sm3(master_key, _MAC_KEY_LABEL)


def _seal(document: dict[str, Any], master_key: bytes) -> None:
    document["mac"] = hmac_sm3(_mac_key(master_key), _canonical(document)).hex()


def _serialise(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("ascii")


def _wrap(master: SM4GCM, key: bytes, aad: bytes) -> str:
    return master.encrypt(key, aad).hex()


def _new_document(master_key: bytes) -> dict[str, Any]:
    master = SM4GCM(master_key)
    signing_key = SM2PrivateKey.generate()
    document: dict[str, Any] = {
        "format": FORMAT,
        "master_key_id": master_key_id(master_key),
        "data_keys": [
            {
                "version": 1,
                "wrapped": _wrap(master, os.urandom(KEY_SIZE), _data_key_aad(1)),
                "created_at": _now_iso(),
                "state": ACTIVE,
            }
        ],
        "index_key": _wrap(master, os.urandom(KEY_SIZE), _INDEX_KEY_AAD),
        "platform_signing_key": _wrap(master, signing_key.to_bytes(), _SIGNING_KEY_AAD),
        "card_master_key": _wrap(master, os.urandom(KEY_SIZE), _CARD_MASTER_KEY_AAD),
    }
    _seal(document, master_key)
    return document


def _malformed(detail: str) -> KeyStoreError:
    return KeyStoreError(f"the key ring is malformed: {detail}")


def _unwrap(master: SM4GCM, wrapped: Any, aad: bytes, what: str) -> bytes:
    if not isinstance(wrapped, str):
        raise _malformed(f"{what} is not a hex string")
    try:
        return master.decrypt(bytes.fromhex(wrapped), aad)
    except (ValueError, DecryptionError):
        raise KeyStoreError(f"cannot unwrap the {what}: the key ring was altered") from None


def _parse_time(value: Any, what: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _malformed(f"{what} is not an ISO 8601 time with a zone")
    return moment.astimezone(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def _signing_entries(document: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The ``signing_keys`` list, or None for a ring written before signing keys had versions."""
    entries = document.get("signing_keys")
    if entries is None:
        return None
    if not isinstance(entries, list) or not entries:
        raise _malformed("no signing keys")
    return entries


def _legacy_created_at(document: dict[str, Any]) -> dt.datetime:
    # The one signing key of an older ring was made with the ring, like data key v1.
    first = min(document["data_keys"], key=lambda entry: entry["version"])
    return _parse_time(first.get("created_at"), "data key creation time")


@dataclass(frozen=True)
class _Signer:
    version: int
    key: SM2PrivateKey
    created_at: dt.datetime
    not_before: dt.datetime
    revoked_at: dt.datetime | None


def _load_signers(
    master: SM4GCM, document: dict[str, Any], legacy_scalar: bytes
) -> dict[int, _Signer]:
    entries = _signing_entries(document)
    if entries is None:
        created = _legacy_created_at(document)
        return {1: _Signer(1, SM2PrivateKey.from_bytes(legacy_scalar), created, created, None)}
    signers: dict[int, _Signer] = {}
    for entry in entries:
        version = entry.get("version") if isinstance(entry, dict) else None
        if type(version) is not int or not 0 < version <= MAX_SIGNING_KEY_VERSION:
            raise _malformed(f"bad signing key version {version!r}")
        if version in signers:
            raise _malformed(f"signing key version {version} appears twice")
        what = f"signing key v{version}"
        scalar = _unwrap(master, entry.get("wrapped"), _signing_key_aad(version), what)
        if version == 1 and scalar != legacy_scalar:
            raise _malformed("signing key v1 differs from platform_signing_key")
        revoked = entry.get("revoked_at")
        signers[version] = _Signer(
            version,
            SM2PrivateKey.from_bytes(scalar),
            _parse_time(entry.get("created_at"), f"{what} created_at"),
            _parse_time(entry.get("not_before"), f"{what} not_before"),
            None if revoked is None else _parse_time(revoked, f"{what} revoked_at"),
        )
    if 1 not in signers:
        raise _malformed("signing key v1 is missing")
    usable = [signers[v] for v in sorted(signers) if signers[v].revoked_at is None]
    if not usable:
        raise _malformed("every signing key is revoked")
    if any(a.not_before > b.not_before for a, b in itertools.pairwise(usable)):
        raise _malformed("signing keys must take over in version order")
    return signers


class KeyRing:
    """The process's key material, unwrapped once from ``keyring.json``.

    Use :func:`get_keyring` in application code; the class methods are for the CLI and tests.
    """

    def __init__(
        self,
        directory: Path,
        master_key: bytes,
        document: dict[str, Any],
        disk_bytes: bytes,
        dev_master_file: Path | None = None,
    ) -> None:
        """Validate and unwrap a parsed key-ring document; prefer :meth:`load` and :meth:`init`."""
        self._directory = directory
        self._dev_master_file = dev_master_file
        self._write_lock = threading.Lock()
        self._index_keys: dict[str, bytes] = {}
        self._install(master_key, document, disk_bytes)

    # -- construction --------------------------------------------------------------------------

    def _install(self, master_key: bytes, document: dict[str, Any], disk_bytes: bytes) -> None:
        if type(document.get("format")) is not int or document["format"] != FORMAT:
            raise _malformed(f"unsupported format {document.get('format')!r}")
        if document.get("master_key_id") != master_key_id(master_key):
            raise KeyStoreError("master key does not match the key ring")
        try:
            mac = bytes.fromhex(document.get("mac", ""))
        except (TypeError, ValueError):
            mac = b""
        if not hmac_sm3_verify(_mac_key(master_key), _canonical(document), mac):
            raise KeyStoreError("the key ring failed its integrity check: it was altered")

        master = SM4GCM(master_key)
        entries = document.get("data_keys")
        if not isinstance(entries, list) or not entries:
            raise _malformed("no data keys")
        data_keys: dict[int, bytes] = {}
        active: list[int] = []
        for entry in entries:
            version = entry.get("version") if isinstance(entry, dict) else None
            if type(version) is not int or not 0 < version <= MAX_DATA_KEY_VERSION:
                raise _malformed(f"bad data key version {version!r}")
            if version in data_keys:
                raise _malformed(f"data key version {version} appears twice")
            if entry.get("state") not in (ACTIVE, RETIRED):
                raise _malformed(f"data key v{version} has state {entry.get('state')!r}")
            data_keys[version] = _unwrap(
                master, entry.get("wrapped"), _data_key_aad(version), f"data key v{version}"
            )
            if entry["state"] == ACTIVE:
                active.append(version)
        if len(active) != 1:
            raise _malformed(f"expected exactly one active data key, found {len(active)}")

        index_key = _unwrap(master, document.get("index_key"), _INDEX_KEY_AAD, "index key")
        signing_scalar = _unwrap(
            master,
            document.get("platform_signing_key"),
            _SIGNING_KEY_AAD,
            "platform signing key",
        )
        signers = _load_signers(master, document, signing_scalar)
        card_master_key = _unwrap(
            master, document.get("card_master_key"), _CARD_MASTER_KEY_AAD, "card master key"
        )

        aeads = {version: SM4GCM(key) for version, key in data_keys.items()}
        self._master_key = master_key
        self._document = document
        self._disk_digest = sm3(disk_bytes)
        self._data_keys = data_keys
        self._aeads = aeads
        self._active = (active[0], aeads[active[0]])
        self._index_key = index_key
        self._signers = signers
        # Newest first, revoked keys left out: the first whose not_before has passed signs.
        self._signing_schedule = tuple(
            (s.not_before.timestamp(), s.version, s.key)
            for s in sorted(signers.values(), key=lambda s: -s.version)
            if s.revoked_at is None
        )
        self._card_master_key = card_master_key

    @classmethod
    def _read(cls, settings: Settings, master_key: bytes, source: Path | None) -> KeyRing:
        path = settings.keystore_path / KEYRING_FILE
        try:
            disk_bytes = path.read_bytes()
        except FileNotFoundError:
            raise KeyStoreError(f"no key ring at {path}; {_INIT_HINT}") from None
        try:
            document = json.loads(disk_bytes)
        except ValueError:
            raise _malformed("not JSON") from None
        if not isinstance(document, dict):
            raise _malformed("not a JSON object")
        return cls(settings.keystore_path, master_key, document, disk_bytes, source)

    @classmethod
    def load(cls, settings: Settings | None = None) -> KeyRing:
        """Load the key ring; outside production, create it (and a dev master key) on first use."""
        settings = settings or get_settings()
        directory = settings.keystore_path
        if settings.is_production:
            master_key, _ = _master_key_and_source(settings, create=False)
            return cls._read(settings, master_key, None)
        if not (directory / KEYRING_FILE).exists():
            _ensure_directory(directory)
            with _exclusive_lock(directory):
                # Re-check under the lock: another worker may have created it meanwhile.
                if not (directory / KEYRING_FILE).exists():
                    return cls._create(settings)
        master_key, source = _master_key_and_source(settings, create=False)
        return cls._read(settings, master_key, source)

    @classmethod
    def _create(cls, settings: Settings) -> KeyRing:
        """Write a brand-new ring; the caller holds the directory lock."""
        master_key, source = _master_key_and_source(settings, create=True)
        document = _new_document(master_key)
        disk_bytes = _serialise(document)
        _replace_atomically(settings.keystore_path / KEYRING_FILE, disk_bytes)
        return cls(settings.keystore_path, master_key, document, disk_bytes, source)

    @classmethod
    def init(cls, settings: Settings | None = None, *, force: bool = False) -> KeyRing:
        """Create a new key ring (``yikatong keys init``); refuses to replace one unless ``force``.

        With ``force`` the previous ring is kept beside it as ``keyring.<timestamp>.json`` rather
        than deleted, because data encrypted under it is unreadable without it.
        """
        settings = settings or get_settings()
        directory = settings.keystore_path
        _ensure_directory(directory)
        with _exclusive_lock(directory):
            current = directory / KEYRING_FILE
            if current.exists():
                if not force:
                    raise KeyStoreError(
                        f"a key ring already exists at {current}; replacing it makes every "
                        "value encrypted under it unreadable (use force to do it anyway)"
                    )
                stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
                os.replace(current, directory / f"keyring.{stamp}.json")
            return cls._create(settings)

    # -- reading -------------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        """The key-store directory this ring was loaded from."""
        return self._directory

    @property
    def master_key_id(self) -> str:
        """Identifier of the master key currently wrapping the ring."""
        return master_key_id(self._master_key)

    @property
    def active_version(self) -> int:
        """Version of the data key that encrypts new values."""
        return self._active[0]

    @property
    def active_aead(self) -> tuple[int, SM4GCM]:
        """The active version and its cipher, read together so a rotation cannot split them."""
        return self._active

    @property
    def versions(self) -> list[int]:
        """Every data key version held, oldest first."""
        return sorted(self._data_keys)

    def data_key(self, version: int) -> bytes:
        """The 16-byte data key of ``version``; raises :class:`KeyStoreError` if unknown."""
        try:
            return self._data_keys[version]
        except KeyError:
            raise KeyStoreError(f"no data key version {version} in the key ring") from None

    def aead(self, version: int) -> SM4GCM:
        """The SM4-GCM cipher of data key ``version``, built once at load."""
        try:
            return self._aeads[version]
        except KeyError:
            raise KeyStoreError(f"no data key version {version} in the key ring") from None

    def index_key_for(self, field: str) -> bytes:
        """Per-field blind-index key; independent of data-key rotation, so indexes stay valid."""
        key = self._index_keys.get(field)
        if key is None:
            if not field:
                raise ValueError("a field name is required")
            key = hmac_sm3(self._index_key, _BLIND_INDEX_LABEL + field.encode("utf-8"))
            self._index_keys[field] = key
        return key

    @property
    def platform_signing_key(self) -> SM2PrivateKey:
        """The platform's SM2 key in force now (QR codes, blacklists, receipts, checkpoints)."""
        return self.active_signing_key()[1]

    def active_signing_key(self, now: dt.datetime | None = None) -> tuple[int, SM2PrivateKey]:
        """The version (key id) and key in force at ``now``, read together."""
        moment = (now or dt.datetime.now(dt.UTC)).timestamp()
        for not_before, version, key in self._signing_schedule:
            if not_before <= moment:
                return version, key
        raise KeyStoreError("no platform signing key is in force yet")

    @property
    def signing_keys(self) -> list[SigningKey]:
        """Every signing key version with its dates, oldest first (public halves only)."""
        ordered = [self._signers[v] for v in sorted(self._signers)]
        result = []
        for index, signer in enumerate(ordered):
            successor = next((s for s in ordered[index + 1 :] if s.revoked_at is None), None)
            result.append(
                SigningKey(
                    version=signer.version,
                    public_key=signer.key.public_key(),
                    created_at=signer.created_at,
                    not_before=signer.not_before,
                    retired_at=successor.not_before if successor else None,
                    revoked_at=signer.revoked_at,
                )
            )
        return result

    @property
    def card_master_key(self) -> bytes:
        """The 16-byte SM4 master key from which per-card keys are diversified."""
        return self._card_master_key

    def status(self) -> dict[str, Any]:
        """A description safe to print or log: identifiers, versions and dates, no key material."""
        return {
            "path": str(self._directory / KEYRING_FILE),
            "format": FORMAT,
            "master_key_id": self.master_key_id,
            "active_version": self.active_version,
            "data_keys": [
                {
                    "version": entry["version"],
                    "state": entry["state"],
                    "created_at": entry["created_at"],
                }
                for entry in sorted(self._document["data_keys"], key=lambda e: e["version"])
            ],
            "platform_public_key_fingerprint": self.platform_signing_key.public_key().fingerprint(),
            "signing_keys": [
                {
                    "version": key.version,
                    "state": key.state(),
                    "created_at": _iso(key.created_at),
                    "not_before": _iso(key.not_before),
                    "retired_at": _iso(key.retired_at) if key.retired_at else None,
                    "revoked_at": _iso(key.revoked_at) if key.revoked_at else None,
                    "public_key_fingerprint": key.public_key.fingerprint(),
                }
                for key in self.signing_keys
            ],
        }

    def __repr__(self) -> str:
        return f"<KeyRing {self._directory} master={self.master_key_id} v{self.active_version}>"

    # -- changing ------------------------------------------------------------------------------

    def _write(self, document: dict[str, Any], master_key: bytes) -> bytes:
        """Persist ``document`` if the file is still what this ring loaded; returns the bytes."""
        path = self._directory / KEYRING_FILE
        with _exclusive_lock(self._directory):
            try:
                on_disk = path.read_bytes()
            except FileNotFoundError:
                on_disk = b""
            if sm3(on_disk) != self._disk_digest:
                # Another process rotated or rewrapped since we loaded: writing our stale copy
                # would drop its new key and strand whatever it already encrypted.
                raise KeyStoreError("the key ring changed on disk since it was loaded; reload it")
            _seal(document, master_key)
            disk_bytes = _serialise(document)
            _replace_atomically(path, disk_bytes)
        return disk_bytes

    def rotate(self) -> int:
        """Add a new active data key and retire the previous one; returns the new version.

        Old versions stay in the ring so existing ciphertexts remain readable; re-encrypt them
        with :func:`yikatong.crypto.fields.reencrypt_field`. Other processes keep using the old
        active key until they reload (restart the workers after rotating).
        """
        with self._write_lock:
            version = max(self._data_keys) + 1
            if version > MAX_DATA_KEY_VERSION:
                raise KeyStoreError("data key versions exhausted")
            document = copy.deepcopy(self._document)
            for entry in document["data_keys"]:
                entry["state"] = RETIRED
            document["data_keys"].append(
                {
                    "version": version,
                    "wrapped": _wrap(
                        SM4GCM(self._master_key), os.urandom(KEY_SIZE), _data_key_aad(version)
                    ),
                    "created_at": _now_iso(),
                    "state": ACTIVE,
                }
            )
            disk_bytes = self._write(document, self._master_key)
            # Re-derive the in-memory state from what was written, through the same checks as load.
            self._install(self._master_key, document, disk_bytes)
            return version

    def _signing_document(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """A copy of the document with the ``signing_keys`` list written out."""
        document = copy.deepcopy(self._document)
        entries = _signing_entries(document)
        if entries is None:
            first = self._signers[1]
            entries = [
                {
                    "version": 1,
                    "wrapped": _wrap(
                        SM4GCM(self._master_key), first.key.to_bytes(), _signing_key_aad(1)
                    ),
                    "created_at": _iso(first.created_at),
                    "not_before": _iso(first.not_before),
                    "revoked_at": None,
                }
            ]
            document["signing_keys"] = entries
        return document, entries

    def rotate_signing_key(self, not_before: dt.datetime | None = None) -> int:
        """Add a new platform signing key that takes over at ``not_before`` (default now).

        The previous key keeps verifying: what it signed stays valid until it expires, and
        verifiers keep its public key published for a grace period after ``not_before``. Schedule
        the take-over ahead when offline terminals must fetch the new public key first; only one
        key may be pending at a time. Other processes see the new key once they reload.
        """
        with self._write_lock:
            now = dt.datetime.now(dt.UTC).replace(microsecond=0)
            if not_before is None:
                start = now
            elif not_before.tzinfo is None:
                raise ValueError("not_before must be timezone-aware")
            else:
                start = max(not_before.astimezone(dt.UTC).replace(microsecond=0), now)
            pending = [s for s in self._signers.values() if s.revoked_at is None]
            latest = max(pending, key=lambda s: s.version)
            if latest.not_before > now:
                raise KeyStoreError(
                    f"signing key v{latest.version} is still pending until "
                    f"{_iso(latest.not_before)}; revoke it or wait"
                )
            version = max(self._signers) + 1
            if version > MAX_SIGNING_KEY_VERSION:
                raise KeyStoreError("signing key versions exhausted")
            document, entries = self._signing_document()
            entries.append(
                {
                    "version": version,
                    "wrapped": _wrap(
                        SM4GCM(self._master_key),
                        SM2PrivateKey.generate().to_bytes(),
                        _signing_key_aad(version),
                    ),
                    "created_at": _iso(now),
                    "not_before": _iso(start),
                    "revoked_at": None,
                }
            )
            disk_bytes = self._write(document, self._master_key)
            self._install(self._master_key, document, disk_bytes)
            return version

    def revoke_signing_key(self, version: int) -> None:
        """Withdraw a retired or pending signing key at once (compromise, cancelled rotation).

        The key in force cannot be revoked: rotate first, then revoke the old one.
        """
        with self._write_lock:
            signer = self._signers.get(version)
            if signer is None:
                raise KeyStoreError(f"no signing key version {version} in the key ring")
            if signer.revoked_at is not None:
                raise KeyStoreError(f"signing key v{version} is already revoked")
            if self.active_signing_key()[0] == version:
                raise KeyStoreError(
                    f"signing key v{version} is in force; rotate to a new key before revoking it"
                )
            document, entries = self._signing_document()
            for entry in entries:
                if entry["version"] == version:
                    entry["revoked_at"] = _now_iso()
            disk_bytes = self._write(document, self._master_key)
            self._install(self._master_key, document, disk_bytes)

    def rewrap(self, new_master_key: bytes) -> None:
        """Re-encrypt every key under ``new_master_key`` (master-key rotation).

        Data keys themselves do not change, so no stored value needs re-encrypting. In
        production, set ``YIKATONG_MASTER_KEY`` to the new key before the next start; a
        development ring also rewrites ``dev-master.key``.
        """
        if len(new_master_key) != KEY_SIZE:
            raise ValueError(f"a master key is {KEY_SIZE} bytes")
        with self._write_lock:
            if new_master_key == self._master_key:
                raise KeyStoreError("the new master key equals the current one")
            new_master = SM4GCM(new_master_key)
            document = copy.deepcopy(self._document)
            document["master_key_id"] = master_key_id(new_master_key)
            for entry in document["data_keys"]:
                version = entry["version"]
                entry["wrapped"] = _wrap(
                    new_master, self._data_keys[version], _data_key_aad(version)
                )
            document["index_key"] = _wrap(new_master, self._index_key, _INDEX_KEY_AAD)
            document["platform_signing_key"] = _wrap(
                new_master, self._signers[1].key.to_bytes(), _SIGNING_KEY_AAD
            )
            for entry in _signing_entries(document) or []:
                version = entry["version"]
                entry["wrapped"] = _wrap(
                    new_master, self._signers[version].key.to_bytes(), _signing_key_aad(version)
                )
            document["card_master_key"] = _wrap(
                new_master, self._card_master_key, _CARD_MASTER_KEY_AAD
            )
            disk_bytes = self._write(document, new_master_key)
            if self._dev_master_file is not None:
                _replace_atomically(
                    self._dev_master_file, new_master_key.hex().encode("ascii") + b"\n"
                )
            self._install(new_master_key, document, disk_bytes)


# --- the process-wide ring ---------------------------------------------------------------------

_cache_lock = threading.Lock()
_cached: tuple[Settings, KeyRing] | None = None


def get_keyring() -> KeyRing:
    """The key ring for the current settings, loaded once per process.

    Cached against the identity of :func:`get_settings`'s result, so clearing the settings cache
    (tests) also yields a fresh ring. The fast path is one attribute read and one comparison.
    """
    global _cached  # noqa: PLW0603 - process-wide cache, like the engine in yikatong.db
    settings = get_settings()
    cached = _cached
    if cached is not None and cached[0] is settings:
        return cached[1]
    with _cache_lock:
        cached = _cached
        if cached is None or cached[0] is not settings:
            cached = (settings, KeyRing.load(settings))
            _cached = cached
        return cached[1]


def reset_keyring_cache() -> None:
    """Forget the cached ring (tests, or after ``yikatong keys rotate`` in a long-lived process)."""
    global _cached  # noqa: PLW0603
    with _cache_lock:
        _cached = None
