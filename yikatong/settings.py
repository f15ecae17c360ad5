"""The one typed settings object, read from ``YIKATONG_*`` environment variables.

Development and test get working defaults, including a key store generated on first use under
``var/``; production refuses to start until every secret is supplied from outside.
"""

from __future__ import annotations

import enum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Environment(enum.StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class ConfigurationError(RuntimeError):
    """Raised at start-up when the configuration cannot run safely."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YIKATONG_", extra="ignore")

    env: Environment = Environment.DEVELOPMENT
    database_url: str = Field(
        default=f"sqlite:///{PROJECT_ROOT / 'var' / 'yikatong.db'}",
        description="SQLAlchemy URL: SQLite in development, postgresql+psycopg:// in production",
    )
    region_code: str = Field(
        default="441600",
        pattern=r"^\d{6}$",
        description="GB/T 2260 code of the city this deployment serves (Heyuan by default)",
    )
    keystore_path: Path = Field(
        default=PROJECT_ROOT / "var" / "keys",
        description="Directory holding the key ring (data keys wrapped by the master key)",
    )
    master_key: SecretStr | None = Field(
        default=None,
        description="32 hex digits: the SM4 key that wraps every data key; dev generates one",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Signs CSRF tokens; at least 32 characters; dev generates one",
    )
    cookie_secure: bool | None = Field(
        default=None,
        description="Mark cookies Secure; defaults to on in production, off for http://127.0.0.1",
    )
    session_hours: int = Field(default=8, ge=1, le=24)
    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_minutes: int = Field(default=15, ge=1)
    temporary_loss_days: int = Field(
        default=15, ge=1, le=90, description="A temporary card loss report lapses after this"
    )
    timezone: str = "Asia/Shanghai"
    default_locale: str = "zh_CN"
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _production_needs_real_secrets(self) -> Settings:
        if self.env is Environment.PRODUCTION:
            missing = [
                name
                for name, value in (
                    ("YIKATONG_MASTER_KEY", self.master_key),
                    ("YIKATONG_SECRET_KEY", self.secret_key),
                )
                if value is None or not value.get_secret_value()
            ]
            if missing:
                raise ConfigurationError(
                    "production refuses to start without real secrets: " + ", ".join(missing)
                )
            if self.database_url.startswith("sqlite"):
                raise ConfigurationError("production needs PostgreSQL (YIKATONG_DATABASE_URL)")
            secret = self.secret_key.get_secret_value() if self.secret_key else ""
            if len(secret) < 32:
                raise ConfigurationError("YIKATONG_SECRET_KEY must be at least 32 characters")
        return self

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def secure_cookies(self) -> bool:
        return self.cookie_secure if self.cookie_secure is not None else self.is_production


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
