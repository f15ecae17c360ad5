"""Configuration: working defaults for development, refusal without real secrets in production."""

from __future__ import annotations

import pytest

from yikatong.settings import ConfigurationError, Environment, Settings

SECRET = "s" * 40


def test_development_defaults_to_heyuan_on_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YIKATONG_DATABASE_URL")
    settings = Settings(env=Environment.DEVELOPMENT)
    assert settings.region_code == "441600"
    assert settings.database_url.startswith("sqlite:///")
    assert not settings.secure_cookies


@pytest.mark.parametrize(
    ("overrides", "missing"),
    [
        ({}, "YIKATONG_MASTER_KEY"),
        ({"master_key": "00" * 16}, "YIKATONG_SECRET_KEY"),
        ({"secret_key": SECRET}, "YIKATONG_MASTER_KEY"),
    ],
)
def test_production_refuses_missing_secrets(overrides: dict[str, str], missing: str) -> None:
    with pytest.raises(ConfigurationError, match=missing):
        Settings(
            env=Environment.PRODUCTION, database_url="postgresql+psycopg://db/yikatong", **overrides
        )


def test_production_refuses_sqlite_and_short_secrets() -> None:
    with pytest.raises(ConfigurationError, match="PostgreSQL"):
        Settings(
            env=Environment.PRODUCTION,
            master_key="00" * 16,
            secret_key=SECRET,
            database_url="sqlite:///var/yikatong.db",
        )
    with pytest.raises(ConfigurationError, match="32 characters"):
        Settings(
            env=Environment.PRODUCTION,
            master_key="00" * 16,
            secret_key="short",
            database_url="postgresql+psycopg://db/yikatong",
        )


def test_production_with_real_secrets_uses_secure_cookies() -> None:
    settings = Settings(
        env=Environment.PRODUCTION,
        master_key="00" * 16,
        secret_key=SECRET,
        database_url="postgresql+psycopg://db/yikatong",
    )
    assert settings.secure_cookies


def test_region_code_must_be_six_digits() -> None:
    with pytest.raises(ValueError, match="region_code"):
        Settings(region_code="4416")


def test_production_app_refuses_to_start_without_a_key_ring(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from yikatong.crypto.errors import KeyStoreError
    from yikatong.crypto.keystore import reset_keyring_cache
    from yikatong.settings import get_settings

    monkeypatch.setenv("YIKATONG_ENV", "production")
    monkeypatch.setenv("YIKATONG_MASTER_KEY", "00" * 16)
    monkeypatch.setenv("YIKATONG_SECRET_KEY", SECRET)
    monkeypatch.setenv("YIKATONG_DATABASE_URL", "postgresql+psycopg://db/yikatong")
    monkeypatch.setenv("YIKATONG_KEYSTORE_PATH", str(tmp_path))
    get_settings.cache_clear()
    reset_keyring_cache()
    try:
        from yikatong.app import create_app

        with pytest.raises(KeyStoreError, match="keys init"):
            create_app()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        reset_keyring_cache()
