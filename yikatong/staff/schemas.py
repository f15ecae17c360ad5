"""API shapes of staff login and accounts."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from yikatong.kit.actor import Role


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    code: str = Field(min_length=6, max_length=8, description="Six-digit TOTP code")


class Me(BaseModel):
    username: str
    display_name: str
    role: Role
    region_code: str
    region_name: str
    department: str | None
    permissions: list[str]
    csrf_token: str = Field(description="Send as X-CSRF-Token on unsafe requests")


class StaffOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    username: str
    display_name: str
    role: Role
    region_code: str
    department: str | None
    is_active: bool
    locked_until: dt.datetime | None
    last_login_at: dt.datetime | None
    created_at: dt.datetime


class StaffCreate(BaseModel):
    username: str = Field(
        min_length=3,
        max_length=64,
        pattern=r"^[a-z][a-z0-9_.-]{2,63}$",
        description="Lower-case letters, digits, '.', '_' or '-', starting with a letter",
    )
    display_name: str = Field(min_length=1, max_length=64)
    role: Role
    region_code: str = Field(pattern=r"^\d{6}$")
    department: str | None = Field(default=None, max_length=64)
    password: str = Field(min_length=10, max_length=256)


class StaffCreated(BaseModel):
    staff: StaffOut
    totp_secret: str = Field(description="Shown once: enrol it in an authenticator app")
    totp_uri: str


class StaffPage(BaseModel):
    items: list[StaffOut]
    total: int
    page: int
    per_page: int
