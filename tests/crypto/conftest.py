"""Every crypto test runs against a throw-away key store, never the real ``var/keys``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from yikatong.crypto.keystore import reset_keyring_cache
from yikatong.settings import Settings, get_settings


@pytest.fixture(autouse=True)
def keystore_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point settings at a fresh key-store directory and drop every process-wide cache."""
    path = tmp_path / "keys"
    monkeypatch.setenv("YIKATONG_KEYSTORE_PATH", str(path))
    monkeypatch.setenv("YIKATONG_ENV", "test")
    for name in ("YIKATONG_MASTER_KEY", "YIKATONG_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    reset_keyring_cache()
    yield path
    get_settings.cache_clear()
    reset_keyring_cache()


@pytest.fixture
def make_settings(keystore_dir: Path) -> Callable[..., Settings]:
    """Build a Settings object on the temporary key store, overriding any field."""

    def build(**overrides: Any) -> Settings:
        overrides.setdefault("keystore_path", keystore_dir)
        overrides.setdefault("env", "test")
        return Settings(**overrides)

    return build
